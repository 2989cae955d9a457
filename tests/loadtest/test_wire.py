"""The load generator's own codec: golden messages written from the spec by hand,
byte for byte, then cross-checks against the switch's codec (pyiso8583 dialect)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.messages import Kind, MessageFactory
from loadtest.population import terminal
from loadtest.terminal_crypto import TerminalCrypto
from loadtest.wire import (
    WireFormatError,
    decode_message,
    decode_tags,
    encode_message,
    encode_tags,
    encode_with_mac,
    frame,
    take_frames,
)
from switch.protocol import message as switch_message

# Spec 5.1 sign-on: fields 7, 11, 41, 70. Field 70 needs the secondary bitmap.
# Primary: f1+f7+f11+f41 -> 8 2 2 0 0 0 0 0 0 0 8 0 0 0 0 0; secondary: f70 -> 04000...
SIGN_ON = (
    b"0800" b"8220000000800000" b"0400000000000000"
    b"1121235823" b"000001" b"LT000003" b"001"
)
SIGN_ON_FIELDS = {7: b"1121235823", 11: b"000001", 41: b"LT000003", 70: b"001"}

# A 0200 withdrawal: 3 4 7 11 12 13 22 32 35 37 41 42 43 49 52 64.
# Nibbles: f3f4=3, f7=2, f11f12=3, f13=8, -=0, f22=4, -=0, f32=1, f35=2, f37=8,
# f41f42f43=E, -=0, f49f52=9, -=0, -=0, f64=1.
WITHDRAWAL_FIELDS = {
    3: b"010000",
    4: b"000000020000",
    7: b"1121235823",
    11: b"000042",
    12: b"235823",
    13: b"1121",
    22: b"021",
    32: b"4321",
    35: b"6222990000000035=30121010000000",
    37: b"000003000001",
    41: b"LT000003",
    42: b"LOADTEST0000003",
    43: b"ATM LT000003 SHANGHAI CN                ",
    49: b"156",
    52: b"FBC45FCB493C8B79",
    64: b"0123456789ABCDEF",
}
WITHDRAWAL = (
    b"0200" b"3238040128E09001"
    b"010000" b"000000020000" b"1121235823" b"000042" b"235823" b"1121" b"021"
    b"04" b"4321"
    b"31" b"6222990000000035=30121010000000"
    b"000003000001" b"LT000003" b"LOADTEST0000003" b"ATM LT000003 SHANGHAI CN                "
    b"156" b"FBC45FCB493C8B79" b"0123456789ABCDEF"
)

# A transfer adds 102/103, so the MAC moves to 128. Primary: B238040128E09000
# (f1 set, no f64); secondary: f102f103 -> nibble 10 = 6, f128 -> nibble 16 = 1.
TRANSFER_FIELDS = {k: v for k, v in WITHDRAWAL_FIELDS.items() if k != 64} | {
    3: b"400000",
    102: b"LA000003",
    103: b"LA000004",
    128: b"FEDCBA9876543210",
}
TRANSFER = (
    b"0200" b"B238040128E09000" b"0000000006000001"
    b"400000" b"000000020000" b"1121235823" b"000042" b"235823" b"1121" b"021"
    b"04" b"4321"
    b"31" b"6222990000000035=30121010000000"
    b"000003000001" b"LT000003" b"LOADTEST0000003" b"ATM LT000003 SHANGHAI CN                "
    b"156" b"FBC45FCB493C8B79"
    b"08" b"LA000003" b"08" b"LA000004" b"FEDCBA9876543210"
)

# A 0210 with 48/PN in UTF-8: the element length and the LLLVAR prefix count bytes
# ("王**" is 3 + 2 = 5 bytes). Fields 11, 39, 41, 48: f11=2 in nibble 3,
# f39=2 in nibble 10, f41=8 in nibble 11, f48=1 in nibble 12.
PAYEE_ANSWER = (
    b"0210" b"0020000002810000" b"000043" b"00" b"LT000003"
    + b"010" + "PN005王**".encode()
)


@pytest.mark.parametrize(
    ("mti", "fields", "raw"),
    [
        (b"0800", SIGN_ON_FIELDS, SIGN_ON),
        (b"0200", WITHDRAWAL_FIELDS, WITHDRAWAL),
        (b"0200", TRANSFER_FIELDS, TRANSFER),
        (b"0210", {11: b"000043", 39: b"00", 41: b"LT000003", 48: "PN005王**".encode()},
         PAYEE_ANSWER),
    ],
    ids=["sign-on", "withdrawal", "transfer-secondary-bitmap", "field48-utf8"],
)
def test_golden_messages_encode_and_decode_byte_for_byte(
    mti: bytes, fields: dict[int, bytes], raw: bytes
) -> None:
    assert encode_message(mti, fields) == raw
    assert decode_message(raw) == (mti, fields)


def test_field_48_tags_count_bytes() -> None:
    assert encode_tags({"PN": "王**"}) == "PN005王**".encode()
    assert decode_tags("LG002zhPN005王**".encode()) == {"LG": "zh", "PN": "王**"}
    with pytest.raises(WireFormatError):
        decode_tags(b"PN006ab")


def test_mac_fills_the_last_sixteen_characters_over_everything_before() -> None:
    seen: list[bytes] = []

    def fake_mac(data: bytes) -> bytes:
        seen.append(data)
        return b"AAAABBBBCCCCDDDD"

    fields = {k: v for k, v in WITHDRAWAL_FIELDS.items() if k != 64}
    raw = encode_with_mac(b"0200", fields, fake_mac)
    assert raw == WITHDRAWAL[:-16] + b"AAAABBBBCCCCDDDD"
    assert seen == [WITHDRAWAL[:-16]]  # the bitmap already flags field 64


@pytest.mark.parametrize(
    "raw",
    [
        WITHDRAWAL[:-1],  # truncated MAC
        WITHDRAWAL + b"X",  # trailing junk
        b"0200ZZ38040128E09001",  # bitmap not hex
        b"0200" b"0000000000000002" b"12",  # field 63 is not in the host spec
        b"0200" b"4000000000000000" b"1X4761",  # field 2's LLVAR prefix is not digits
    ],
)
def test_malformed_messages_raise_a_typed_error(raw: bytes) -> None:
    with pytest.raises(WireFormatError):
        decode_message(raw)


def test_frames_split_fed_one_byte_at_a_time_and_all_at_once() -> None:
    stream = frame(SIGN_ON) + frame(WITHDRAWAL) + frame(TRANSFER)
    buffer = bytearray()
    got: list[bytes] = []
    for byte in stream:
        buffer.append(byte)
        got.extend(take_frames(buffer))
    assert got == [SIGN_ON, WITHDRAWAL, TRANSFER] and not buffer
    buffer = bytearray(stream + b"\x00")  # trailing partial header stays buffered
    assert take_frames(buffer) == [SIGN_ON, WITHDRAWAL, TRANSFER]
    assert buffer == b"\x00"


def test_frame_longer_than_4096_is_refused() -> None:
    with pytest.raises(WireFormatError):
        take_frames(bytearray(b"\x10\x01" + b"0" * 10))


def _factory() -> MessageFactory:
    return MessageFactory(terminal(3, 10), TerminalCrypto(bytes(range(16)), bytes(range(16, 32))))


@pytest.mark.parametrize("kind", [k for k in Kind if k not in (Kind.COMPLETION, Kind.REVERSAL)])
def test_generated_requests_decode_with_the_switch_codec(kind: Kind) -> None:
    factory = _factory()
    raw, original = factory.financial(kind, b"000042", 30_000)
    message = switch_message.decode_message(raw)
    assert message.mti == "0200"
    assert message.stan == "000042" and message.terminal_id == "LT000003"
    assert message.pan == terminal(3, 10).pan
    ours = {str(k): v.decode() for k, v in decode_message(raw)[1].items()}
    assert dict(message.fields) == ours
    for advice in (Kind.COMPLETION, Kind.REVERSAL):
        encoded = factory.advice(advice, original, b"000043")
        decoded = switch_message.decode_message(encoded)
        assert decoded.fields["90"][:20] == "0200000042" + original.transmission_time.decode()
        assert "35" not in decoded.fields and decoded.pan == terminal(3, 10).pan


_VALUE = {
    3: st.sampled_from(["010000", "310000", "400000"]),
    4: st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}"),
    11: st.integers(1, 999_999).map(lambda n: f"{n:06d}"),
    39: st.sampled_from(["00", "51", "91"]),
    41: st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8, max_size=8),
    48: st.text(st.characters(min_codepoint=0xA0, max_codepoint=0x9FFF, exclude_categories=("Cs",)),
                max_size=60).map(lambda t: "TX" + f"{len(t.encode()):03d}" + t),
    102: st.text("0123456789", min_size=1, max_size=28),
    103: st.text("0123456789", min_size=1, max_size=28),
}


@settings(max_examples=150)
@given(st.fixed_dictionaries({}, optional=_VALUE).filter(bool))
def test_same_bytes_as_the_switch_codec(fields: dict[int, str]) -> None:
    ours = encode_message(b"0210", {k: v.encode() for k, v in fields.items()})
    theirs = switch_message.encode_message("0210", {str(k): v for k, v in fields.items()})
    assert ours == theirs
    assert decode_message(theirs)[1] == {k: v.encode() for k, v in fields.items()}
