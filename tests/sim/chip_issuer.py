"""An in-test issuer host for chip 0200s, until the real switch checks cryptograms.

A small Trio TCP server speaking spec sections 1-8 and 11 to the simulated ATM: sign-on, key
exchange (TR-31 blocks under the TMK, by `psec`), MACs (`psec`), PIN check, and the chip check
with `pyemv` as the independent oracle: MK-AC option A from IMK-AC, common session key, ARQC
recomputed over spec 11's data, ARPC method 1 over the ARC of its answer. It keeps a tiny
ledger (holds, captures, releases) so tests can check the money. It is test code: it trusts
nothing from terminals/ (it decodes 55 with pyemv, not with the terminal's TLV codec).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

import iso8583
import psec.mac
import psec.pinblock
import psec.tr31
import pyemv
import trio
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from switch.protocol.dialect import SPEC
from switch.protocol.field48 import decode_tags, encode_tags

# Spec 11 table: tag -> length in bytes (9F10 is 1..32).
MANDATORY = {"9F26": 8, "9F27": 1, "9F37": 4, "9F36": 2, "95": 5, "9A": 3, "9C": 1, "9F02": 6,
             "9F03": 6, "5F2A": 2, "82": 2, "9F1A": 2}
ARQC_DATA = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36", "9F10")


@dataclass
class IssuerCard:
    pan: str
    pin: str
    balance: int
    imk_ac: bytes | None = None  # a chip card
    psn: str = "01"
    answer: str = "00"  # the response code for the next financial requests
    corrupt_arpc: bool = False
    omit_arpc: bool = False
    atc_accepted: int = -1
    wrong_pins: int = 0


@dataclass
class ChipIssuer:
    tmk: bytes
    cards: dict[str, IssuerCard]
    received: list[dict[str, Any]] = field(default_factory=list)
    holds: dict[str, tuple[str, int]] = field(default_factory=dict)  # rrn -> (pan, amount)
    tak: bytes = b""
    tpk: bytes = b""

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        buffer = b""
        try:
            while True:
                while len(buffer) < 2 or len(buffer) < 2 + struct.unpack(">H", buffer[:2])[0]:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        return
                    buffer += chunk
                size = struct.unpack(">H", buffer[:2])[0]
                raw, buffer = buffer[2 : 2 + size], buffer[2 + size :]
                if not raw:
                    continue  # a zero-length frame: keep-alive, as the switch treats it
                answer = self._answer(raw)
                await stream.send_all(struct.pack(">H", len(answer)) + answer)
        except trio.BrokenResourceError:
            return

    # -- messages -------------------------------------------------------------------------
    def _answer(self, raw: bytes) -> bytes:
        decoded, _ = iso8583.decode(bytearray(raw), SPEC)
        self.received.append(dict(decoded))
        mti = decoded["t"]
        if mti == "0800":
            return self._network(decoded)
        mac_field = "128" if "128" in decoded else "64"
        expected = psec.mac.generate_retail_mac(self.tak[:8], self.tak[8:], raw[:-16], 1)
        if decoded.get(mac_field) != expected.hex().upper():
            raise AssertionError(f"bad MAC on {mti}")
        if mti == "0200":
            return self._financial(decoded)
        rrn = decoded["37"]
        if mti[:3] == "022" and rrn in self.holds:
            pan, _amount = self.holds.pop(rrn)
            self.cards[pan].balance -= int(decoded["4"])
        elif mti[:3] == "022" and decoded["3"][:2] == "21":
            self.cards[decoded["2"]].balance += int(decoded["4"])
        elif mti[:3] == "042" and rrn in self.holds:
            pan, _amount = self.holds.pop(rrn)
            self.cards[pan].balance -= int(decoded.get("95", "0" * 12)[:12])
        echo = {k: decoded[k] for k in ("3", "4", "7", "11", "32", "37", "41", "49", "90")
                if k in decoded}
        return self._encode({"t": mti[:2] + "30", **echo, "39": "00"})

    def _network(self, decoded: dict[str, Any]) -> bytes:
        fields = {"t": "0810", **{k: decoded[k] for k in ("7", "11", "41", "70")}, "39": "00"}
        if decoded["70"] == "161":
            self.tpk, self.tak = os.urandom(16), os.urandom(16)
            fields["48"] = encode_tags({
                "KP": psec.tr31.wrap(self.tmk, "B0000P0TE00N0000", self.tpk),
                "KM": psec.tr31.wrap(self.tmk, "B0000M3TC00N0000", self.tak)})
            raw, _ = iso8583.encode(fields, SPEC)
            return bytes(raw)
        raw, _ = iso8583.encode(fields, SPEC)
        return bytes(raw)

    def _financial(self, request: dict[str, Any]) -> bytes:
        pan = request["35"].split("=")[0]
        card = self.cards.get(pan)
        code, icc = self._decide(request, card)
        fields = {"t": "0210", **{k: request[k] for k in (
            "3", "4", "7", "11", "12", "13", "32", "37", "41", "42", "49") if k in request},
            "39": code}
        if code == "00":
            fields["38"] = "A12345"
            if request["3"][:2] == "01" and card is not None:
                self.holds[request["37"]] = (pan, int(request["4"]))
        if code == "00" and card is not None and request["3"][:2] != "39":
            fields["54"] = self._balances(card, request["3"][2:4])
        if code == "00" and request["3"][:2] == "39":
            name = "Test Payee"
            fields["48"] = encode_tags({"PN": name[0] + "*" * (len(name) - 1)})
            fields["103"] = request["103"]
        if icc is not None:
            fields["55"] = icc
        return self._encode(fields)

    def _balances(self, card: IssuerCard, account_type: str) -> str:
        """Field 54 (spec 2): ledger then available, each type + amount type + 156 + C/D + n12."""
        held = sum(amount for pan, amount in self.holds.values() if pan == card.pan)
        blocks = []
        for amount_type, value in (("01", card.balance), ("02", card.balance - held)):
            sign = "C" if value >= 0 else "D"
            blocks.append(f"{account_type}{amount_type}156{sign}{abs(value):012d}")
        return "".join(blocks)

    def _decide(self, request: dict[str, Any], card: IssuerCard | None) -> tuple[str, str | None]:
        if card is None:
            return "14", None
        chip = request["22"][:2] == "05"
        if card.imk_ac is not None and not chip:
            return "05", None  # spec 11: no fallback
        session_key = arqc = None
        if chip:
            session_key, arqc, atc = self._check_arqc(request, card)
            if session_key is None or arqc is None:
                return "59", None
            card.atc_accepted = atc
        code = self._pin_and_answer(request, card)
        if session_key is None or arqc is None or card.omit_arpc:
            return code, None
        arc = code.encode("ascii")
        arpc = pyemv.ac.generate_arpc_1(session_key, arqc, arc)
        if card.corrupt_arpc:
            arpc = bytes([arpc[0] ^ 0xFF]) + arpc[1:]
        return code, "910A" + (arpc + arc).hex().upper()

    def _check_arqc(self, request: dict[str, Any], card: IssuerCard
                    ) -> tuple[bytes | None, bytes | None, int]:
        if card.imk_ac is None or request.get("23") != "0" + card.psn:
            return None, None, -1
        tags = pyemv.tlv.decode(bytes.fromhex(request["55"]), simple=True)
        for tag, length in MANDATORY.items():
            if len(tags.get(tag, b"")) != length:
                raise AssertionError(f"field 55 lacks {tag} or has another length")
        if tags["9F02"].hex() != request["4"] or tags["9C"].hex() != request["3"][:2]:
            return None, None, -1
        atc = int.from_bytes(tags["9F36"], "big")
        if atc <= card.atc_accepted:
            return None, None, -1
        icc_mk = pyemv.kd.derive_icc_mk_a(card.imk_ac, card.pan, card.psn)
        session_key = pyemv.kd.derive_common_sk(icc_mk, tags["9F36"] + bytes(6))
        data = b"".join(tags[tag] for tag in ARQC_DATA)
        arqc = pyemv.ac.generate_ac(session_key, data, pyemv.ac.PaddingType.EMV)
        if arqc != tags["9F26"]:
            return None, None, -1
        return session_key, arqc, atc

    def _pin_and_answer(self, request: dict[str, Any], card: IssuerCard) -> str:
        """PIN tries as spec 6 and 10 say (75 on the third wrong PIN), PIN change applied."""
        if "52" not in request:
            return card.answer
        if card.wrong_pins >= 3:
            return "75"
        if not self._pin_ok(request["52"], card):
            card.wrong_pins += 1
            return "75" if card.wrong_pins >= 3 else "55"
        card.wrong_pins = 0
        new_block = decode_tags(request.get("48", "")).get("NP")
        if request["3"][:2] == "90" and new_block and card.answer == "00":
            card.pin = self._clear_pin(new_block, card)
        return card.answer

    def _clear_pin(self, pin_block_hex: str, card: IssuerCard) -> str:
        decryptor = Cipher(TripleDES(self.tpk + self.tpk[:8]), modes.ECB()).decryptor()
        clear = decryptor.update(bytes.fromhex(pin_block_hex)) + decryptor.finalize()
        return str(psec.pinblock.decode_pinblock_iso_0(clear, card.pan))

    def _pin_ok(self, pin_block_hex: str, card: IssuerCard) -> bool:
        return self._clear_pin(pin_block_hex, card) == card.pin

    def _encode(self, fields: dict[str, Any]) -> bytes:
        secondary = any(key.isdigit() and int(key) > 64 for key in fields)
        doc = {**fields, ("128" if secondary else "64"): "0" * 16}
        raw, _ = iso8583.encode(doc, SPEC)
        mac = psec.mac.generate_retail_mac(self.tak[:8], self.tak[8:], bytes(raw[:-16]), 1)
        return bytes(raw[:-16]) + mac.hex().upper().encode()

    def requests(self, mti: str) -> list[dict[str, Any]]:
        return [message for message in self.received if message["t"] == mti]
