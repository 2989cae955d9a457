"""Terminal-side builders (terminals/hostlink/financial.py, keys.py): golden field values written
by hand from spec 2, and the key exchange round trip through the HSM's TR-31 primitives."""

from __future__ import annotations

import datetime as dt

import pytest

from switch.hsm.primitives import Tr31Header, decrypt_pin_block, retail_mac, tr31_wrap
from switch.protocol.field48 import encode_tags
from switch.protocol.message import decode_message
from terminals.hostlink.financial import (
    CardData,
    TerminalIdentity,
    completion_advice,
    encode_request,
    financial_request,
    reversal_advice,
)
from terminals.hostlink.keys import KeyExchangeError, ResponseMacError, TerminalKeySet

NOW = dt.datetime(2026, 11, 21, 10, 15, 0, tzinfo=dt.UTC)
TERMINAL = TerminalIdentity("ATM001", acquirer_id="123456")
CARD = CardData("6228480000000000017", "2812")
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TPK = bytes.fromhex("1111111111111111" "2222222222222222")
TAK = bytes.fromhex("3333333333333333" "4444444444444444")


def _key_exchange_fields(version: str = "B", tak_usage: str = "M3") -> dict[str, str]:
    kp = tr31_wrap(TMK, Tr31Header(version, "P0", "T", "E", "00", "N"), TPK)
    km = tr31_wrap(TMK, Tr31Header(version, tak_usage, "T", "C", "00", "N"), TAK)
    return {"39": "00", "48": encode_tags({"KP": kp, "KM": km})}


def test_withdrawal_fields() -> None:
    fields = financial_request(TERMINAL, CARD, stan="000042", processing_code="010000",
                               amount_minor=50_000, now=NOW, pin_block="0" * 16)
    assert fields["7"] == "1121101500"
    assert fields["35"] == "6228480000000000017=281210100000"
    assert fields["41"] == "ATM001  "
    assert fields["4"] == "000000050000"


def test_advices_field90_and_95() -> None:
    original = financial_request(TERMINAL, CARD, stan="000042", processing_code="010000",
                                 amount_minor=50_000, now=NOW, pin_block="0" * 16)
    later = NOW + dt.timedelta(seconds=30)
    completion = completion_advice(original, stan="000043", now=later, final_amount_minor=40_000)
    # orig MTI 0200 + STAN 000042 + field 7 1121101500 + acquirer 00000123456 + 11 zeros
    assert completion["90"] == "0200" "000042" "1121101500" "00000123456" "00000000000"
    assert completion["2"] == CARD.pan and "35" not in completion
    assert completion["14"] == "2812"
    assert completion["4"] == "000000040000"
    reversal = reversal_advice(original, stan="000044", now=later, reason="32",
                               dispensed_minor=30_000)
    assert reversal["95"] == "000000030000" "000000000000" "C00000000" "C00000000"
    assert reversal["4"] == "000000050000" and reversal["39"] == "32"


def test_key_exchange_unwraps_and_checks_usage() -> None:
    keys = TerminalKeySet(tmk=TMK).after_key_exchange(_key_exchange_fields())
    assert (keys.tpk, keys.tak) == (TPK, TAK)
    with pytest.raises(KeyExchangeError):
        TerminalKeySet(tmk=TMK).after_key_exchange(_key_exchange_fields(tak_usage="M1"))
    with pytest.raises(KeyExchangeError):
        TerminalKeySet(tmk=TMK).after_key_exchange({"39": "96"})


def test_pin_block_and_mac_round_trip() -> None:
    keys = TerminalKeySet(tmk=TMK, tpk=TPK, tak=TAK)
    block = keys.pin_block("1234", CARD.pan)
    assert decrypt_pin_block(TPK, bytes.fromhex(block), CARD.pan, 0) == "1234"
    fields = financial_request(TERMINAL, CARD, stan="000042", processing_code="010000",
                               amount_minor=50_000, now=NOW, pin_block=block)
    raw = encode_request("0200", fields, keys)
    assert raw[-16:].decode() == retail_mac(TAK, raw[:-16]).hex().upper()
    assert decode_message(raw).fields["64"] == raw[-16:].decode()
    keys.verify_response_mac(raw)
    tampered = raw[:-17] + (b"0" if raw[-17:-16] != b"0" else b"1") + raw[-16:]
    with pytest.raises(ResponseMacError):
        keys.verify_response_mac(tampered)
