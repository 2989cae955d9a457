"""Strict BER-TLV of field 55 (ATM_HOST_SPEC section 11), sans-I/O: bytes in, items out.

Section 11 narrows BER (ISO/IEC 8825-1, EMV Book 3 Annex B) to what a terminal needs and a
parser can check completely:

* tags of 1 or 2 bytes (first byte ``xxx11111`` announces a second byte, whose bit 8 must
  be 0: a third tag byte is refused, not skipped);
* lengths in shortest form: ``00``-``7F`` in one byte, ``81 80``-``81 FF`` in two; ``80``
  (indefinite), ``81 00``-``81 7F`` (not shortest) and ``82``.. (longer than the field can be)
  are refused;
* no padding (``00`` or ``FF`` where a tag should start), each tag at most once, nothing
  after the last value, at most 255 bytes in all.

Values are opaque bytes: a constructed tag is not descended into (section 11 names none).
Every violation is a :class:`TlvError` (response ``30``), never another exception; the
encoder writes only what the decoder accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

icc_data_bytes_max: Final = 255  # section 11: b..255
_one_byte_length_max: Final = 0x7F
_two_byte_length_marker: Final = 0x81
_tag_number_more: Final = 0x1F  # low 5 bits of a first tag byte announcing a second byte
_tag_byte_more: Final = 0x80  # bit 8 of a later tag byte announcing yet another byte
_padding_bytes: Final = frozenset({0x00, 0xFF})


class TlvError(ValueError):
    """Field 55 is not section 11's BER-TLV; the answer is a format error."""

    response_code_hint: Final = "30"

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at byte {offset}")
        self.reason = reason
        self.offset = offset


def _read_tag(data: bytes, at: int) -> tuple[str, int]:
    first = data[at]
    if first in _padding_bytes:
        raise TlvError("padding byte where a tag should start", at)
    if first & _tag_number_more != _tag_number_more:
        return f"{first:02X}", at + 1
    if at + 1 >= len(data):
        raise TlvError("two-byte tag cut short", at)
    second = data[at + 1]
    if second & _tag_byte_more:
        raise TlvError("tag longer than two bytes", at)
    return f"{first:02X}{second:02X}", at + 2


def _read_length(data: bytes, at: int) -> tuple[int, int]:
    if at >= len(data):
        raise TlvError("length missing", at)
    first = data[at]
    if first <= _one_byte_length_max:
        return first, at + 1
    if first != _two_byte_length_marker:
        raise TlvError("length form not allowed (indefinite or over 255)", at)
    if at + 1 >= len(data):
        raise TlvError("two-byte length cut short", at)
    length = data[at + 1]
    if length <= _one_byte_length_max:
        raise TlvError("length not in shortest form", at)
    return length, at + 2


def decode_tlv(data: bytes) -> dict[str, bytes]:
    """Tag (upper-case hex, e.g. ``9F26``) -> value, in the order received."""
    if len(data) > icc_data_bytes_max:
        raise TlvError(f"ICC data longer than {icc_data_bytes_max} bytes", icc_data_bytes_max)
    items: dict[str, bytes] = {}
    at = 0
    while at < len(data):
        start = at
        tag, at = _read_tag(data, at)
        length, at = _read_length(data, at)
        if at + length > len(data):
            raise TlvError(f"value of {tag} runs past the end", start)
        if tag in items:
            raise TlvError(f"tag {tag} repeated", start)
        items[tag] = bytes(data[at : at + length])
        at += length
    return items


def decode_tlv_hex(text: str) -> dict[str, bytes]:
    """Field 55 as carried on the wire: upper-case hex, an even number of characters."""
    if len(text) % 2:
        raise TlvError("odd number of hex characters", len(text) // 2)
    if len(text) > 2 * icc_data_bytes_max:
        raise TlvError(f"ICC data longer than {icc_data_bytes_max} bytes", icc_data_bytes_max)
    if not all(c in "0123456789ABCDEF" for c in text):
        raise TlvError("not upper-case hexadecimal", 0)
    return decode_tlv(bytes.fromhex(text))


def _encode_tag(tag: str) -> bytes:
    try:
        raw = bytes.fromhex(tag)
    except ValueError:
        raise TlvError(f"tag {tag!r} is not hexadecimal", 0) from None
    if tag != tag.upper() or not raw:
        raise TlvError(f"tag {tag!r} is not upper-case hex", 0)
    one_byte = raw[0] & _tag_number_more != _tag_number_more
    if raw[0] in _padding_bytes or len(raw) != (1 if one_byte else 2):
        raise TlvError(f"tag {tag} is not a 1- or 2-byte tag", 0)
    if not one_byte and raw[1] & _tag_byte_more:
        raise TlvError(f"tag {tag} announces a third byte", 0)
    return raw


def _encode_length(length: int) -> bytes:
    if length <= _one_byte_length_max:
        return bytes([length])
    return bytes([_two_byte_length_marker, length])


def encode_tlv(items: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> bytes:
    """BER-TLV in section 11's form (shortest lengths); refuses what ``decode_tlv`` refuses."""
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    seen: set[str] = set()
    out = bytearray()
    for tag, value in pairs:
        if tag in seen:
            raise TlvError(f"tag {tag} repeated", len(out))
        seen.add(tag)
        if len(value) > icc_data_bytes_max:
            raise TlvError(f"value of {tag} too long", len(out))
        out += _encode_tag(tag) + _encode_length(len(value)) + value
    if len(out) > icc_data_bytes_max:
        raise TlvError(f"ICC data longer than {icc_data_bytes_max} bytes", len(out))
    return bytes(out)


def encode_tlv_hex(items: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> str:
    """``encode_tlv`` as field 55 carries it: upper-case hex."""
    return encode_tlv(items).hex().upper()
