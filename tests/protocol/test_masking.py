"""The dialect's masking rules (switch/protocol/masking.py): golden outputs written by hand.

Goal: a log can show a PAN only as first 6 + last 4, track 2 only as that masked PAN, and
nothing of a PIN block, key, MAC or expiry; anything that cannot be parsed is wiped (fail
closed). Method: a message full of secrets with its expected masked form, then hand-written
golden cases per rule (PAN lengths at and beyond the limits, track 2 with the ``=`` and
``D`` separators, free text). The expected strings are typed out, not computed.
"""

from __future__ import annotations

import pytest

from switch.protocol.masking import WIPED, mask_fields, mask_pan, mask_track2, scrub_text

SECRETS = {
    "2": "6225880123456789",
    "3": "011000",
    "11": "000001",
    "14": "2812",
    "35": "6225880123456789=2812101123456",
    "41": "ATM00001",
    "48": "LG002zhNP016ABCDEF0123456789PB032" + "F" * 32 + "KP005xxxxxKM005yyyyyPN005王**",
    "52": "0123456789ABCDEF",
    "55": "9F2608AABBCCDDEEFF0011",
    "64": "89ABCDEF01234567",
    "102": "6222000011112222",
    "128": "1122334455667788",
    "999": "not in the dialect",
}


def test_golden_masking() -> None:
    assert mask_fields(SECRETS) == {
        "2": "622588******6789",
        "3": "011000",
        "11": "000001",
        "14": WIPED,
        "35": "622588******6789",
        "41": "ATM00001",
        "48": f"LG=zh;NP={WIPED};PB={WIPED};KP={WIPED};KM={WIPED};PN=王**",
        "52": WIPED,
        "55": WIPED,
        "64": WIPED,
        "102": "6222000011112222",
        "128": WIPED,
        "999": WIPED,
    }


@pytest.mark.parametrize(
    ("pan", "shown"),
    [
        ("6225880123456789", "622588******6789"),  # 16 digits
        ("622848000000000017", "622848********0017"),  # 18
        ("6228480000000000017", "622848*********0017"),  # 19, the longest
        ("4111111111111", "411111***1111"),  # 13
        ("123456789012", "123456**9012"),  # 12, the shortest masked: 2 hidden
    ],
)
def test_pan_shows_first_six_and_last_four(pan: str, shown: str) -> None:
    assert mask_pan(pan) == shown


@pytest.mark.parametrize(
    "not_a_pan",
    [
        "",
        "12345",
        "12345678901",  # 11 digits: 6 + 4 would show all but one
        "62258801234567890123",  # 20 digits
        "6225 8801 2345 6789",
        "622588012345678X",
        "６２２５８８０１２３４５６７８９",  # full-width digits: isdigit() but not ASCII
    ],
)
def test_pan_fails_closed(not_a_pan: str) -> None:
    assert mask_pan(not_a_pan) == WIPED


@pytest.mark.parametrize(
    ("track2", "shown"),
    [
        ("6225880123456789=2812101123456", "622588******6789"),
        ("6225880123456789D2812101123456", "622588******6789"),
        ("123456789012=2812", "123456**9012"),
        ("6228480000000000017=28121010000000000", "622848*********0017"),
        ("6225880123456789=", "622588******6789"),  # nothing after the separator
    ],
)
def test_track2_keeps_only_the_masked_pan(track2: str, shown: str) -> None:
    assert mask_track2(track2) == shown
    assert mask_fields({"35": track2}) == {"35": shown}


@pytest.mark.parametrize(
    "track2",
    [
        "no separator here",
        "6225880123456789",  # a bare PAN is not track 2
        "=2812101123456",  # empty PAN
        "12345=2812101",  # PAN too short
        "6225 880123456789=2812",
    ],
)
def test_track2_fails_closed(track2: str) -> None:
    assert mask_track2(track2) == WIPED


def test_fails_closed_on_unparseable_values() -> None:
    assert mask_fields({"35": "no separator here"}) == {"35": WIPED}
    assert mask_fields({"48": "NP01"}) == {"48": WIPED}  # malformed field 48: wiped whole
    assert mask_fields({"2": 6225880123456789}) == {"2": WIPED}  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("card 6225880123456789 declined", "card 622588******6789 declined"),
        ("track 6225880123456789=2812101123456 read", "track 622588******6789 read"),
        ("track 6225880123456789D2812101123456 read", "track 622588******6789 read"),
        ("amount 000000010000 stan 000001", "amount 000000010000 stan 000001"),  # not PANs
        ("pin_block=0123456789ABCDEF", "pin_block=[wiped]"),
        ("{'52': '0123456789ABCDEF'}", "{'52': '[wiped]'}"),
        ("48 PB0160123456789ABCDEF", "48 PB016[wiped]"),
    ],
)
def test_scrub_text_golden(text: str, scrubbed: str) -> None:
    assert scrub_text(text) == scrubbed


def test_the_switch_has_one_pan_rule() -> None:
    """The masked PAN stored with a card (``cards.pan_masked``) is made by this same rule."""
    from switch.authorization import cards, issuing

    assert issuing.mask_pan is mask_pan
    assert not hasattr(cards, "mask_pan")
