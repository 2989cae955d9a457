"""The table-driven codec against the pyiso8583-based one it replaced: same bytes, same errors.

Goal: :mod:`switch.protocol.fastcodec` (what ``decode_message`` / ``encode_message`` run
on) accepts exactly what :mod:`tests.protocol.reference_codec` (pyiso8583 plus the
dialect's checks) accepts, decodes it to the same fields, encodes the same bytes, and
fails with the same error: same type and text, and for a malformed message the same
salvaged MTI, STAN and fields (what the ``30`` answer echoes). Method: every golden
message, then hypothesis-generated messages built from the dialect's SPEC (so new
fields are covered), valid and corrupted (random bitmaps, truncation, bad length
prefixes, bad characters, junk after the end), and encode inputs with wrong lengths,
characters, types and keys. Frames are whole, so feeding one byte at a time does not apply.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from switch.protocol import fastcodec
from switch.protocol.dialect import DATA_FIELDS, SPEC
from switch.protocol.errors import MessageBuildError, MessageFormatError
from switch.protocol.fastcodec import _decoding, _encoding, _plans
from switch.protocol.message import (
    decode_message,
    encode_message,
    encode_message_async_mac,
    mac_input_of,
    mac_of,
    peek_field,
)
from tests.protocol import reference_codec
from tests.protocol.golden import FAKE_MAC
from tests.protocol.test_golden_requests import REQUESTS, WITHDRAWAL
from tests.protocol.test_golden_responses import RESPONSES

ALPHABETS: dict[str, str] = {
    "n": string.digits,
    "an": string.ascii_letters + string.digits + " ",
    "ans": "".join(chr(c) for c in range(0x20, 0x7F)),
    "z": string.digits + "=D",
    "hex": string.digits + "ABCDEF",
}
# Field 48 (text, UTF-8): printable ASCII plus characters of 2, 3 and 4 UTF-8 bytes.
TEXT_ALPHABET = ALPHABETS["ans"] + "éß王转账€𝄞"
# What a corrupted byte becomes: near misses of every class, controls, non-ASCII.
NASTY_BYTES = b"0123456789abcdefABCDEFxyzXYZ =D+-_ \t\n\x00\x1f\x7f\x80\xc3\xa9\xe7\xff"
GOLDEN = [*REQUESTS, *RESPONSES]
MACCABLE = [golden for golden in GOLDEN if golden.macced]


def outcome(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """What a call did, comparable across codecs: its value or its error in full."""
    try:
        value = function(*args, **kwargs)
    except MessageFormatError as error:
        return ("format", error.reason, error.field, error.mti, error.stan, dict(error.fields))
    except MessageBuildError as error:
        return ("build", str(error))
    except (TypeError, ValueError, AttributeError) as error:
        return (type(error).__name__, str(error))
    if hasattr(value, "fields"):
        return ("message", value.mti, dict(value.fields), list(value.fields))
    return ("value", value)


def assert_same_decode(raw: bytes) -> tuple[Any, ...]:
    ours = outcome(fastcodec.decode, raw)
    assert ours == outcome(reference_codec.decode_message, raw)
    assert outcome(decode_message, raw) == ours
    for field in ("2", "11", "39", "41", "48", "70", "128"):
        assert peek_field(raw, field) == reference_codec.peek_field(raw, field)
    return ours


def assert_same_encode(mti: Any, fields: Mapping[Any, Any], mac: bool) -> tuple[Any, ...]:
    seen: list[list[bytes]] = [[], []]

    def recorder(slot: int) -> Callable[[bytes], str]:
        def fake_mac(data: bytes) -> str:
            seen[slot].append(data)
            return FAKE_MAC.lower()  # the codec upper-cases it

        return fake_mac

    ours = (
        outcome(fastcodec.encode_with_mac, mti, fields, recorder(0))
        if mac
        else outcome(fastcodec.encode, mti, fields)
    )
    theirs = outcome(reference_codec.encode_message, mti, fields, mac=recorder(1) if mac else None)
    assert ours == theirs
    assert seen[0] == seen[1]
    return ours


# --- golden messages --------------------------------------------------------


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: g.name)
def test_golden_decodes_identically(golden: Any) -> None:
    ours = assert_same_decode(golden.raw)
    assert ours[0] == "message" and ours[1] == golden.mti
    assert fastcodec.mac_span(golden.raw) == (mac_input_of(golden.raw), mac_of(golden.raw))


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: g.name)
def test_golden_encodes_identically(golden: Any) -> None:
    ours = assert_same_encode(golden.mti, golden.fields, golden.macced)
    assert ours == ("value", golden.raw)
    message = fastcodec.decode(golden.raw)
    assert fastcodec.encode(message.mti, message.fields) == golden.raw


@pytest.mark.parametrize("golden", MACCABLE, ids=lambda g: g.name)
async def test_async_mac_gets_the_same_input(golden: Any) -> None:
    seen: list[bytes] = []

    async def fake_mac(data: bytes) -> str:
        seen.append(data)
        return FAKE_MAC

    raw = await encode_message_async_mac(golden.mti, golden.fields, mac=fake_mac)
    assert raw == golden.raw and seen == [golden.raw[:-16]]
    assert fastcodec.mac_input(golden.mti, golden.fields) == golden.raw[:-16]


# --- generated messages ------------------------------------------------------


@st.composite
def field_values(draw: st.DrawFn, key: str, valid: bool) -> str:
    """A value for ``key``: of the right class and length, or (not valid) maybe not."""
    spec = SPEC[key]
    content = spec["content"]
    alphabet = TEXT_ALPHABET if content == "text" else ALPHABETS[content]
    if not valid and draw(st.integers(0, 3)) == 0:
        alphabet += NASTY_BYTES.decode("latin-1")
    max_len = int(spec["max_len"])
    if spec["len_type"]:
        high = max_len + (2 if not valid else 0)
        return draw(st.text(alphabet, min_size=0, max_size=high))
    size = max_len
    if not valid and draw(st.booleans()):
        size = draw(st.sampled_from([max_len - 1, max_len + 1, 0]))
    return draw(st.text(alphabet, min_size=max(size, 0), max_size=max(size, 0)))


FIELD_KEYS = sorted((str(n) for n in DATA_FIELDS), key=int)
PLAIN_KEYS = [key for key in FIELD_KEYS if key not in ("64", "128")]


@st.composite
def messages(draw: st.DrawFn, valid: bool = True) -> tuple[str, dict[str, str]]:
    """An MTI and fields drawn from the dialect (insertion order shuffled)."""
    keys = draw(st.lists(st.sampled_from(PLAIN_KEYS), unique=True, max_size=14))
    if not valid and draw(st.integers(0, 4)) == 0:
        keys.append(draw(st.sampled_from(["64", "128"])))
    fields = {key: draw(field_values(key, valid)) for key in keys}
    mti = draw(st.sampled_from(["0200", "0210", "0220", "0420", "0800", "0810", "1200"]))
    return mti, fields


@settings(max_examples=1500)
@given(message=messages(), mac=st.booleans())
def test_valid_messages_encode_and_decode_identically(
    message: tuple[str, dict[str, str]], mac: bool
) -> None:
    mti, fields = message
    ours = assert_same_encode(mti, fields, mac)
    if ours[0] == "value":  # too long in UTF-8 is the only way to fail here
        decoded = assert_same_decode(ours[1])
        expected = dict(fields)
        if mac:
            expected[fastcodec.decode(ours[1]).mac_field or "?"] = FAKE_MAC
        assert decoded[0] == "message" and decoded[2] == expected


@settings(max_examples=1500)
@given(message=messages(valid=False), mac=st.booleans())
@example(message=("020", {}), mac=False)
@example(message=("02000", {"3": "011000"}), mac=False)
@example(message=("٠٢٠٠", {}), mac=False)
@example(message=("0200", {"48": "\ud800"}), mac=False)  # a lone surrogate: not UTF-8
@example(message=("0200", {"48": "王" * 334}), mac=False)  # 1002 bytes > 999
@example(message=("0200", {"11": "123456", "64": "0" * 16}), mac=True)
@example(message=("0200", {"3": "01100", "4": "0000000100000"}), mac=False)
def test_invalid_inputs_fail_identically(message: tuple[str, dict[str, str]], mac: bool) -> None:
    mti, fields = message
    assert_same_encode(mti, fields, mac)


@pytest.mark.parametrize(
    ("mti", "fields"),
    [
        (b"0200", {"11": "123456"}),
        (200, {"11": "123456"}),
        ("0200", {"11": 123456}),
        ("0200", {"11": b"123456"}),
        ("0200", {11: "123456"}),
        ("0200", {"1": "0" * 16}),
        ("0200", {"65": "1"}),
        ("0200", {"011": "123456"}),
        ("0200", {"t": "0200"}),
        ("0200", {"2": ["1", "2"]}),
        ("0200", [("11", "123456")]),
    ],
)
@pytest.mark.parametrize("mac", [False, True])
def test_wrong_types_and_keys_fail_identically(mti: Any, fields: Any, mac: bool) -> None:
    assert assert_same_encode(mti, fields, mac)[0] != "value"


@pytest.mark.parametrize("mac_value", ["short", "0123456789abcdeg", "٠" * 16, b"0" * 16, "ß" * 16])
def test_bad_mac_values_fail_identically(mac_value: Any) -> None:
    fields = {"11": "123456"}
    ours = outcome(fastcodec.encode_with_mac, "0200", fields, lambda _: mac_value)
    assert ours == outcome(reference_codec.encode_message, "0200", fields, mac=lambda _: mac_value)
    assert ours[0] != "value"


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A valid message, then one or more of: bytes changed, bitmap replaced, cut, junk added."""
    mti, fields = draw(messages())
    mac = draw(st.booleans())
    try:
        raw = bytearray(
            reference_codec.encode_message(mti, fields, mac=(lambda _: FAKE_MAC) if mac else None)
        )
    except MessageBuildError:
        assume(False)
        raise
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["byte", "byte", "bitmap", "cut", "junk"]))
        if action == "byte" and raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.sampled_from(NASTY_BYTES))
        elif action == "bitmap":
            width = draw(st.sampled_from([16, 32]))
            bitmap = draw(st.text("0123456789ABCDEF", min_size=width, max_size=width))
            raw[4 : 4 + width] = bitmap.encode()
        elif action == "cut":
            raw = raw[: draw(st.integers(0, len(raw)))]
        else:
            raw += draw(st.binary(min_size=1, max_size=8))
    return bytes(raw)


@settings(max_examples=2500)
@given(corrupted())
def test_corrupted_messages_fail_identically(raw: bytes) -> None:
    assert_same_decode(raw)


@settings(max_examples=1000)
@given(st.binary(max_size=300))
def test_random_bytes_decode_identically(raw: bytes) -> None:
    assert_same_decode(b"0200" + raw)
    assert_same_decode(raw)


@settings(max_examples=1500)
@given(
    golden=st.sampled_from(GOLDEN),
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(NASTY_BYTES)), min_size=1, max_size=3
    ),
)
@example(golden=WITHDRAWAL, edits=[(52, ord("+"))])  # "+6" as the LLVAR prefix of field 32
@example(golden=WITHDRAWAL, edits=[(52, ord(" "))])  # " 6": int() accepts it, the dialect not
@example(golden=WITHDRAWAL, edits=[(52, ord("-"))])  # "-6": a negative length
def test_mutated_golden_messages_fail_identically(
    golden: Any, edits: list[tuple[int, int]]
) -> None:
    raw = bytearray(golden.raw)
    for position, value in edits:
        raw[position % len(raw)] = value
    assert_same_decode(bytes(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"02",
        b"0200",
        b"02000000000000000000",  # no fields at all
        b"02000000000000000000X",  # junk after an empty message
        b"020080000000000000000000000000000000",  # secondary bitmap flagged, empty
        b"020080000000000000008000000000000000",  # field 65 (tertiary bitmap)
        b"0200C000000000000000000000000000000116" + b"1" * 16 + b"0" * 16,  # 2 and 128
        b"02004000000000000000-1",  # LLVAR "-1"
        b"0200400000000000000000",  # LLVAR "00": an empty PAN
        bytearray(b"0800822000000080000004000000000000000615103100000002ATM00001301"),
    ],
)
def test_edge_frames_decode_identically(raw: bytes) -> None:
    assert_same_decode(raw)


def test_non_bytes_are_refused_like_before() -> None:
    assert outcome(fastcodec.decode, "0200") == outcome(reference_codec.decode_message, "0200")
    assert outcome(fastcodec.decode, memoryview(b"0200")) == outcome(
        reference_codec.decode_message, memoryview(b"0200")
    )


def test_caches_stay_bounded_under_random_bitmaps() -> None:
    # An attacker choosing bitmaps must not grow memory: the plan caches are cleared when full.
    for value in range(_plans.plans_cached_max * 2 + 10):
        bitmap = f"{(value * 0x9E3779B97F4A7C15) & ((1 << 63) - 1):016X}".encode()
        with pytest.raises(MessageFormatError):
            fastcodec.decode(b"0200" + bitmap + b"1")
    assert len(_plans._primary_plans) <= _plans.plans_cached_max
    assert len(_plans._full_plans) <= _plans.plans_cached_max


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: g.name)
def test_golden_messages_take_the_fast_path(golden: Any) -> None:
    # The speed claim holds for every golden shape, UTF-8 field 48 and secondary bitmaps too.
    assert _decoding._fast_fields(golden.raw) is not None
    assert _encoding._fast_encode(golden.mti, golden.fields, golden.macced) is not None


def test_shapes_stay_bounded_under_many_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every new field-48 length is a new shape; the total over all plans stays under the bound.
    monkeypatch.setattr(_plans, "shapes_cached_max", 50)
    _plans.forget_cached_plans()
    for length in range(300):
        raw = encode_message("0200", {"11": "123456", "48": "A" * length})
        assert decode_message(raw).fields["48"] == "A" * length
        plans = {
            id(plan): plan
            for cache in (_plans._primary_plans, _plans._full_plans, _plans._encode_plans)
            for plan in cache.values()
            if plan is not None
        }
        assert sum(len(plan.shapes) for plan in plans.values()) <= 50
    _plans.forget_cached_plans()
