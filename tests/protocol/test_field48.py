"""Field 48 tags (spec 3): byte-counted lengths, unknown tags kept, malformed input typed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.protocol import MessageBuildError, MessageFormatError, decode_tags, encode_tags


def test_golden_encodings() -> None:
    assert encode_tags({"LG": "en"}) == "LG002en"
    assert encode_tags({"PN": "王**", "TX": "余额不足"}) == "PN005王**TX012余额不足"
    assert encode_tags({"PN": "S****"}) == "PN005S****"
    assert encode_tags({}) == ""


def test_decode_keeps_unknown_tags_and_order() -> None:
    assert list(decode_tags("ZZ003abcLG002zh")) == ["ZZ", "LG"]
    assert decode_tags("TX000") == {"TX": ""}


@pytest.mark.parametrize(
    "value",
    [
        "PN003王**",  # counts characters, not bytes: splits the next element
        "PN006王**",  # longer than the field
        "lg002en",  # lower-case tag
        "LG0x2en",  # non-digit length
        "LG00",  # truncated header
        "LG002enLG002zh",  # duplicate tag
        "PN001王",  # length ends inside a character
    ],
)
def test_malformed_is_format_error(value: str) -> None:
    with pytest.raises(MessageFormatError):
        decode_tags(value)


def test_encode_rejects_bad_tags_and_sizes() -> None:
    with pytest.raises(MessageBuildError):
        encode_tags({"L1": "x"})
    with pytest.raises(MessageBuildError):
        encode_tags({"TX": "x" * 1000})
    with pytest.raises(MessageBuildError):
        encode_tags({"TX": "x" * 600, "MS": "y" * 600})


tags = st.dictionaries(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.text(max_size=40),
    max_size=6,
)


@settings(max_examples=300)
@given(tags)
def test_round_trip(original: dict[str, str]) -> None:
    assert decode_tags(encode_tags(original)) == original


@settings(max_examples=1500)
@given(st.text(max_size=60))
def test_random_text_raises_only_format_errors(value: str) -> None:
    try:
        decode_tags(value)
    except MessageFormatError:
        pass
