"""Card reader (Sankyo ICT3-style) codec: golden frames worked out by hand from the frame layout,
compared byte for byte; then properties: round trip, corruption caught, resync after garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminals.devices import card_reader as proto
from terminals.devices.card_reader import (
    CardPosition,
    CardReaderFrameParser,
    Command,
    NegativeReply,
    PositiveReply,
    ReaderCommand,
    ReaderErrorCode,
    ReaderStatus,
)
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.events import ACK, NAK, CorruptFrame, Frame

from .crc_reference import crc16_xmodem_bitwise

# Golden 1: status request "C10".
#   F2            STX
#   00 03         LEN = 3 bytes of text
#   43 31 30      "C" "1" "0" (command 1, parameter 0: status)
#   C5 2A         CRC-16/XMODEM over F2 00 03 43 31 30, init 0000, poly 1021; running CRC after
#                 each byte (long division, MSB first): F2->CF5D, 00->75A3, 03->BD51, 43->5FD1,
#                 31->5C68, 30->C52A.
GOLDEN_STATUS_COMMAND = bytes.fromhex("F2 0003 433130 C52A")
# Golden 2: positive status reply, retain bin not full, card inside: "P10" st1='0' st0='2'.
#   F2 0005 50 31 30 30 32 | CRC over those 8 bytes = 1864
GOLDEN_STATUS_REPLY = bytes.fromhex("F2 0005 5031303032 1864")
# Golden 3: negative reply to read track 2, error 20 (read error): "N62" "20".
#   F2 0005 4E 36 32 32 30 | CRC = AAFB
GOLDEN_READ_ERROR_REPLY = bytes.fromhex("F2 0005 4E36323230 AAFB")


def test_golden_status_command_matches_hand_worked_bytes() -> None:
    frame = proto.encode_frame(Command(ReaderCommand.STATUS).encode())
    assert frame == GOLDEN_STATUS_COMMAND
    assert crc16_xmodem_bitwise(GOLDEN_STATUS_COMMAND[:-2]) == 0xC52A


def test_golden_replies_match_hand_worked_bytes() -> None:
    status = PositiveReply(ReaderCommand.STATUS, ReaderStatus(CardPosition.INSIDE))
    assert proto.encode_frame(status.encode()) == GOLDEN_STATUS_REPLY
    error = NegativeReply(ReaderCommand.READ_TRACK2, ReaderErrorCode.READ_ERROR)
    assert proto.encode_frame(error.encode()) == GOLDEN_READ_ERROR_REPLY


def test_golden_frames_parse_back_to_their_messages() -> None:
    parser = CardReaderFrameParser()
    parser.receive_data(GOLDEN_STATUS_REPLY + GOLDEN_READ_ERROR_REPLY)
    first, second = parser.events()
    assert isinstance(first, Frame) and isinstance(second, Frame)
    assert proto.decode_reply(first.text) == PositiveReply(
        ReaderCommand.STATUS, ReaderStatus(CardPosition.INSIDE)
    )
    assert proto.decode_reply(second.text) == NegativeReply(
        ReaderCommand.READ_TRACK2, ReaderErrorCode.READ_ERROR
    )


def test_crc_check_value_of_the_catalogue() -> None:
    # CRC-16/XMODEM check value from the CRC RevEng catalogue: "123456789" -> 0x31C3.
    from terminals.devices.checksums import crc16_xmodem

    assert crc16_xmodem(b"123456789") == 0x31C3


def test_control_bytes_between_frames_are_events() -> None:
    parser = CardReaderFrameParser()
    parser.receive_data(b"\x06" + GOLDEN_STATUS_COMMAND + b"\x15")
    assert parser.events() == [ACK, Frame(b"C10"), NAK]


def test_one_byte_at_a_time_gives_the_same_frame() -> None:
    parser = CardReaderFrameParser()
    events = []
    for byte in GOLDEN_STATUS_REPLY:
        parser.receive_data(bytes([byte]))
        events += parser.events()
    assert events == [Frame(b"P1002")]


def test_corrupt_crc_is_reported_then_the_next_frame_is_found() -> None:
    bad = bytearray(GOLDEN_STATUS_COMMAND)
    bad[-1] ^= 0x01
    parser = CardReaderFrameParser()
    parser.receive_data(bytes(bad) + GOLDEN_STATUS_COMMAND)
    events = parser.events()
    assert isinstance(events[0], CorruptFrame)
    assert events[-1] == Frame(b"C10")


def test_truncated_frame_is_dropped_by_abandon_then_retry_parses() -> None:
    parser = CardReaderFrameParser()
    parser.receive_data(GOLDEN_STATUS_COMMAND[:5])
    assert parser.events() == []
    assert parser.abandon_partial_frame() == 5
    parser.receive_data(GOLDEN_STATUS_COMMAND)
    assert parser.events() == [Frame(b"C10")]


def test_decode_rejects_unknown_command_and_bad_status() -> None:
    with pytest.raises(RemoteProtocolError):
        proto.decode_command(b"CZZ")
    with pytest.raises(RemoteProtocolError):
        proto.decode_reply(b"P1009")
    with pytest.raises(RemoteProtocolError):
        proto.decode_reply(b"N1099")
    assert proto.undefined_command_reply(b"CZZ") == b"NZZ00"


def test_encode_refuses_empty_or_oversized_text() -> None:
    with pytest.raises(LocalProtocolError):
        proto.encode_frame(b"")
    with pytest.raises(LocalProtocolError):
        proto.encode_frame(b"C" * (proto.text_size_bytes_max + 1))


def test_track2_validation() -> None:
    assert proto.validate_track2("6217001234567890=2712") == "6217001234567890=2712"
    for bad in ("", "6217;1234", "1" * 38):
        with pytest.raises(LocalProtocolError):
            proto.validate_track2(bad)


texts = st.sampled_from(list(ReaderCommand)).flatmap(
    lambda command: st.binary(max_size=64).map(lambda data: Command(command, data).encode())
)
# Noise before a frame: anything except the STX byte (a spurious STX is covered by the CRC tests).
noise = st.binary(max_size=64).map(lambda b: bytes(x for x in b if x != proto.STX))


@settings(max_examples=200)
@given(texts)
def test_round_trip(text: bytes) -> None:
    parser = CardReaderFrameParser()
    parser.receive_data(proto.encode_frame(text))
    assert parser.events() == [Frame(text)]
    assert proto.decode_command(text).encode() == text


@settings(max_examples=300)
@given(texts, st.data())
def test_any_single_byte_corruption_is_caught(text: bytes, data: st.DataObject) -> None:
    frame = bytearray(proto.encode_frame(text))
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] ^= data.draw(st.integers(1, 255))
    parser = CardReaderFrameParser()
    parser.receive_data(bytes(frame))
    # CRC-16 catches every error burst up to 16 bits; a corrupted LEN moves the CRC window and
    # is caught by the CRC too (or leaves the parser waiting for bytes that never come).
    assert not any(isinstance(event, Frame) for event in parser.events())


@settings(max_examples=200)
@given(noise, texts)
def test_resynchronises_after_garbage(garbage: bytes, text: bytes) -> None:
    parser = CardReaderFrameParser()
    parser.receive_data(garbage + proto.encode_frame(text))
    frames = [e for e in parser.events() if isinstance(e, Frame)]
    assert frames == [Frame(text)]
