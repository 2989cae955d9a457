"""What the golden-message tests share: the case type, the stand-in MAC, and the two checks
every golden message goes through (decode field by field, encode byte for byte).

The cases themselves are in ``test_golden_requests.py`` (what the terminal sends) and
``test_golden_responses.py`` (what the host answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from switch.protocol import decode_message, encode_message, mac_input_of, mac_of

FAKE_MAC = "89ABCDEF01234567"

# Field 35 of the withdrawals: PAN 16 + '=' + YYMM + service code 101 + 6 discretionary = 30.
TRACK2 = "6225880123456789=2812101000000"
# Field 43, ans40: 25-char name + 13-char city + 2-char country.
NAME_LOCATION = "HEAD OFFICE LOBBY ATM 1  SHANGHAI     CN"


@dataclass(frozen=True)
class Golden:
    name: str
    raw: bytes
    mti: str
    fields: Mapping[str, str]
    macced: bool = False


def assert_decodes_to_golden(golden: Golden) -> None:
    """The raw bytes decode to the case's MTI and fields (the MAC field holds FAKE_MAC)."""
    message = decode_message(golden.raw)
    assert message.mti == golden.mti
    expected = dict(golden.fields)
    if golden.macced:
        expected[message.mac_field or "?"] = FAKE_MAC
        assert mac_of(golden.raw) == FAKE_MAC
    assert dict(message.fields) == expected


def assert_encodes_to_golden(golden: Golden) -> None:
    """The case's fields encode to its raw bytes; a MAC is asked for over the spec 8 input."""
    seen: list[bytes] = []

    def fake_mac(mac_input: bytes) -> str:
        seen.append(mac_input)
        return FAKE_MAC

    raw = encode_message(golden.mti, golden.fields, mac=fake_mac if golden.macced else None)
    assert raw == golden.raw
    if golden.macced:
        # Spec 8: the MAC covers MTI through the field before the MAC, bitmap flagging the MAC.
        assert seen == [golden.raw[:-16]] == [mac_input_of(golden.raw)]
