"""Builders for the terminal's financial messages (spec 5.2-5.4): field dicts ready to encode.

Pure functions: the caller picks STANs (``HostConnection`` keeps the counter), the clock and
the keys. :func:`encode_request` adds the MAC of spec 8 with the terminal's TAK.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from ops.masking import masked_repr
from switch.protocol.field48 import encode_tags
from switch.protocol.message import encode_message
from terminals.hostlink.keys import TerminalKeySet

CURRENCY_CNY = "156"
POS_ENTRY_MAGSTRIPE_PIN = "021"
POS_ENTRY_CHIP_PIN = "051"
MERCHANT_TYPE_ATM = "6011"
acquirer_digits = 11
# Spec 2 field 95: the fee sub-fields are always zero here.
_FEES_ZERO = "C00000000C00000000"


@dataclass(frozen=True, slots=True)
class TerminalIdentity:
    terminal_id: str
    acquirer_id: str = "123456"
    card_acceptor_id: str = "ATMSWITCH000001"
    name_location: str = "ATM SWITCH TEST TERMINAL        SHANGHAI"

    @property
    def field41(self) -> str:
        return self.terminal_id.ljust(8)[:8]


@dataclass(frozen=True, slots=True)
class CardData:
    __repr__ = masked_repr  # PAN 6+4, secrets wiped (issue 11 item 5)

    pan: str
    expiry: str  # YYMM
    service_code: str = "101"

    @property
    def track2(self) -> str:
        """Spec 2 field 35: PAN '=' YYMM service code + discretionary data."""
        return f"{self.pan}={self.expiry}{self.service_code}00000"


def transmission_datetime(now: dt.datetime) -> str:
    """Field 7, MMDDhhmmss in UTC."""
    return now.astimezone(dt.UTC).strftime("%m%d%H%M%S")


def financial_request(
    terminal: TerminalIdentity,
    card: CardData,
    *,
    stan: str,
    processing_code: str,
    amount_minor: int,
    now: dt.datetime,
    pin_block: str | None = None,
    currency: str = CURRENCY_CNY,
    from_account: str | None = None,
    to_account: str | None = None,
    tags: Mapping[str, str] | None = None,
    rrn: str | None = None,
    send_pan: bool = False,
) -> dict[str, str]:
    """A 0200 (spec 5.2): 3, 4, 7, 11, 12, 13, 22, 32, 35, 37, 41, 42, 43, 49, 52, 102/103, 48."""
    fields = {
        "3": processing_code,
        "4": f"{amount_minor:012d}",
        "7": transmission_datetime(now),
        "11": stan,
        "12": now.strftime("%H%M%S"),
        "13": now.strftime("%m%d"),
        "18": MERCHANT_TYPE_ATM,
        "22": POS_ENTRY_MAGSTRIPE_PIN,
        "32": terminal.acquirer_id,
        "35": card.track2,
        "37": rrn or f"{now:%y%j}{stan}"[:12].rjust(12, "0"),
        "41": terminal.field41,
        "42": terminal.card_acceptor_id,
        "43": terminal.name_location,
        "49": currency,
    }
    if send_pan:
        fields["2"] = card.pan
    all_tags = dict(tags or {})
    if pin_block is not None:
        if len(pin_block) == 32:  # AES terminals: format 4 in 48/PB (spec 3, 7)
            all_tags["PB"] = pin_block
        else:
            fields["52"] = pin_block
    if all_tags:
        fields["48"] = encode_tags(all_tags)
    if from_account is not None:
        fields["102"] = from_account
    if to_account is not None:
        fields["103"] = to_account
    return fields


def chip_request_fields(fields: dict[str, str], *, track2: str, psn: str,
                        icc_data_hex: str) -> dict[str, str]:
    """Turn a 0200 into a chip 0200 (spec 11): 22 = 051, 23 = 0 + PSN, 35 from tag 57, 55."""
    if len(psn) != 2 or not psn.isdigit():
        raise ValueError("the PSN is 2 digits")
    return {**fields, "22": POS_ENTRY_CHIP_PIN, "23": f"0{psn}", "35": track2,
            "55": icc_data_hex}


def original_data(original: Mapping[str, str]) -> str:
    """Field 90 naming a 0200: MTI + STAN + field 7 + acquirer id (11, zero-filled) + 11 zeros."""
    acquirer = original["32"].zfill(acquirer_digits)
    return f"0200{original['11']}{original['7']}{acquirer}{'0' * 11}"


def _advice_fields(original: Mapping[str, str], *, stan: str, now: dt.datetime,
                   amount_minor: int) -> dict[str, str]:
    pan = original.get("2") or original["35"].split("=", 1)[0]
    fields = {
        "2": pan,
        "3": original["3"],
        "4": f"{amount_minor:012d}",
        "7": transmission_datetime(now),
        "11": stan,
        "32": original["32"],
        "37": original["37"],
        "41": original["41"],
        "49": original["49"],
        "90": original_data(original),
    }
    if "35" in original:
        fields["14"] = original["35"].split("=", 1)[1][:4]
    for account in ("102", "103"):
        if account in original:
            fields[account] = original[account]
    return fields


def completion_advice(original: Mapping[str, str], *, stan: str, now: dt.datetime,
                      final_amount_minor: int | None = None) -> dict[str, str]:
    """A 0220 (spec 5.3): field 4 is the final amount (default: the approved amount)."""
    amount = int(original["4"]) if final_amount_minor is None else final_amount_minor
    return _advice_fields(original, stan=stan, now=now, amount_minor=amount)


def reversal_advice(original: Mapping[str, str], *, stan: str, now: dt.datetime, reason: str,
                    dispensed_minor: int | None = None) -> dict[str, str]:
    """A 0420 (spec 5.4): 4 is the original amount; 39 the reason; 95 for a partial dispense."""
    fields = _advice_fields(original, stan=stan, now=now, amount_minor=int(original["4"]))
    fields["39"] = reason
    if dispensed_minor is not None:
        fields["95"] = f"{dispensed_minor:012d}{'0' * 12}{_FEES_ZERO}"
    return fields


def encode_request(mti: str, fields: Mapping[str, str], keys: TerminalKeySet) -> bytes:
    """Encode with the MAC of spec 8 (field 64, or 128 with a secondary bitmap)."""
    return encode_message(mti, fields, mac=keys.mac)
