"""The codec this project used before :mod:`switch.protocol.fastcodec`: pyiso8583 plus checks.

A test oracle, so it lives under ``tests/`` and pyiso8583 is a test dependency only.
Kept verbatim (only :class:`Message` moved to :mod:`switch.protocol.message_view`) as the
independent cross-check the tests and ``python -m loadtest.codec_bench`` compare the
table-driven codec with: same bytes, same fields, same errors. Nothing in the package
imports it.

Decoding is strict where pyiso8583 is lenient (it checks lengths, not characters):
upper-case hex bitmaps, digit-only length prefixes, each field's character class
(:data:`switch.protocol.dialect.SPEC` ``content``), only fields of the dialect,
and the MAC, when present, last and in the right field (spec 8). Every failure is
a :class:`MessageFormatError` carrying the MTI, STAN and readable fields it could
salvage, so the server can answer ``30``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, NoReturn

import iso8583

from switch.protocol.dialect import (
    DATA_FIELDS,
    MAC_FIELD_PRIMARY,
    MAC_FIELD_SECONDARY,
    MAC_LENGTH_CHARS,
    SPEC,
    content_ok,
    mac_field_for,
)
from switch.protocol.errors import MessageBuildError, MessageFormatError
from switch.protocol.message_view import Message

MTI_BYTES: Final = 4
BITMAP_CHARS: Final = 16
_HEX_UPPER: Final = frozenset(b"0123456789ABCDEF")
_MAC_PLACEHOLDER: Final = "0" * MAC_LENGTH_CHARS

MacFunction = Callable[[bytes], str]
AsyncMacFunction = Callable[[bytes], Awaitable[str]]


def decode_message(data: bytes) -> Message:
    """Decode one message (the frame payload, without the length prefix)."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"message must be bytes, not {type(data).__name__}")
    mti = _read_mti(data)
    if mti is None:
        raise MessageFormatError("MTI is not 4 digits")
    numbers = _bitmap_fields(data)
    if numbers is None:
        _raise_salvaged(data, "bitmap is not upper-case hex, or a secondary bitmap is empty")
    unknown = sorted(numbers - DATA_FIELDS)
    if unknown:
        _raise_salvaged(data, f"fields outside the dialect: {unknown}")
    try:
        decoded, encoded = iso8583.decode(data, SPEC)
    except iso8583.DecodeError as exc:
        _raise_salvaged(data, exc.msg, exc.field)
    fields = {key: value for key, value in decoded.items() if key not in ("t", "p", "1", "h")}
    bad = _first_invalid_field(fields, encoded)
    if bad is not None:
        _raise_salvaged(data, "invalid characters or length prefix", bad)
    if not _mac_placement_ok(fields):
        _raise_salvaged(data, "MAC must be field 64 without a secondary bitmap, else 128", "128")
    return Message(mti, MappingProxyType(fields))


def encode_message(mti: str, fields: Mapping[str, str], *, mac: MacFunction | None = None) -> bytes:
    """Encode a message; with ``mac`` add the MAC field and fill it with ``mac(mac_input)``.

    ``mac_input`` is the encoded message up to the MAC field, with the bitmap
    already flagging the MAC field (spec 8): ``encoded[:-16]``.
    """
    encoded = _encode(mti, fields, with_mac_field=mac is not None)
    if mac is None:
        return bytes(encoded)
    return _fill_mac(encoded, mac(bytes(encoded[:-MAC_LENGTH_CHARS])))


async def encode_message_async_mac(
    mti: str, fields: Mapping[str, str], *, mac: AsyncMacFunction
) -> bytes:
    """:func:`encode_message` for an ``async`` MAC function (an HSM call)."""
    encoded = _encode(mti, fields, with_mac_field=True)
    return _fill_mac(encoded, await mac(bytes(encoded[:-MAC_LENGTH_CHARS])))


def mac_input_of(raw: bytes) -> bytes:
    """The bytes a received message's MAC covers: everything before the last 16 characters."""
    _require_room_for_mac(raw)
    return bytes(raw[:-MAC_LENGTH_CHARS])


def mac_of(raw: bytes) -> str:
    """The MAC of a received message: its last 16 characters (the MAC field is always last)."""
    _require_room_for_mac(raw)
    return bytes(raw[-MAC_LENGTH_CHARS:]).decode("ascii", errors="replace")


def _require_room_for_mac(raw: bytes) -> None:
    if len(raw) < MTI_BYTES + BITMAP_CHARS + MAC_LENGTH_CHARS:
        raise MessageFormatError("message too short to carry a MAC")


def _encode(mti: str, fields: Mapping[str, str], *, with_mac_field: bool) -> bytearray:
    if len(mti) != MTI_BYTES or not (mti.isdigit() and mti.isascii()):
        raise MessageBuildError(f"MTI {mti!r} is not 4 digits")
    document: dict[str, str] = {"t": mti}
    for key, value in fields.items():
        if key not in SPEC or not key.isdigit() or key == "1":
            raise MessageBuildError(f"field {key!r} is not in the dialect")
        if not isinstance(value, str) or not content_ok(key, value):
            raise MessageBuildError(f"field {key} has characters its format does not allow")
        document[key] = value
    if with_mac_field:
        mac_field = mac_field_for(fields)
        if MAC_FIELD_PRIMARY in fields or MAC_FIELD_SECONDARY in fields:
            raise MessageBuildError("fields already hold a MAC field; pass mac=None or drop it")
        document[mac_field] = _MAC_PLACEHOLDER
    try:
        encoded, _ = iso8583.encode(document, SPEC)
    except iso8583.EncodeError as exc:
        raise MessageBuildError(str(exc)) from None
    return encoded


def _fill_mac(encoded: bytearray, mac_hex: str) -> bytes:
    mac_text = mac_hex.upper()
    if len(mac_text) != MAC_LENGTH_CHARS or not content_ok(MAC_FIELD_PRIMARY, mac_text):
        raise MessageBuildError("the MAC function must return 16 hex characters")
    encoded[-MAC_LENGTH_CHARS:] = mac_text.encode("ascii")
    return bytes(encoded)


def _read_mti(data: bytes) -> str | None:
    head = bytes(data[:MTI_BYTES])
    if len(head) != MTI_BYTES or not (head.isdigit() and head.isascii()):
        return None
    return head.decode("ascii")


def _bitmap_at(data: bytes, start: int, offset: int) -> set[int] | None:
    chunk = bytes(data[start : start + BITMAP_CHARS])
    if len(chunk) != BITMAP_CHARS or not _HEX_UPPER.issuperset(chunk):
        return None
    bits = int(chunk, 16)
    fields = set()
    while bits:  # visit only the set bits: bitmaps are sparse
        lowest = bits & -bits
        fields.add(offset + 64 - (lowest.bit_length() - 1))
        bits ^= lowest
    return fields


def _bitmap_fields(data: bytes) -> set[int] | None:
    """Field numbers flagged by the bitmaps (1 and 65 excluded), or None when unreadable."""
    primary = _bitmap_at(data, MTI_BYTES, 0)
    if primary is None:
        return None
    if 1 not in primary:
        return primary
    secondary = _bitmap_at(data, MTI_BYTES + BITMAP_CHARS, 64)
    if not secondary:  # unreadable, or flagged but empty (spec 2: present only when needed)
        return None
    return (primary | secondary) - {1}


def _first_invalid_field(
    fields: Mapping[str, str], encoded: Mapping[str, Mapping[str, bytes]]
) -> str | None:
    for key, value in fields.items():
        prefix = encoded[key]["len"]
        if prefix and not (prefix.isdigit() and prefix.isascii()):
            return key
        if not content_ok(key, value):
            return key
    return None


def _mac_placement_ok(fields: Iterable[str]) -> bool:
    keys = set(fields)
    if MAC_FIELD_PRIMARY in keys and MAC_FIELD_SECONDARY in keys:
        return False
    if MAC_FIELD_PRIMARY in keys:
        return mac_field_for(keys - {MAC_FIELD_PRIMARY}) == MAC_FIELD_PRIMARY
    return True


def _raise_salvaged(data: bytes, reason: str, field: str | None = None) -> NoReturn:
    mti, fields = salvage_fields(data)
    raise MessageFormatError(reason, mti=mti, stan=fields.get("11"), fields=fields, field=field)


def salvage_fields(data: bytes) -> tuple[str | None, dict[str, str]]:
    """Read what can be read of a malformed message: the MTI and the valid fields.

    Walks the fields in order and stops at the first one whose length cannot be
    known; a field with bad characters is skipped (its length is still known).
    """
    mti = _read_mti(data)
    return mti, ({} if mti is None else _walk_fields(data, last=128))


def peek_field(data: bytes, field: str) -> str | None:
    """One field of an encoded message, reading no further than it (None if absent or invalid).

    Cheaper than a full decode: the server uses it to label metrics by field 39.
    """
    return _walk_fields(data, last=int(field)).get(field)


def _walk_fields(data: bytes, *, last: int) -> dict[str, str]:
    numbers = _bitmap_fields(data)
    if numbers is None:
        return {}
    position = MTI_BYTES + BITMAP_CHARS * (2 if any(n > 64 for n in numbers) else 1)
    fields: dict[str, str] = {}
    for number in sorted(n for n in numbers if n <= last):
        read = _read_field(data, position, str(number))
        if read is None:
            break
        value, position = read
        if value is not None:
            fields[str(number)] = value
    return fields


def _read_field(data: bytes, position: int, key: str) -> tuple[str | None, int] | None:
    """(value or None when invalid, next position), or None when the length is unknowable."""
    spec = SPEC.get(key)
    if spec is None:
        return None
    length = int(spec["max_len"])
    width = int(spec["len_type"])
    if width:
        prefix = bytes(data[position : position + width])
        if (
            len(prefix) != width
            or not (prefix.isdigit() and prefix.isascii())
            or int(prefix) > length
        ):
            return None
        length, position = int(prefix), position + width
    chunk = bytes(data[position : position + length])
    if len(chunk) != length:
        return None
    try:
        value: str | None = chunk.decode(spec["data_enc"])
    except UnicodeDecodeError:
        value = None
    if value is not None and not content_ok(key, value):
        value = None
    return value, position + length
