"""Fuzzing the frame and message decoders: only typed protocol errors, never a crash.

Method: hypothesis feeds random bytes, random byte streams and mutated golden
messages (>= 10,000 inputs across this file and test_field48/test_framing).
Anything decoded must re-encode (the codec is consistent with itself).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switch.protocol import (
    FrameDecoder,
    MessageFormatError,
    ProtocolError,
    decode_message,
    encode_format_error_response,
    encode_message,
)
from tests.protocol.test_golden_requests import REQUESTS
from tests.protocol.test_golden_responses import RESPONSES

SEEDS = [golden.raw for golden in (*REQUESTS, *RESPONSES)]


def check_message(raw: bytes) -> None:
    try:
        message = decode_message(raw)
    except MessageFormatError as error:
        # A 30 answer, when one is due, must itself be a valid message.
        answer = encode_format_error_response(error)
        if answer is not None:
            assert decode_message(answer).response_code == "30"
        return
    assert encode_message(message.mti, message.fields) == raw


@settings(max_examples=3000)
@given(st.binary(max_size=400))
def test_random_bytes(raw: bytes) -> None:
    check_message(raw)


@settings(max_examples=4000)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=4,
    ),
    cut=st.integers(min_value=0, max_value=400),
)
def test_mutated_golden_messages(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    raw = bytearray(seed)
    for position, value in edits:
        raw[position % len(raw)] = value
    check_message(bytes(raw[: max(cut, len(raw) - cut)]))


@settings(max_examples=3000)
@given(st.binary(max_size=600), st.sampled_from(["binary2", "ascii4"]))
def test_random_streams_through_the_frame_decoder(stream: bytes, framing: str) -> None:
    decoder = FrameDecoder(max_bytes=4096, framing=framing)
    try:
        decoder.receive_data(stream)
        while (frame := decoder.next_frame()) is not None:
            check_message(frame)
    except ProtocolError:
        pass
