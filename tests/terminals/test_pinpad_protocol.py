"""EPP (SZZT-style) codec: golden frames with the XOR worked out by hand, compared byte for
byte; properties: round trip, corruption caught, resync after garbage; request layouts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminals.devices import pinpad as proto
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.events import CorruptFrame, Frame
from terminals.devices.pinpad import (
    DisplayKey,
    KeyEvent,
    PinEntryRequest,
    PinPadCommand,
    PinPadFrameParser,
    PinPadStatus,
    PinResult,
    Reply,
)

# Golden 1: STATUS command "ST". STX 02, LLL "002", TEXT "ST", ETX 03, CC.
#   XOR from the first L through ETX: 30^30 = 00; ^32 = 32; ^53 = 61; ^54 = 35; ^03 = 36 -> "36".
GOLDEN_STATUS_COMMAND = b"\x02" + b"002" + b"ST" + b"\x03" + b"36"
# Golden 2: key event for a digit, "EV*": LLL "003".
#   30^30^33 = 33; ^45 ('E') = 76; ^56 ('V') = 20; ^2A ('*') = 0A; ^03 = 09 -> "09".
GOLDEN_KEY_EVENT = b"\x02" + b"003" + b"EV*" + b"\x03" + b"09"
# Golden 3: reply to STATUS, OK, TMK+TPK+TAK loaded, no entry: "ST00" + "1110", LLL "008".
#   30^30^38 = 38; ^53 = 6B; ^54 = 3F; "00" cancels out; "1110": 31^31 = 00, ^31 = 31,
#   ^30 = 01 -> 3F^01 = 3E; ^03 = 3D -> "3D".
GOLDEN_STATUS_REPLY = b"\x02" + b"008" + b"ST001110" + b"\x03" + b"3D"


def test_golden_frames() -> None:
    assert proto.encode_frame(proto.encode_command(PinPadCommand.STATUS)) == GOLDEN_STATUS_COMMAND
    assert proto.encode_frame(KeyEvent(DisplayKey.DIGIT).encode()) == GOLDEN_KEY_EVENT
    reply = Reply(PinPadCommand.STATUS, PinPadStatus.OK, "1110")
    assert proto.encode_frame(reply.encode()) == GOLDEN_STATUS_REPLY


def test_golden_frames_parse_back() -> None:
    parser = PinPadFrameParser()
    parser.receive_data(GOLDEN_KEY_EVENT + GOLDEN_STATUS_REPLY)
    frames = [e for e in parser.events() if isinstance(e, Frame)]
    messages = [proto.decode_device_message(frame.text) for frame in frames]
    assert messages == [
        KeyEvent(DisplayKey.DIGIT),
        Reply(PinPadCommand.STATUS, PinPadStatus.OK, "1110"),
    ]


def test_one_byte_at_a_time_and_trailing_junk() -> None:
    parser = PinPadFrameParser()
    events = []
    for byte in GOLDEN_STATUS_COMMAND + b"junk":
        parser.receive_data(bytes([byte]))
        events += parser.events()
    assert events == [Frame(b"ST")]


def test_wrong_xor_is_corrupt_and_next_frame_parses() -> None:
    bad = GOLDEN_STATUS_COMMAND[:-2] + b"37"
    parser = PinPadFrameParser()
    parser.receive_data(bad + GOLDEN_STATUS_COMMAND)
    events = parser.events()
    assert isinstance(events[0], CorruptFrame) and events[-1] == Frame(b"ST")


def test_pin_result_and_errors() -> None:
    ok = PinResult(PinPadStatus.OK, "0123456789ABCDEF")
    assert proto.decode_device_message(ok.encode()) == ok
    assert proto.decode_device_message(b"PB40") == PinResult(PinPadStatus.CANCELLED)
    for bad in (b"PB00123", b"ZZ00", b"ST9", b"EVQ"):
        with pytest.raises(RemoteProtocolError):
            proto.decode_device_message(bad)
    with pytest.raises(RemoteProtocolError):
        proto.decode_command(b"Q1")


def test_pin_entry_request_layout() -> None:
    request = PinEntryRequest("6217001234567890", 4, 6, 30)
    assert request.encode() == "04" + "06" + "030" + "16" + "6217001234567890"
    assert PinEntryRequest.decode(request.encode()) == request
    for bad in (PinEntryRequest("123"), PinEntryRequest("6217001234567890", 3, 6)):
        with pytest.raises(LocalProtocolError):
            bad.encode()
    with pytest.raises(RemoteProtocolError):
        PinEntryRequest.decode("0406030176217001234567890")


def test_encode_refuses_bad_text() -> None:
    with pytest.raises(LocalProtocolError):
        proto.encode_frame(b"")
    with pytest.raises(LocalProtocolError):
        proto.encode_frame(b"ST\x03")
    with pytest.raises(LocalProtocolError):
        proto.encode_frame(b"M" * 1000)
    with pytest.raises(LocalProtocolError):
        proto.mac_chunk_data(bytes(proto.mac_chunk_bytes_max + 1), last=True)


texts = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=200
).map(lambda s: s.encode("ascii"))
noise = st.binary(max_size=64).map(lambda b: bytes(x for x in b if x != 0x02))


@settings(max_examples=200)
@given(texts)
def test_round_trip(text: bytes) -> None:
    parser = PinPadFrameParser()
    parser.receive_data(proto.encode_frame(text))
    assert parser.events() == [Frame(text)]


@settings(max_examples=300)
@given(texts, st.data())
def test_any_single_byte_corruption_is_caught(text: bytes, data: st.DataObject) -> None:
    frame = bytearray(proto.encode_frame(text))
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] ^= data.draw(st.integers(1, 255))
    parser = PinPadFrameParser()
    parser.receive_data(bytes(frame))
    # A changed text byte changes the XOR; a changed length moves ETX and CC out of place.
    assert not any(isinstance(event, Frame) for event in parser.events())


@settings(max_examples=200)
@given(noise, texts)
def test_resynchronises_after_garbage(garbage: bytes, text: bytes) -> None:
    parser = PinPadFrameParser()
    parser.receive_data(garbage + proto.encode_frame(text))
    assert [e for e in parser.events() if isinstance(e, Frame)] == [Frame(text)]
