"""The exact, field-by-field codec behind :mod:`switch.protocol.fastcodec`.

Why it exists: the table-driven fast path only says "valid, here are the fields"
or "not for me". Everything else (malformed input, a field 48 in UTF-8 outside
ASCII, a shape seen for the first time) comes here, and this module decides the
outcome exactly as the codec that preceded it did (pyiso8583 plus the dialect's
checks, kept as the test oracle ``tests/protocol/reference_codec.py``): the same accepted
inputs, the same :class:`MessageFormatError` reason, field and salvaged MTI,
STAN and fields, the same :class:`MessageBuildError` texts. It does so without
pyiso8583, following pyiso8583's order of checks step by step, so the tests can
compare the two independently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NoReturn

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

MTI_BYTES: Final = 4
BITMAP_CHARS: Final = 16
MAC_PLACEHOLDER: Final = "0" * MAC_LENGTH_CHARS
_HEX_UPPER: Final = frozenset(b"0123456789ABCDEF")


def decode_fields(data: bytes) -> tuple[str, dict[str, str]]:
    """(MTI, fields) of a valid message, else the MessageFormatError the reference raises."""
    mti = read_mti(data)
    if mti is None:
        raise MessageFormatError("MTI is not 4 digits")
    numbers = bitmap_fields(data)
    if numbers is None:
        _raise_salvaged(data, "bitmap is not upper-case hex, or a secondary bitmap is empty")
    unknown = sorted(numbers - DATA_FIELDS)
    if unknown:
        _raise_salvaged(data, f"fields outside the dialect: {unknown}")
    fields, prefixes = _split_fields(data, numbers)
    for key, value in fields.items():
        prefix = prefixes[key]
        if (prefix and not (prefix.isdigit() and prefix.isascii())) or not content_ok(key, value):
            _raise_salvaged(data, "invalid characters or length prefix", key)
    if not mac_placement_ok(fields):
        _raise_salvaged(data, "MAC must be field 64 without a secondary bitmap, else 128", "128")
    return mti, fields


def _split_fields(data: bytes, numbers: set[int]) -> tuple[dict[str, str], dict[str, bytes]]:
    """Cut the fields out like pyiso8583's decoder: its checks, in its order, its messages."""
    position = MTI_BYTES + BITMAP_CHARS * (2 if any(n > 64 for n in numbers) else 1)
    fields: dict[str, str] = {}
    prefixes: dict[str, bytes] = {}
    key = "p"
    for key in [str(number) for number in sorted(numbers)]:
        spec = SPEC[key]
        width = int(spec["len_type"])
        prefix = bytes(data[position : position + width])
        prefixes[key] = prefix
        if len(prefix) != width:
            reason = f"Field length is {len(prefix)} bytes wide, expecting {width}"
            _raise_salvaged(data, reason, key)
        length = int(spec["max_len"]) if width == 0 else _prefix_length(data, prefix, key, spec)
        position += width
        if length == 0:
            fields[key] = ""
            continue
        chunk = bytes(data[position : position + length])
        if len(chunk) != length:
            _raise_salvaged(data, f"Field data is {len(chunk)} bytes, expecting {length}", key)
        fields[key] = _decode_text(data, chunk, key, spec["data_enc"])
        position += length
    if position != len(data):
        _raise_salvaged(data, "Extra data after last field", key)
    return fields, prefixes


def _prefix_length(data: bytes, prefix: bytes, key: str, spec: Mapping[str, Any]) -> int:
    """The length a variable field's prefix announces (pyiso8583 reads it with ``int()``)."""
    try:
        text = prefix.decode(spec["len_enc"])
    except LookupError:
        _raise_salvaged(data, "Failed to decode field length, unknown encoding specified", key)
    except Exception:
        _raise_salvaged(data, "Failed to decode field length, invalid data", key)
    try:
        length = int(text)
    except Exception:
        _raise_salvaged(data, "Failed to decode field length, non-numeric data", key)
    if length > spec["max_len"]:
        _raise_salvaged(
            data, f"Field data is {length} bytes, larger than maximum {spec['max_len']}", key
        )
    return length


def _decode_text(data: bytes, chunk: bytes, key: str, encoding: str) -> str:
    try:
        return chunk.decode(encoding)
    except LookupError:
        _raise_salvaged(data, "Failed to decode field, unknown encoding specified", key)
    except Exception:
        _raise_salvaged(data, "Failed to decode field, invalid data", key)


def encode_unmacced(mti: str, fields: Mapping[str, str], *, with_mac_field: bool) -> bytes:
    """The encoded message (MAC field, if asked, as a placeholder), or the reference's error."""
    if len(mti) != MTI_BYTES or not (mti.isdigit() and mti.isascii()):
        raise MessageBuildError(f"MTI {mti!r} is not 4 digits")
    document: dict[str, str] = {}
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
        document[mac_field] = MAC_PLACEHOLDER
    try:
        head = mti.encode(SPEC["t"]["data_enc"])
    except Exception:
        raise MessageBuildError("Failed to encode field, invalid data: field t") from None
    numbers = sorted(int(key) for key in document)
    parts = [head, bitmap_text(numbers).encode("ascii")]
    parts.extend(_encode_field(str(number), document[str(number)]) for number in numbers)
    return b"".join(parts)


def bitmap_text(numbers: list[int]) -> str:
    """The upper-case hex bitmap(s) flagging ``numbers`` (secondary only when 65-128 occur)."""
    bits = 0
    for number in numbers:
        bits |= 1 << (128 - number)
    if bits & ((1 << 64) - 1):
        return f"{bits | 1 << 127:032X}"
    return f"{bits >> 64:016X}"


def _encode_field(key: str, value: str) -> bytes:
    """One field with its prefix, with pyiso8583's encoder's checks and messages."""
    spec = SPEC[key]
    try:
        data = value.encode(spec["data_enc"])
    except LookupError:
        raise MessageBuildError(
            f"Failed to encode field, unknown encoding specified: field {key}"
        ) from None
    except Exception:
        raise MessageBuildError(f"Failed to encode field, invalid data: field {key}") from None
    width, max_len = int(spec["len_type"]), int(spec["max_len"])
    if width == 0:
        if len(data) != max_len:
            raise MessageBuildError(
                f"Field data is {len(data)} bytes, expecting {max_len}: field {key}"
            )
        return data
    if len(data) > max_len:
        raise MessageBuildError(
            f"Field data is {len(data)} bytes, larger than maximum {max_len}: field {key}"
        )
    return f"{len(data):0{width}d}".encode(spec["len_enc"]) + data


def fill_mac(unmacced: bytes, mac_hex: str) -> bytes:
    """``unmacced`` with its last 16 characters replaced by the MAC (checked like before)."""
    mac_text = mac_hex.upper()
    if len(mac_text) != MAC_LENGTH_CHARS or not content_ok(MAC_FIELD_PRIMARY, mac_text):
        raise MessageBuildError("the MAC function must return 16 hex characters")
    return unmacced[:-MAC_LENGTH_CHARS] + mac_text.encode("ascii")


def read_mti(data: bytes) -> str | None:
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


def bitmap_fields(data: bytes) -> set[int] | None:
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


def mac_placement_ok(fields: Mapping[str, object] | set[str]) -> bool:
    """Spec 8: at most one MAC field, 64 only when no field 65-127 is present."""
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
    mti = read_mti(data)
    return mti, ({} if mti is None else walk_fields(data, last=128))


def walk_fields(data: bytes, *, last: int) -> dict[str, str]:
    """The valid fields up to ``last``, stopping where a length becomes unknowable."""
    numbers = bitmap_fields(data)
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
