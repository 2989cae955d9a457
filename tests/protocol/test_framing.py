"""Framing (spec 1): golden frames, one-byte-at-a-time feeding, trailing junk, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.protocol import FrameDecoder, FrameTooLarge, FramingError, encode_frame

SIGN_ON = b"0800822000000080000004000000000000000615103000000001ATM00001001"  # 63 bytes


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_golden_binary2_and_ascii4_prefixes() -> None:
    assert len(SIGN_ON) == 63
    assert encode_frame(SIGN_ON) == b"\x00\x3f" + SIGN_ON
    assert encode_frame(SIGN_ON, "ascii4") == b"0063" + SIGN_ON
    assert encode_frame(b"x" * 4096)[:2] == b"\x10\x00"


@pytest.mark.parametrize("framing", ["binary2", "ascii4"])
def test_all_at_once_and_one_byte_at_a_time(framing: str) -> None:
    stream = (
        encode_frame(SIGN_ON, framing) + encode_frame(b"", framing) + encode_frame(b"AB", framing)
    )
    whole = FrameDecoder(framing=framing)
    whole.receive_data(stream)
    assert drain(whole) == [SIGN_ON, b"", b"AB"]

    bytewise = FrameDecoder(framing=framing)
    frames: list[bytes] = []
    for index in range(len(stream)):
        bytewise.receive_data(stream[index : index + 1])
        frames.extend(drain(bytewise))
    assert frames == [SIGN_ON, b"", b"AB"]


def test_trailing_junk_waits_for_more_data() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(SIGN_ON) + b"\x00\x10partial")
    assert decoder.next_frame() == SIGN_ON
    assert decoder.next_frame() is None  # 7 of 16 bytes: an incomplete frame, not an error
    assert decoder.buffered_bytes == 9


def test_oversize_length_is_frame_too_large_and_sticky() -> None:
    decoder = FrameDecoder(max_bytes=4096)
    decoder.receive_data(b"\x10\x01")  # 4097
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_frame()
    assert info.value.length == 4097
    decoder.receive_data(b"x" * 10)
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()


def test_max_size_frame_is_accepted() -> None:
    decoder = FrameDecoder(max_bytes=4096)
    decoder.receive_data(encode_frame(b"y" * 4096))
    assert decoder.next_frame() == b"y" * 4096


def test_ascii4_rejects_non_digit_prefix() -> None:
    decoder = FrameDecoder(framing="ascii4")
    decoder.receive_data(b"00a1xxxx")
    with pytest.raises(FramingError):
        decoder.next_frame()
    decoder = FrameDecoder(framing="ascii4")
    decoder.receive_data(b"5000")
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()


def test_buffer_is_bounded() -> None:
    decoder = FrameDecoder(max_bytes=16)
    decoder.receive_data(b"\x00\x01a" * 40)
    with pytest.raises(FramingError):
        decoder.receive_data(b"z" * 400)


def test_unknown_framing_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(framing="ascii2")
    with pytest.raises(ValueError):
        encode_frame(b"", "nope")


@settings(max_examples=300)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=50), max_size=40),
    framing=st.sampled_from(["binary2", "ascii4"]),
)
def test_any_chunking_gives_the_same_frames(
    payloads: list[bytes], cuts: list[int], framing: str
) -> None:
    stream = b"".join(encode_frame(p, framing) for p in payloads)
    decoder = FrameDecoder(framing=framing)
    frames: list[bytes] = []
    position = 0
    for cut in [*cuts, len(stream)]:
        decoder.receive_data(stream[position : position + cut])
        position += cut
        frames.extend(drain(decoder))
    assert frames == payloads
