"""The generator's cached-context PIN blocks and MACs equal independent implementations.

Sources: psec 1.3 (``psec.mac.generate_retail_mac``, ``psec.pinblock.encode_pinblock_iso_0``,
``psec.des.encrypt_tdes_ecb``), an independent PIN/MAC library, and the project's own HSM
primitives (``switch.hsm.primitives``). Reusing one object for many messages must give the
same MACs as computing each from scratch (the CBC chain is restarted per message).
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.terminal_crypto import (
    MacMismatch,
    TerminalCrypto,
    pan_field_format0,
    pin_field_format0,
)
from switch.hsm.primitives import encrypt_pin_block, retail_mac

keys = st.binary(min_size=16, max_size=16)
pans = st.text("0123456789", min_size=13, max_size=19)
pins = st.text("0123456789", min_size=4, max_size=12)


def _psec_retail_mac(key: bytes, data: bytes) -> bytes:
    from psec import mac

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # psec uses cryptography's deprecated TDES import
        return bytes(mac.generate_retail_mac(key[:8], key[8:], data, padding=1))


@settings(max_examples=60)
@given(tak=keys, messages=st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=6))
def test_mac_matches_psec_and_hsm_primitives_message_after_message(
    tak: bytes, messages: list[bytes]
) -> None:
    crypto = TerminalCrypto(bytes(16), tak)
    for data in messages:
        expected = retail_mac(tak, data).hex().upper().encode()
        assert _psec_retail_mac(tak, data).hex().upper().encode() == expected
        assert crypto.mac(data) == expected


@settings(max_examples=60)
@given(tpk=keys, pin=pins, pan=pans)
def test_pin_block_matches_hsm_primitives_and_psec(tpk: bytes, pin: str, pan: str) -> None:
    from psec import des, pinblock

    crypto = TerminalCrypto(tpk, bytes(16))
    got = crypto.pin_block(pin_field_format0(pin) ^ pan_field_format0(pan))
    assert got == encrypt_pin_block(tpk, pin, pan, 0).hex().upper().encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clear = pinblock.encode_pinblock_iso_0(pin, pan)
        assert got == des.encrypt_tdes_ecb(tpk, clear).hex().upper().encode()


def test_format0_fields_by_hand() -> None:
    # ISO 9564-1 format 0: 0 | length | PIN | F padding, XOR 0000 | 12 PAN digits before check.
    assert pin_field_format0("1234") == 0x041234FFFFFFFFFF
    assert pan_field_format0("4000001234567899") == 0x0000000123456789


def test_verify_mac_rejects_a_changed_message() -> None:
    crypto = TerminalCrypto(bytes(16), bytes(range(16)))
    mac = crypto.mac(b"0210 some response")
    crypto.verify_mac(b"0210 some response", mac)
    with pytest.raises(MacMismatch):
        crypto.verify_mac(b"0210 some responsE", mac)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        TerminalCrypto(bytes(8), bytes(16))
    with pytest.raises(ValueError):
        pin_field_format0("12a4")
    with pytest.raises(ValueError):
        pan_field_format0("123")
