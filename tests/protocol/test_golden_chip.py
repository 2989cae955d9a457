"""Golden chip messages (ATM_HOST_SPEC section 11): fields 23 and 55 in the dialect.

Goal: the codec carries 23 (n3) and 55 (LLLVAR, BER-TLV as upper-case hex, the length
counting hex characters) exactly as section 11 writes them. Method: the bytes below are
typed by hand: bitmaps worked out per nibble (comment under each), field 55's TLV items
counted by hand (tag, length byte, value), its LLL the number of hex characters. Each
message is decoded and compared field by field, encoded and compared byte for byte, and
the masked log view wipes 55.
"""

from __future__ import annotations

import pytest

from switch.emv.tlv import decode_tlv_hex
from switch.protocol import MessageFormatError, decode_message, encode_message, mac_input_of
from switch.protocol.masking import WIPED, mask_fields

FAKE_MAC = "89ABCDEF01234567"
TRACK2 = "6225880123456789=2812101000000"
NAME_LOCATION = "HEAD OFFICE LOBBY ATM 1  SHANGHAI     CN"
# The 13 tags of section 11's table, in the table's order, 84 bytes = 168 hex characters.
ICC_DATA = (
    "9F2608"
    "1122334455667788"  # ARQC              11 bytes
    "9F2701"
    "80"  # CID: an ARQC                    4
    "9F1007"
    "06010A03A00000"  # IAD                 10
    "9F3704"
    "1A2B3C4D"  # unpredictable number      7
    "9F3602"
    "0007"  # ATC                           5
    "9505"
    "0000000000"  # TVR                       7
    "9A03"
    "261129"  # date 2026-11-29               5
    "9C01"
    "01"  # transaction type = field 3[:2]    3
    "9F0206"
    "000000010000"  # = field 4             9
    "9F0306"
    "000000000000"  # amount, other         9
    "5F2A02"
    "0156"  # = 0 + field 49                5
    "8202"
    "3900"  # AIP                             4
    "9F1A02"
    "0156"  # terminal country              5
)  # 11+4+10+7+5+7+5+3+9+9+5+4+5 = 84 bytes

CHIP_0200 = (
    b"0200"
    # 3 4 | 7 | 11 12 | 13 | - | 22 23 | - | 32 | 35 | 37 | 41 42 43 | - | 49 52 | 55 | - | 64
    b"3238060128E09201"
    b"011000"
    b"000000010000"
    b"1129103000"
    b"000011"
    b"183000"
    b"1129"
    b"051"  # 22: chip, PIN capable
    b"001"  # 23: PSN 01
    b"06123456"
    b"30" + TRACK2.encode() + b"112910000011"
    b"ATM00001"
    b"BANK00000000001" + NAME_LOCATION.encode() + b"156"
    b"0123456789ABCDEF"
    b"168" + ICC_DATA.encode() + FAKE_MAC.encode()
)
CHIP_0200_FIELDS = {
    "3": "011000",
    "4": "000000010000",
    "7": "1129103000",
    "11": "000011",
    "12": "183000",
    "13": "1129",
    "22": "051",
    "23": "001",
    "32": "123456",
    "35": TRACK2,
    "37": "112910000011",
    "41": "ATM00001",
    "42": "BANK00000000001",
    "43": NAME_LOCATION,
    "49": "156",
    "52": "0123456789ABCDEF",
    "55": ICC_DATA,
}

# The 0210 of section 11: 55 = tag 91, 10 bytes = ARPC (8) || ARC '00' (3030): "024910A" + 20 hex.
CHIP_0210 = (
    b"0210"
    # 3 4 | 7 | 11 12 | 13 15 | - | - | - | 32 | - | 37 38 39 | 41 42 | - | 49 | 54 55 | - | 64
    b"323A00010EC08601"
    b"011000"
    b"000000010000"
    b"1129103000"
    b"000011"
    b"183000"
    b"1129"
    b"1129"
    b"06123456"
    b"112910000011"
    b"A12345"
    b"00"
    b"ATM00001"
    b"BANK00000000001"
    b"156"
    b"040"
    b"1001156C000000123456"
    b"1002156C000000113456"
    b"024910A0123456789ABCDEF3030" + FAKE_MAC.encode()
)


def test_chip_0200_decodes_field_by_field() -> None:
    message = decode_message(CHIP_0200)
    assert dict(message.fields) == {**CHIP_0200_FIELDS, "64": FAKE_MAC}
    items = decode_tlv_hex(message.fields["55"])
    assert len(items) == 13
    assert items["9F26"] == bytes.fromhex("1122334455667788")
    assert items["9F02"].hex() == message.fields["4"]


def test_chip_0200_encodes_byte_for_byte() -> None:
    seen: list[bytes] = []

    def fake_mac(mac_input: bytes) -> str:
        seen.append(mac_input)
        return FAKE_MAC

    assert encode_message("0200", CHIP_0200_FIELDS, mac=fake_mac) == CHIP_0200
    assert seen == [CHIP_0200[:-16]] == [mac_input_of(CHIP_0200)]


def test_chip_0210_with_tag_91() -> None:
    message = decode_message(CHIP_0210)
    assert message.fields["55"] == "910A0123456789ABCDEF3030"
    assert decode_tlv_hex(message.fields["55"]) == {"91": bytes.fromhex("0123456789ABCDEF3030")}
    fields = {k: v for k, v in message.fields.items() if k != "64"}
    assert encode_message("0210", fields, mac=lambda _: FAKE_MAC) == CHIP_0210


def test_logs_wipe_55_and_show_23() -> None:
    masked = mask_fields(CHIP_0200_FIELDS)
    assert masked["55"] == WIPED
    assert masked["23"] == "001"
    assert "1122334455667788" not in repr(masked)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("23", "0A1"),  # n3: digits only
        ("55", "9f26"),  # upper-case hex only
        ("55", "9F26 8"),
    ],
)
def test_bad_characters_are_format_errors(field: str, value: str) -> None:
    if field == "23":
        broken = CHIP_0200.replace(b"051001", b"051" + value.encode(), 1)
    else:
        broken = CHIP_0200.replace(
            b"168" + ICC_DATA.encode(), f"{len(value):03d}".encode() + value.encode(), 1
        )
    assert broken != CHIP_0200
    with pytest.raises(MessageFormatError):
        decode_message(broken)


def test_55_longer_than_510_hex_characters_is_a_format_error() -> None:
    long_data = "DF0181FC" + "00" * 252  # 256 bytes = 512 hex characters
    broken = CHIP_0200.replace(b"168" + ICC_DATA.encode(), b"512" + long_data.encode(), 1)
    with pytest.raises(MessageFormatError):
        decode_message(broken)
