"""The emulated chip card, driven APDU by APDU: data it returns, the ATC rule, the ARQC checked
with `pyemv` (independent oracle), and the second GENERATE AC's TC/AAC decision."""

from __future__ import annotations

import pyemv
import pytest

from terminals.emulators.chip_card import ChipCard
from terminals.emv import apdu, tlv
from terminals.emv.apdu import CryptogramType, ResponseApdu

IMK_HEX = "0123456789ABCDEFFEDCBA9876543210"
PAN, PSN = "6228480000000000108", "01"
CDOL1_DATA = bytes.fromhex(
    "000000050000" "000000000000" "0156" "0000040000" "0156" "261129" "01" "11223344")


def send(card: ChipCard, command: apdu.CommandApdu) -> ResponseApdu:
    return ResponseApdu.decode(card.exchange(command.encode()))


def start(card: ChipCard) -> dict[str, bytes]:
    card.reset()
    assert send(card, apdu.select(bytes.fromhex("A000000333010101"))).ok
    gpo = send(card, apdu.get_processing_options())
    assert gpo.ok
    record = send(card, apdu.read_record(1, 1))
    assert record.ok
    return {**tlv.flatten(gpo.data), **tlv.flatten(record.data)}


def oracle_session_key(atc: int) -> bytes:
    mk = pyemv.kd.derive_icc_mk_a(bytes.fromhex(IMK_HEX), PAN, PSN)
    return pyemv.kd.derive_common_sk(mk, atc.to_bytes(2, "big") + bytes(6))


def first_ac(card: ChipCard) -> dict[str, bytes]:
    response = send(card, apdu.generate_ac(CryptogramType.ARQC, CDOL1_DATA))
    assert response.ok
    return tlv.flatten(response.data)


def test_card_data_and_arqc_verified_by_pyemv() -> None:
    card = ChipCard.personalise(IMK_HEX, PAN, "3012", PSN, atc=6)
    data = start(card)
    assert data["57"] == bytes.fromhex("6228480000000000108D30122200000000")
    assert data["5A"] == bytes.fromhex("6228480000000000108F")
    assert (data["5F34"], data["82"]) == (b"\x01", bytes.fromhex("1800"))
    ac = first_ac(card)
    assert (ac["9F27"], ac["9F36"]) == (b"\x80", b"\x00\x07")  # ATC 6 + 1
    # Spec 11's D: CDOL1 data (the first eight items) || 82 || 9F36 || 9F10.
    d = CDOL1_DATA + data["82"] + ac["9F36"] + ac["9F10"]
    assert ac["9F26"] == pyemv.ac.generate_ac(oracle_session_key(7), d, pyemv.ac.PaddingType.EMV)


@pytest.mark.parametrize(("arc", "corrupt", "requested", "expected"), [
    (b"00", False, CryptogramType.TC, CryptogramType.TC),
    (b"00", True, CryptogramType.TC, CryptogramType.AAC),    # ARPC does not verify
    (b"51", False, CryptogramType.TC, CryptogramType.AAC),   # verified, but a decline
    (b"00", False, CryptogramType.AAC, CryptogramType.AAC),  # terminal asks for an AAC
])
def test_second_generate_ac(arc: bytes, corrupt: bool, requested: CryptogramType,
                            expected: CryptogramType) -> None:
    card = ChipCard.personalise(IMK_HEX, PAN, "3012", PSN)
    start(card)
    arqc = first_ac(card)["9F26"]
    arpc = pyemv.ac.generate_arpc_1(oracle_session_key(1), arqc, arc)
    if corrupt:
        arpc = bytes([arpc[0] ^ 0x01]) + arpc[1:]
    cdol2 = arpc + arc + arc + bytes.fromhex("0000040000") + bytes.fromhex("11223344")
    second = send(card, apdu.generate_ac(requested, cdol2))
    assert second.ok
    assert tlv.flatten(second.data)["9F27"] == bytes([int(expected)])
    assert card.decisions[-1].arpc_verified is (not corrupt)


def test_atc_rises_per_transaction_and_order_is_enforced() -> None:
    card = ChipCard.personalise(IMK_HEX, PAN, "3012", PSN)
    card.reset()
    assert send(card, apdu.get_processing_options()).sw == apdu.SW_CONDITIONS_NOT_SATISFIED
    start(card)
    start(card)
    assert first_ac(card)["9F36"] == b"\x00\x02"
    assert send(card, apdu.read_record(2, 1)).sw == apdu.SW_RECORD_NOT_FOUND
    assert send(card, apdu.select(b"\xA0\x00\x00\x00\x04")).sw == apdu.SW_FILE_NOT_FOUND
    assert card.exchange(b"\x00") == bytes.fromhex("6700")
