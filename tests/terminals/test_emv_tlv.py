"""The terminal's BER-TLV and APDU codecs: golden bytes worked out by hand from EMV Book 3
annex B and ISO 7816-4, then properties (round trip, no exception but TlvError on junk)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminals.emv import apdu, tlv


def test_golden_objects() -> None:
    # 9F36 (2-byte tag: 9F has its low 5 bits all set) length 02 value 0001.
    assert tlv.encode_one("9F36", b"\x00\x01") == bytes.fromhex("9F36020001")
    # 128 bytes need the 81 form: 91 81 80 + value.
    assert tlv.encode_one("91", bytes(128))[:3] == bytes.fromhex("918180")
    # A template 77 holding 9F27 80 and 9F36 0001: 77 09 | 9F27 01 80 | 9F36 02 0001.
    golden = bytes.fromhex("7709" "9F270180" "9F36020001")
    assert tlv.parse(golden) == {"77": bytes.fromhex("9F2701809F36020001")}
    assert tlv.flatten(golden) == {"9F27": b"\x80", "9F36": b"\x00\x01"}


@pytest.mark.parametrize("bad", [
    "00",            # padding byte where a tag should be
    "9F",            # tag cut short
    "9F3602",        # value cut short
    "9F368102AABB",  # 81 form for a length under 128: not the shortest form
    "5A01015A0101",  # the same tag twice
    "9F9F3601AA",    # 3-byte tag
])
def test_malformed_tlv_is_refused(bad: str) -> None:
    with pytest.raises(tlv.TlvError):
        tlv.flatten(bytes.fromhex(bad))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_tlv_error(data: bytes) -> None:
    try:
        tlv.flatten(data)
    except tlv.TlvError:
        pass


@given(st.dictionaries(st.sampled_from(["5A", "57", "82", "95", "9A", "9F02", "9F36", "5F2A"]),
                       st.binary(max_size=20)))
def test_round_trip(objects: dict[str, bytes]) -> None:
    assert tlv.parse(tlv.encode(objects)) == objects


def test_dol_data_in_dol_order_zeros_for_unknown() -> None:
    dol = bytes.fromhex("9F0206" "9F3704" "9A03")
    data = tlv.build_dol_data(dol, {"9F02": bytes.fromhex("000000010000"), "9A": b"\x26\x11\x29"})
    assert data == bytes.fromhex("000000010000" "00000000" "261129")
    with pytest.raises(tlv.TlvError):
        tlv.build_dol_data(dol, {"9F02": b"\x01"})


def test_golden_apdus() -> None:
    # SELECT: CLA 00 INS A4 P1 04 (by name) P2 00, Lc 08, AID, Le 00.
    aid = bytes.fromhex("A000000333010101")
    assert apdu.select(aid).encode() == bytes.fromhex("00A4040008A00000033301010100")
    # GPO with an empty PDOL: 80 A8 00 00 02 83 00 00.
    assert apdu.get_processing_options().encode() == bytes.fromhex("80A8000002830000")
    # READ RECORD 1 of SFI 1: P2 = 1 << 3 | 4 = 0C.
    assert apdu.read_record(1, 1).encode() == bytes.fromhex("00B2010C00")
    command = apdu.CommandApdu.decode(bytes.fromhex("80AE80000401020304" "00"))
    assert (command.ins, command.p1, command.data, command.le) == (0xAE, 0x80, b"\1\2\3\4", 0)
    assert apdu.afl_records(bytes.fromhex("08010200" "10030300")) == [(1, 1), (1, 2), (2, 3)]
    with pytest.raises(apdu.ApduError):
        apdu.CommandApdu.decode(bytes.fromhex("80AE800005010203"))
