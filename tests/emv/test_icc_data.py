"""Section 11's field 55 data (switch/emv/icc_data.py): D's layout and tag 91, by hand.

Goal: D is exactly the 11 values in section 11's order (33 bytes + 9F10) and tag 91 is
``910A`` + ARPC + ARC in ASCII. Method: values chosen so each byte shows where it came from.
"""

from __future__ import annotations

import pytest

from switch.emv.icc_data import ChipFormatError, parse_icc_data, response_field55

FIELD55 = (
    "9F0206" "020202020202"
    "9F0306" "030303030303"
    "9F1A02" "1A1A"
    "9505" "9595959595"
    "5F2A02" "2A2A"
    "9A03" "9A9A9A"
    "9C01" "9C"
    "9F3704" "37373737"
    "8202" "8282"
    "9F3602" "3636"
    "9F1003" "101010"
    "9F2608" "2626262626262626"
    "9F2701" "80"
)  # fmt: skip


def test_cryptogram_data_is_section_11_order_values_only() -> None:
    icc = parse_icc_data(FIELD55)
    expected = bytes.fromhex(
        "020202020202" "030303030303" "1A1A" "9595959595" "2A2A" "9A9A9A" "9C"
        "37373737" "8282" "3636" "101010"
    )  # fmt: skip
    assert icc.cryptogram_data() == expected
    assert len(expected) == 33 + 3
    assert icc.atc == 0x3636
    assert icc.arqc == bytes.fromhex("2626262626262626")
    assert icc.is_arqc
    assert "2626" not in repr(icc)


@pytest.mark.parametrize(
    ("cid", "is_arqc"), [("80", True), ("BF", True), ("40", False), ("00", False), ("C0", False)]
)
def test_cid_type_bits(cid: str, is_arqc: bool) -> None:
    assert parse_icc_data(FIELD55[:-2] + cid).is_arqc is is_arqc


def test_response_field55_by_hand() -> None:
    arpc = bytes.fromhex("0123456789ABCDEF")
    assert response_field55(arpc, "00") == "910A0123456789ABCDEF3030"
    assert response_field55(arpc, "51") == "910A0123456789ABCDEF3531"


def test_9f10_of_33_bytes_is_refused() -> None:
    too_long = FIELD55.replace("9F1003101010", "9F1021" + "10" * 33)
    with pytest.raises(ChipFormatError, match="9F10"):
        parse_icc_data(too_long)
