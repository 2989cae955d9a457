"""The one response-code table and the bilingual screen texts."""

from __future__ import annotations

from switch.authorization.outcomes import RESPONSE_CODES, Outcome, response_code
from switch.authorization.texts import screen_text

# 92 only when card networks are configured (docs/networks.md); 59 for chip cards (spec 11).
SPEC6_CODES = {"00", "05", "12", "13", "14", "30", "41", "43", "51", "54", "55", "57", "58", "59",
               "61", "63", "65", "75", "76", "91", "92", "94", "96"}


def test_every_outcome_has_a_spec6_code() -> None:
    assert set(RESPONSE_CODES) == set(Outcome)
    assert set(RESPONSE_CODES.values()) == SPEC6_CODES


def test_codes_of_shared_meaning() -> None:
    assert response_code(Outcome.PIN_TRIES_EXCEEDED) == response_code(Outcome.CARD_BLOCKED) == "75"
    assert response_code(Outcome.DAILY_AMOUNT_EXCEEDED) == "61"
    assert response_code(Outcome.DAILY_COUNT_EXCEEDED) == "65"
    assert response_code(Outcome.ORIGINAL_AFTER_REVERSAL) == "94"


def test_texts_in_english_and_chinese() -> None:
    assert screen_text("51", "en") == "Insufficient funds"
    assert screen_text("51", "zh") == "余额不足"
    assert screen_text("51", None) == "Insufficient funds"
    assert screen_text("51", "fr") == "Insufficient funds"
    for code in SPEC6_CODES:
        assert screen_text(code, "zh") != screen_text(code, "en")
