"""The strict BER-TLV codec of field 55 (switch/emv/tlv.py) against section 11.

Goal: accept exactly section 11's form and answer everything else with the typed error.
Method: golden byte strings written by hand (tag, length and value bytes counted by hand),
one malformed case per rule, then hypothesis: round trips of generated items, and arbitrary
bytes that may only ever give a result or ``TlvError``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.emv.tlv import TlvError, decode_tlv, decode_tlv_hex, encode_tlv, encode_tlv_hex

h = bytes.fromhex

# (name, wire bytes as hex, decoded items), each string typed by hand.
GOLDEN = [
    ("empty", "", {}),
    ("one-byte tag", "82023900", {"82": h("3900")}),
    ("two-byte tag", "9F36020007", {"9F36": h("0007")}),
    (
        "ARQC and CID",
        "9F260811223344556677889F270180",
        {"9F26": h("1122334455667788"), "9F27": h("80")},
    ),
    ("zero-length value", "9F1000", {"9F10": b""}),
    ("5F2A currency", "5F2A020156", {"5F2A": h("0156")}),
    # 128 bytes: the first length that needs the 81 form.
    ("two-byte length", "DF018180" + "AB" * 128, {"DF01": h("AB" * 128)}),
    ("tag 91 of a response", "910A00112233445566773030", {"91": h("00112233445566773030")}),
    ("constructed tag kept opaque", "7003820100", {"70": h("820100")}),
]


@pytest.mark.parametrize(("name", "wire", "items"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_decode_and_encode(name: str, wire: str, items: dict[str, bytes]) -> None:
    assert decode_tlv(h(wire)) == items
    assert decode_tlv_hex(wire.upper()) == items
    assert encode_tlv(items) == h(wire)
    assert encode_tlv_hex(items) == wire.upper()


def test_order_is_kept_and_any_order_is_accepted() -> None:
    items = decode_tlv(h("9F2701809F26081122334455667788"))
    assert list(items) == ["9F27", "9F26"]


BAD = [
    ("padding 00 before a tag", "00820100"),
    ("padding FF after the last item", "820100FF"),
    ("three-byte tag", "9F81010100"),
    ("two-byte tag cut short", "9F"),
    ("length missing", "82"),
    ("indefinite length", "828000"),
    ("81 form for a short length", "82810100"),
    ("82 length form", "8282000100"),
    ("two-byte length cut short", "8281"),
    ("value past the end", "820300"),
    ("repeated tag", "820100820100"),
    ("over 255 bytes", "DF0181FC" + "00" * 252),
]


@pytest.mark.parametrize(("name", "wire"), BAD, ids=[b[0] for b in BAD])
def test_malformed_is_a_typed_format_error(name: str, wire: str) -> None:
    with pytest.raises(TlvError) as caught:
        decode_tlv(h(wire))
    assert caught.value.response_code_hint == "30"


@pytest.mark.parametrize("text", ["8", "82010", "820a00", "8201 0", "XX"])
def test_hex_form_errors(text: str) -> None:
    with pytest.raises(TlvError):
        decode_tlv_hex(text)


def test_exactly_255_bytes_is_accepted() -> None:
    wire = h("DF0181FB" + "00" * 251)
    assert len(wire) == 255
    assert decode_tlv(wire) == {"DF01": bytes(251)}


@pytest.mark.parametrize(
    "items",
    [
        [("9F", b"")],  # announces a second byte
        [("9F81", b"")],  # announces a third byte
        [("00", b"")],  # padding value as a tag
        [("9f26", b"")],  # lower case
        [("82", b""), ("82", b"")],  # repeated
        [("DF01", bytes(256))],  # too long
        [("DF01", bytes(200)), ("DF02", bytes(60))],  # total too long
        [("ZZ", b"")],
    ],
)
def test_encoder_refuses_what_the_decoder_refuses(items: list[tuple[str, bytes]]) -> None:
    with pytest.raises(TlvError):
        encode_tlv(items)


one_byte_tags = st.integers(min_value=0x01, max_value=0xFE).filter(lambda b: b & 0x1F != 0x1F)
two_byte_tags = st.tuples(
    st.integers(min_value=0x01, max_value=0xFE).filter(lambda b: b & 0x1F == 0x1F),
    st.integers(min_value=0x00, max_value=0x7F),
)
tags = st.one_of(
    one_byte_tags.map(lambda b: f"{b:02X}"),
    two_byte_tags.map(lambda t: f"{t[0]:02X}{t[1]:02X}"),
)
item_lists = st.dictionaries(tags, st.binary(max_size=140), max_size=6)


@given(items=item_lists)
def test_round_trip(items: dict[str, bytes]) -> None:
    try:
        wire = encode_tlv(items)
    except TlvError:
        # Only the section 11 size limit may refuse generated items.
        assert (
            sum(len(t) // 2 + len(v) + (1 if len(v) < 128 else 2) for t, v in items.items()) > 255
        )
        return
    assert decode_tlv(wire) == items
    assert decode_tlv_hex(wire.hex().upper()) == items


@given(data=st.binary(max_size=300))
def test_fuzz_bytes_give_items_or_tlv_error(data: bytes) -> None:
    try:
        items = decode_tlv(data)
    except TlvError as exc:
        assert exc.response_code_hint == "30"
        return
    assert encode_tlv(items) == data  # accepted input is canonical: re-encodes identically


@given(text=st.text(max_size=600))
def test_fuzz_text_gives_items_or_tlv_error(text: str) -> None:
    try:
        decode_tlv_hex(text)
    except TlvError:
        pass


@given(
    items=item_lists,
    position=st.integers(min_value=0),
    byte=st.integers(0, 255),
    op=st.sampled_from(["set", "insert", "delete"]),
)
def test_fuzz_mutated_valid_data(
    items: dict[str, bytes], position: int, byte: int, op: str
) -> None:
    """Near-valid input (one byte changed, added or removed) reaches the deep branches."""
    try:
        wire = bytearray(encode_tlv(items))
    except TlvError:
        return
    at = position % (len(wire) + 1)
    if op == "insert":
        wire.insert(at, byte)
    elif wire and at < len(wire):
        if op == "set":
            wire[at] = byte
        else:
            del wire[at]
    try:
        decoded = decode_tlv(bytes(wire))
    except TlvError:
        return
    assert encode_tlv(decoded) == bytes(wire)
