"""The little EMV kernel an online-only ATM needs, over the card reader driver's APDUs.

Why so little: an ATM always goes online with online PIN, so there is no offline data
authentication, no offline PIN and no terminal action analysis beyond "ask for an ARQC". What
remains: select the application, start a transaction (GET PROCESSING OPTIONS: the card's ATC
rises), read the records, ask for an ARQC with the terminal's data (CDOL1), and after the host's
answer give the card its ARPC (CDOL2) for the second GENERATE AC.

Every chip failure raises :class:`ChipError`; the firmware never falls back to the stripe for a
chip card (spec 11: no fallback).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from terminals.drivers.card_reader import CardReaderDriver
from terminals.drivers.errors import DriverError
from terminals.emv import apdu, tlv
from terminals.emv.apdu import ApduError, CryptogramType, ResponseApdu

# Applications this ATM accepts, in priority order (UnionPay debit, credit).
SUPPORTED_AIDS: Final = (bytes.fromhex("A000000333010101"), bytes.fromhex("A000000333010102"))
TERMINAL_COUNTRY_CNY: Final = bytes.fromhex("0156")
# TVR: byte 3 bit 3 "online PIN entered" (Book 3 annex C5); nothing else is ever set here.
TVR_ONLINE_PIN: Final = bytes.fromhex("0000040000")
ARC_UNABLE_TO_GO_ONLINE: Final = b"Z3"  # Book 4 A6: the terminal's ARC when the host is silent
records_max: Final = 16  # an ATM card has a handful; a bigger AFL is a broken card
_CARD_DATA_TAGS: Final = ("57", "5F34", "82", "8C", "8D")


class ChipError(Exception):
    """The chip did not complete a step (silent, refused, or answered nonsense)."""


@dataclass
class ChipApplication:
    """What the terminal keeps of the card's chip for the session (no keys: the card has them)."""

    aid: bytes
    data: dict[str, bytes]
    fresh: bool = True  # GPO already done for the next transaction (at card read)
    arqc_tags: dict[str, bytes] = field(default_factory=dict)

    @property
    def track2(self) -> str:
        """Tag 57 as field 35 wants it: D written =, trailing F dropped (spec 11)."""
        return self.data["57"].hex().upper().rstrip("F").replace("D", "=")

    @property
    def psn(self) -> str:
        return self.data["5F34"].hex()[:2]


def _checked(response: ResponseApdu, step: str) -> bytes:
    if not response.ok:
        raise ChipError(f"{step}: the card answered SW {response.sw:04X}")
    return response.data


class ChipReader:
    """One chip card in the reader, driven through the card reader driver."""

    def __init__(self, reader: CardReaderDriver) -> None:
        self.reader = reader

    async def _send(self, command: apdu.CommandApdu, step: str) -> dict[str, bytes]:
        try:
            raw = await self.reader.transmit_apdu(command.encode())
            return tlv.flatten(_checked(ResponseApdu.decode(raw), step))
        except (DriverError, ApduError, tlv.TlvError) as exc:
            raise ChipError(f"{step}: {exc}") from exc

    async def open(self) -> ChipApplication:
        """Select the application, start the first transaction, read its records."""
        for aid in SUPPORTED_AIDS:
            try:
                await self._send(apdu.select(aid), "SELECT")
            except ChipError:
                continue
            data = await self._start(aid)
            return ChipApplication(aid, data)
        raise ChipError("no supported application on the card")

    async def _start(self, aid: bytes) -> dict[str, bytes]:
        gpo = await self._send(apdu.get_processing_options(), "GET PROCESSING OPTIONS")
        if "82" not in gpo or "94" not in gpo:
            raise ChipError("GET PROCESSING OPTIONS without AIP and AFL")
        data = dict(gpo)
        try:
            records = apdu.afl_records(gpo["94"])
        except ApduError as exc:
            raise ChipError(str(exc)) from exc
        for sfi, number in records[:records_max]:
            data.update(await self._send(apdu.read_record(sfi, number), "READ RECORD"))
        missing = [tag for tag in _CARD_DATA_TAGS if tag not in data]
        if missing:
            raise ChipError(f"the card lacks {', '.join(missing)}")
        return data

    async def first_generate_ac(self, app: ChipApplication, terminal: Mapping[str, bytes]
                                ) -> dict[str, bytes]:
        """A new transaction (unless the card read just started one) and its ARQC."""
        if not app.fresh:
            await self._send(apdu.select(app.aid), "SELECT")
            gpo = await self._send(apdu.get_processing_options(), "GET PROCESSING OPTIONS")
            app.data["82"] = gpo.get("82", app.data["82"])
        app.fresh = False
        try:
            cdol1 = tlv.build_dol_data(app.data["8C"], terminal)
        except tlv.TlvError as exc:
            raise ChipError(f"CDOL1: {exc}") from exc
        answer = await self._send(apdu.generate_ac(CryptogramType.ARQC, cdol1), "GENERATE AC")
        if "9F26" not in answer or "9F27" not in answer or "9F36" not in answer:
            raise ChipError("GENERATE AC without 9F26, 9F27 or 9F36")
        if answer["9F27"][0] & 0xC0 != CryptogramType.ARQC:
            raise ChipError(f"the card declined offline (9F27 {answer['9F27'].hex()})")
        app.arqc_tags = {**terminal, **answer}
        return answer

    async def second_generate_ac(self, app: ChipApplication, *, arc: bytes,
                                 issuer_auth: bytes | None, approve: bool) -> CryptogramType:
        """Hand the host's answer to the card: a TC is asked for only when ``approve``."""
        values = {"8A": arc, "95": app.arqc_tags.get("95", TVR_ONLINE_PIN),
                  "9F37": app.arqc_tags.get("9F37", bytes(4))}
        if issuer_auth is not None:
            values["91"] = issuer_auth
        try:
            cdol2 = tlv.build_dol_data(app.data["8D"], values)
        except tlv.TlvError as exc:
            raise ChipError(f"CDOL2: {exc}") from exc
        kind = CryptogramType.TC if approve else CryptogramType.AAC
        answer = await self._send(apdu.generate_ac(kind, cdol2), "second GENERATE AC")
        cid = answer.get("9F27", b"\x00")[0] & 0xC0
        return CryptogramType.TC if cid == CryptogramType.TC else CryptogramType.AAC


def terminal_data(*, processing_code: str, amount_minor: int, currency: str,
                  now: dt.datetime) -> dict[str, bytes]:
    """The terminal's side of CDOL1 and of field 55 (spec 11 table)."""
    return {
        "9F02": bytes.fromhex(f"{amount_minor:012d}"),
        "9F03": bytes(6),
        "9F1A": TERMINAL_COUNTRY_CNY,
        "95": TVR_ONLINE_PIN,
        "5F2A": bytes.fromhex(f"0{currency}"),
        "9A": bytes.fromhex(now.strftime("%y%m%d")),
        "9C": bytes.fromhex(processing_code[:2]),
        "9F37": os.urandom(4),
    }


# Spec 11: the tags a chip 0200's field 55 must hold, in the order this terminal writes them.
FIELD55_TAGS: Final = ("9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02",
                       "9F03", "5F2A", "82", "9F1A")


def field55(app: ChipApplication) -> str:
    """Field 55 (hex) from the ARQC and the data it was computed over."""
    values = {**app.data, **app.arqc_tags}
    missing = [tag for tag in FIELD55_TAGS if tag not in values]
    if missing:
        raise ChipError(f"field 55 lacks {', '.join(missing)}")
    return tlv.encode([(tag, values[tag]) for tag in FIELD55_TAGS]).hex().upper()


def issuer_authentication_data(field55_hex: str | None) -> bytes | None:
    """Tag 91 (ARPC || ARC) of a 0210's field 55, None when absent or malformed."""
    if not field55_hex:
        return None
    try:
        value = tlv.parse(bytes.fromhex(field55_hex)).get("91")
    except (ValueError, tlv.TlvError):
        return None
    return value if value is not None and len(value) == 10 else None
