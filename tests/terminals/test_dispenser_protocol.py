"""Dispenser (Puloon LCDM-style, four cassettes) codec: golden frames with their BCC worked out
by hand, compared byte for byte; properties: round trip, corruption caught, resync after garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminals.devices import dispenser as proto
from terminals.devices.dispenser import (
    CassetteInfo,
    CassetteInfoReply,
    CassetteResult,
    CassetteState,
    Direction,
    DispenserCommand,
    DispenseReply,
    DispenserError,
    DispenserFrameParser,
    SimpleReply,
    StatusReply,
)
from terminals.devices.errors import LocalProtocolError, RemoteProtocolError
from terminals.devices.events import ACK, NAK, CorruptFrame, Frame

# Golden 1: STATUS command. 04 EOT, 50 ID, 02 STX, 46 'F', 03 ETX.
#   BCC = 04^50 = 54; 54^02 = 56; 56^46 = 10; 10^03 = 13.
GOLDEN_STATUS_COMMAND = bytes.fromhex("04 50 02 46 03 13")
# Golden 2: DISPENSE 2 notes from cassette 1 and 1 from cassette 3: 'E' "02" "00" "01" "00".
#   04^50^02 = 56; ^45 = 13; the eight digits 30 32 30 30 30 31 30 30 XOR to 03 (the eight 0x30
#   high parts cancel; low nibbles 2^1 = 3); 13^03 = 10; ^03 (ETX) = 13.
GOLDEN_DISPENSE_COMMAND = bytes.fromhex("04 50 02 45 3032303030313030 03 13")
# Golden 3: its reply, all good: SOH 01, ID, STX, 'E', error '0', failed cassette '0', then per
#   cassette checked/exited/rejected: "020200" "000000" "010100" "000000".
#   01^50^02 = 53; ^45 = 16; ^30 = 26; ^30 = 16; the 24 digits XOR to 00 (2^2, 1^1 cancel);
#   16^03 (ETX) = 15. (The BCC happens to equal NAK: it is positional, never read as control.)
GOLDEN_DISPENSE_REPLY = bytes.fromhex(
    "01 50 02 45 30 30 303230323030 303030303030 303130313030 303030303030 03 15"
)
# Golden 4: a partial dispense: pick-up error ('2') at cassette 3 after cassette 1 gave its 2.
#   53^45 = 16; ^32 = 24; ^33 = 17; digits XOR 00; 17^03 = 14.
GOLDEN_PARTIAL_REPLY = bytes.fromhex(
    "01 50 02 45 32 33 303230323030 303030303030 303030303030 303030303030 03 14"
)
# Golden 5: STATUS reply: error '0', sensors '0' '0', cassettes ok/low/empty/missing "0123",
#   notes in exit '1'. 53^46 = 15; the 8 chars 30 30 30 30 31 32 33 31 XOR to 01 (1^2^3^1);
#   15^01 = 14; ^03 = 17.
GOLDEN_STATUS_REPLY = bytes.fromhex("01 50 02 46 30 30 30 30 31 32 33 31 03 17")


def cassette_results(*triples: tuple[int, int, int]) -> tuple[CassetteResult, ...]:
    return tuple(CassetteResult(*t) for t in triples)


def test_golden_commands() -> None:
    assert proto.encode_command_frame(DispenserCommand.STATUS.value) == GOLDEN_STATUS_COMMAND
    dispense = proto.encode_dispense([2, 0, 1, 0])
    assert proto.encode_command_frame(dispense) == GOLDEN_DISPENSE_COMMAND


def test_golden_replies() -> None:
    full = DispenseReply(
        DispenserCommand.DISPENSE,
        DispenserError.GOOD,
        0,
        cassette_results((2, 2, 0), (0, 0, 0), (1, 1, 0), (0, 0, 0)),
    )
    partial = DispenseReply(
        DispenserCommand.DISPENSE,
        DispenserError.PICKUP_ERROR,
        3,
        cassette_results((2, 2, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)),
    )
    status = StatusReply(
        DispenserError.GOOD,
        False,
        False,
        (CassetteState.OK, CassetteState.LOW, CassetteState.EMPTY, CassetteState.MISSING),
        True,
    )
    assert proto.encode_reply_frame(full.encode()) == GOLDEN_DISPENSE_REPLY
    assert proto.encode_reply_frame(partial.encode()) == GOLDEN_PARTIAL_REPLY
    assert proto.encode_reply_frame(status.encode()) == GOLDEN_STATUS_REPLY
    parser = DispenserFrameParser(Direction.REPLY)
    parser.receive_data(GOLDEN_DISPENSE_REPLY + GOLDEN_PARTIAL_REPLY + GOLDEN_STATUS_REPLY)
    decoded = [proto.decode_reply(e.text) for e in parser.events() if isinstance(e, Frame)]
    assert decoded == [full, partial, status]


def test_parsers_only_accept_their_direction() -> None:
    # (Golden 3 would not do as the foreign frame: skipped as garbage, its BCC 0x15 reads as NAK.)
    device_side = DispenserFrameParser(Direction.COMMAND)
    device_side.receive_data(GOLDEN_PARTIAL_REPLY + b"\x06" + GOLDEN_STATUS_COMMAND + b"\x15")
    assert device_side.events() == [ACK, Frame(b"F"), NAK]


def test_one_byte_at_a_time() -> None:
    parser = DispenserFrameParser(Direction.REPLY)
    events = []
    for byte in GOLDEN_DISPENSE_REPLY:
        parser.receive_data(bytes([byte]))
        events += parser.events()
    assert events == [Frame(GOLDEN_DISPENSE_REPLY[3:-2])]


def test_bad_bcc_is_corrupt_then_next_frame_parses() -> None:
    bad = bytearray(GOLDEN_STATUS_COMMAND)
    bad[-1] ^= 0xFF
    parser = DispenserFrameParser(Direction.COMMAND)
    parser.receive_data(bytes(bad) + GOLDEN_STATUS_COMMAND)
    events = parser.events()
    assert isinstance(events[0], CorruptFrame) and events[-1] == Frame(b"F")


def test_frame_without_etx_is_dropped_at_the_size_limit() -> None:
    parser = DispenserFrameParser(Direction.COMMAND)
    parser.receive_data(bytes([0x04, 0x50, 0x02]) + b"9" * (proto.text_size_bytes_max + 1))
    assert isinstance(parser.events()[0], CorruptFrame)


def test_other_replies_round_trip() -> None:
    info = CassetteInfoReply(
        DispenserError.GOOD,
        tuple(CassetteInfo(d, "156", CassetteState.OK) for d in (10000, 5000, 2000, 1000)),
    )
    assert info.encode()[:14] == b"I0" + b"00010000" + b"156" + b"0"
    for reply in (
        info,
        SimpleReply(DispenserCommand.RETRACT, DispenserError.GOOD, 3),
        SimpleReply(DispenserCommand.PURGE, DispenserError.GOOD),
    ):
        assert proto.decode_reply(reply.encode()) == reply


def test_decoding_errors_are_typed() -> None:
    for bad in (b"Z0", b"E0", b"F0000", b"R0x1", b"D07", b"I0123"):
        with pytest.raises(RemoteProtocolError):
            proto.decode_reply(bad)
    with pytest.raises(RemoteProtocolError):
        proto.decode_dispense_counts(b"0261000000"[:8].replace(b"0", b"x"))
    with pytest.raises(RemoteProtocolError):
        proto.decode_dispense_counts(b"61000000")
    with pytest.raises(LocalProtocolError):
        proto.encode_dispense([61, 0, 0, 0])
    with pytest.raises(LocalProtocolError):
        proto.encode_command_frame(b"E\x03")


counts = st.lists(st.integers(0, proto.notes_per_cassette_per_dispense_max), min_size=4, max_size=4)
results = st.lists(
    st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)), min_size=4, max_size=4
)
replies = st.builds(
    lambda error, failed, r: DispenseReply(
        DispenserCommand.DISPENSE, error, failed, cassette_results(*r)
    ),
    st.sampled_from(list(DispenserError)),
    st.integers(0, 4),
    results,
)
noise = st.binary(max_size=64).map(lambda b: bytes(x for x in b if x != 0x01))


@settings(max_examples=200)
@given(counts)
def test_dispense_command_round_trip(numbers: list[int]) -> None:
    parser = DispenserFrameParser(Direction.COMMAND)
    parser.receive_data(proto.encode_command_frame(proto.encode_dispense(numbers)))
    (frame,) = parser.events()
    assert isinstance(frame, Frame)
    command, data = proto.decode_command(frame.text)
    assert command is DispenserCommand.DISPENSE
    assert proto.decode_dispense_counts(data) == tuple(numbers)


@settings(max_examples=200)
@given(replies)
def test_dispense_reply_round_trip(reply: DispenseReply) -> None:
    parser = DispenserFrameParser(Direction.REPLY)
    parser.receive_data(proto.encode_reply_frame(reply.encode()))
    (frame,) = parser.events()
    assert isinstance(frame, Frame) and proto.decode_reply(frame.text) == reply


@settings(max_examples=300)
@given(replies, st.data())
def test_any_single_byte_corruption_is_caught(reply: DispenseReply, data: st.DataObject) -> None:
    frame = bytearray(proto.encode_reply_frame(reply.encode()))
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] ^= data.draw(st.integers(1, 255))
    parser = DispenserFrameParser(Direction.REPLY)
    parser.receive_data(bytes(frame))
    # A changed byte changes the XOR; a changed SOH/ID/STX/ETX breaks the frame's shape.
    assert not any(isinstance(event, Frame) for event in parser.events())


@settings(max_examples=200)
@given(noise, replies)
def test_resynchronises_after_garbage(garbage: bytes, reply: DispenseReply) -> None:
    parser = DispenserFrameParser(Direction.REPLY)
    parser.receive_data(garbage + proto.encode_reply_frame(reply.encode()))
    frames = [e for e in parser.events() if isinstance(e, Frame)]
    assert frames == [Frame(reply.encode())]
