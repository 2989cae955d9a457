"""Golden requests and advices (terminal to host) written by hand from ATM_HOST_SPEC.md
sections 2, 3 and 5: sign-on, echo, sign-off, 0200 withdrawal and transfer, 0220, 0420.

Goal: the codec produces and accepts exactly the bytes the spec describes. Method:
every expected message below is a literal typed from the spec, with the bitmaps
worked out by hand (the comment under each bitmap lists the fields flagged, one
hex digit per 4 fields). Each case is decoded and compared field by field, then
encoded from those fields and compared byte for byte. MACs come from a stand-in
MAC function that records its input, so the test also pins the MAC input (spec 8).
The checks and the case type are shared through ``tests/protocol/golden.py``.
"""

from __future__ import annotations

import pytest

from switch.protocol import decode_message, decode_tags
from tests.protocol.golden import (
    NAME_LOCATION,
    TRACK2,
    Golden,
    assert_decodes_to_golden,
    assert_encodes_to_golden,
)

REQUESTS = [
    Golden(
        "0800 sign-on",
        b"0800"
        b"8220000000800000"  # 1 7 | 11 | 41
        b"0400000000000000"  # 70
        b"0615103000"
        b"000001"
        b"ATM00001"
        b"001",
        "0800",
        {"7": "0615103000", "11": "000001", "41": "ATM00001", "70": "001"},
    ),
    Golden(
        "0800 echo",
        b"0800822000000080000004000000000000000615103100000002ATM00001301",
        "0800",
        {"7": "0615103100", "11": "000002", "41": "ATM00001", "70": "301"},
    ),
    Golden(
        "0800 sign-off",
        b"0800822000000080000004000000000000000615235959999999ATM00001002",
        "0800",
        {"7": "0615235959", "11": "999999", "41": "ATM00001", "70": "002"},
    ),
    Golden(
        "0200 withdrawal with PIN block (52) and MAC in 64",
        b"0200"
        b"3238040128E09001"  # 3 4 | 7 | 11 12 | 13 | 22 | 32 | 35 | 37 | 41 42 43 | 49 52 | 64
        b"011000"
        b"000000010000"
        b"0615103000"
        b"000003"
        b"183000"
        b"0615"
        b"021"
        b"06123456"
        b"30"
        b"6225880123456789=2812101000000"
        b"061510000003"
        b"ATM00001"
        b"BANK00000000001"
        b"HEAD OFFICE LOBBY ATM 1  SHANGHAI     CN"
        b"156"
        b"0123456789ABCDEF"
        b"89ABCDEF01234567",
        "0200",
        {
            "3": "011000",
            "4": "000000010000",
            "7": "0615103000",
            "11": "000003",
            "12": "183000",
            "13": "0615",
            "22": "021",
            "32": "123456",
            "35": TRACK2,
            "37": "061510000003",
            "41": "ATM00001",
            "42": "BANK00000000001",
            "43": NAME_LOCATION,
            "49": "156",
            "52": "0123456789ABCDEF",
        },
        macced=True,
    ),
    Golden(
        "0200 transfer: secondary bitmap (102/103), field 48 in UTF-8, MAC in 128",
        b"0200"
        b"B238040128E19000"  # 1 3 4 | 7 | 11 12 | 13 | 22 | 32 | 35 | 37 | 41 42 43 | 48 | 49 52
        b"0000000006000001"  # 102 103 | 128
        b"401020"
        b"000000500000"
        b"0615103500"
        b"000004"
        b"183500"
        b"0615"
        b"021"
        b"06123456"
        b"30"
        b"6225880123456789=2812101000000"
        b"061510000004"
        b"ATM00001"
        b"BANK00000000001"
        b"HEAD OFFICE LOBBY ATM 1  SHANGHAI     CN"
        b"018" + "LG002zhZN006转账".encode() + b"156"
        b"FEDCBA9876543210"
        b"16"
        b"6222000011112222"
        b"16"
        b"6222000033334444"
        b"89ABCDEF01234567",
        "0200",
        {
            "3": "401020",
            "4": "000000500000",
            "7": "0615103500",
            "11": "000004",
            "12": "183500",
            "13": "0615",
            "22": "021",
            "32": "123456",
            "35": TRACK2,
            "37": "061510000004",
            "41": "ATM00001",
            "42": "BANK00000000001",
            "43": NAME_LOCATION,
            "48": "LG002zhZN006转账",
            "49": "156",
            "52": "FEDCBA9876543210",
            "102": "6222000011112222",
            "103": "6222000033334444",
        },
        macced=True,
    ),
    Golden(
        "0220 completion advice with 90 (original data elements), MAC in 128",
        b"0220"
        b"F220000108808000"  # 1 2 3 4 | 7 | 11 | 32 | 37 | 41 | 49
        b"0000004000000001"  # 90 | 128
        b"16"
        b"6225880123456789"
        b"011000"
        b"000000010000"
        b"0615103010"
        b"000007"
        b"06123456"
        b"061510000003"
        b"ATM00001"
        b"156"
        b"0200"
        b"000003"
        b"0615103000"
        b"00000123456"
        b"00000000000"
        b"89ABCDEF01234567",
        "0220",
        {
            "2": "6225880123456789",
            "3": "011000",
            "4": "000000010000",
            "7": "0615103010",
            "11": "000007",
            "32": "123456",
            "37": "061510000003",
            "41": "ATM00001",
            "49": "156",
            "90": "020000000306151030000000012345600000000000",
        },
        macced=True,
    ),
    Golden(
        "0420 partial-dispense reversal with 39=32, 90 and 95, MAC in 128",
        b"0420"
        b"F22000010A808000"  # 1 2 3 4 | 7 | 11 | 32 | 37 39 | 41 | 49
        b"0000004200000001"  # 90 | 95 | 128
        b"16"
        b"6225880123456789"
        b"011000"
        b"000000010000"
        b"0615103020"
        b"000008"
        b"06123456"
        b"061510000003"
        b"32"
        b"ATM00001"
        b"156"
        b"0200"
        b"000003"
        b"0615103000"
        b"00000123456"
        b"00000000000"
        b"000000005000"
        b"000000000000"
        b"C00000000"
        b"C00000000"
        b"89ABCDEF01234567",
        "0420",
        {
            "2": "6225880123456789",
            "3": "011000",
            "4": "000000010000",
            "7": "0615103020",
            "11": "000008",
            "32": "123456",
            "37": "061510000003",
            "39": "32",
            "41": "ATM00001",
            "49": "156",
            "90": "020000000306151030000000012345600000000000",
            "95": "000000005000000000000000C00000000C00000000",
        },
        macced=True,
    ),
]
WITHDRAWAL = next(g for g in REQUESTS if g.name.startswith("0200 withdrawal"))


@pytest.mark.parametrize("golden", REQUESTS, ids=lambda g: g.name)
def test_decode_golden(golden: Golden) -> None:
    assert_decodes_to_golden(golden)


@pytest.mark.parametrize("golden", REQUESTS, ids=lambda g: g.name)
def test_encode_golden(golden: Golden) -> None:
    assert_encodes_to_golden(golden)


def test_field48_lengths_count_utf8_bytes() -> None:
    # 王 is 3 bytes in UTF-8: "PN005王**" is right, "PN003王**" is wrong.
    assert decode_tags("PN005王**") == {"PN": "王**"}
    transfer = next(g for g in REQUESTS if g.name.startswith("0200 transfer"))
    assert decode_message(transfer.raw).tags() == {"LG": "zh", "ZN": "转账"}


def test_typed_view_of_a_withdrawal() -> None:
    withdrawal = decode_message(WITHDRAWAL.raw)
    assert withdrawal.stan == "000003"
    assert withdrawal.terminal_id == "ATM00001"
    assert withdrawal.processing_code == "011000"
    assert withdrawal.transaction_type == "01"
    assert withdrawal.amount_minor == 10000
    assert withdrawal.pan == "6225880123456789"
    assert withdrawal.mac_field == "64"
    assert withdrawal.message_class == "0200"
    assert not withdrawal.is_repeat
