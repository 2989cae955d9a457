"""BER-TLV as the terminal reads and writes it (EMV Book 3 annex B; spec 11's field 55 rules).

The terminal is its own party: it does not share the switch's parser. Both directions are
strict in the way spec 11 asks of field 55 (1- or 2-byte tags, shortest-form lengths, each tag
once), because the terminal builds 55 from what the card returned and must never forward a
malformed object. Card responses may nest constructed templates (70, 77, 6F, A5); `parse`
returns the top level and `flatten` walks the templates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

# A card response or a field 55 never needs more (spec 11: 55 <= 255 bytes; R-APDU <= 256).
tlv_size_bytes_max: Final = 256
_CONSTRUCTED: Final = 0x20
_MORE_TAG_BYTES: Final = 0x1F


class TlvError(ValueError):
    """Malformed BER-TLV (from the card, or something this side was asked to encode)."""


def _read_tag(data: bytes, offset: int) -> tuple[str, int]:
    first = data[offset]
    if first in (0x00, 0xFF):
        raise TlvError(f"padding byte {first:02X} where a tag was expected")
    if first & _MORE_TAG_BYTES != _MORE_TAG_BYTES:
        return f"{first:02X}", offset + 1
    if offset + 1 >= len(data):
        raise TlvError("tag cut short")
    second = data[offset + 1]
    if second & 0x80:
        raise TlvError("tags longer than 2 bytes are not used here")
    return f"{first:02X}{second:02X}", offset + 2


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TlvError("length missing")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    if first == 0x81 and offset + 1 < len(data) and data[offset + 1] >= 0x80:
        return data[offset + 1], offset + 2
    raise TlvError(f"length byte {first:02X} is not the shortest form of a length <= 255")


def parse(data: bytes) -> dict[str, bytes]:
    """Top-level tag -> value (hex tag names, upper case); TlvError on anything malformed."""
    if len(data) > tlv_size_bytes_max:
        raise TlvError(f"TLV data longer than {tlv_size_bytes_max} bytes")
    objects: dict[str, bytes] = {}
    offset = 0
    while offset < len(data):
        tag, offset = _read_tag(data, offset)
        length, offset = _read_length(data, offset)
        if offset + length > len(data):
            raise TlvError(f"tag {tag} claims {length} bytes, {len(data) - offset} left")
        if tag in objects:
            raise TlvError(f"tag {tag} appears twice")
        objects[tag] = bytes(data[offset : offset + length])
        offset += length
    return objects


def is_constructed(tag: str) -> bool:
    return bool(int(tag[:2], 16) & _CONSTRUCTED)


def flatten(data: bytes) -> dict[str, bytes]:
    """Every primitive object, templates opened recursively (a card's 70/77/6F/A5)."""
    found: dict[str, bytes] = {}
    for tag, value in parse(data).items():
        inner = flatten(value) if is_constructed(tag) else {tag: value}
        duplicate = set(inner) & set(found)
        if duplicate:
            raise TlvError(f"tag {sorted(duplicate)[0]} appears twice")
        found.update(inner)
    return found


def encode_one(tag: str, value: bytes) -> bytes:
    """One object, shortest-form length."""
    tag_bytes = bytes.fromhex(tag)
    if len(tag_bytes) not in (1, 2) or len(value) > 255:
        raise TlvError(f"cannot encode tag {tag!r} with {len(value)} bytes")
    length = bytes([len(value)]) if len(value) < 0x80 else bytes([0x81, len(value)])
    return tag_bytes + length + value


def encode(objects: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> bytes:
    """Objects in the given order."""
    items = objects.items() if isinstance(objects, Mapping) else objects
    out = b"".join(encode_one(tag, value) for tag, value in items)
    if len(out) > tlv_size_bytes_max:
        raise TlvError(f"TLV data longer than {tlv_size_bytes_max} bytes")
    return out


def parse_dol(dol: bytes) -> list[tuple[str, int]]:
    """A data object list (CDOL1, CDOL2): (tag, length) pairs, no values (EMV Book 3 5.4)."""
    entries: list[tuple[str, int]] = []
    offset = 0
    while offset < len(dol):
        tag, offset = _read_tag(dol, offset)
        length, offset = _read_length(dol, offset)
        entries.append((tag, length))
    return entries


def build_dol_data(dol: bytes, values: Mapping[str, bytes]) -> bytes:
    """Concatenate the values a DOL asks for; a value this side does not have is zeros
    (Book 3 5.4); a value of another length is a bug of the caller (TlvError)."""
    out = b""
    for tag, length in parse_dol(dol):
        value = values.get(tag, bytes(length))
        if len(value) != length:
            raise TlvError(f"DOL wants {length} bytes of {tag}, got {len(value)}")
        out += value
    return out
