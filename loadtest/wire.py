"""A small, fast ISO 8583 codec for the load generator and the echo baseline.

Why not ``switch.protocol``: the generator must stay cheap (its per-request cost
caps the echo baseline it is compared against), and pyiso8583 costs ~150 us per
encode + decode here. This codec knows only the fields of the host spec
(section 2), works on ``bytes`` and does no per-field validation beyond lengths.
It is checked against golden messages written from the spec and against the
switch's own codec in ``tests/loadtest/``.

Fields are ``dict[int, bytes]``; field 48 is UTF-8 and its length counts bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# Per field: (length-prefix digits, length). Prefix 0 = fixed length; otherwise the
# length is the maximum (spec section 2).
FIELD_FORMATS: dict[int, tuple[int, int]] = {
    2: (2, 19),
    3: (0, 6),
    4: (0, 12),
    7: (0, 10),
    11: (0, 6),
    12: (0, 6),
    13: (0, 4),
    14: (0, 4),
    15: (0, 4),
    18: (0, 4),
    22: (0, 3),
    32: (2, 11),
    35: (2, 37),
    37: (0, 12),
    38: (0, 6),
    39: (0, 2),
    41: (0, 8),
    42: (0, 15),
    43: (0, 40),
    48: (3, 999),
    49: (0, 3),
    52: (0, 16),
    54: (3, 120),
    64: (0, 16),
    70: (0, 3),
    90: (0, 42),
    95: (0, 42),
    102: (2, 28),
    103: (2, 28),
    128: (0, 16),
}

mac_length_chars = 16
mti_length_chars = 4
bitmap_length_chars = 16
_SECONDARY_BIT = 1 << 127  # field 1 in a 128-bit bitmap

# Field n is bit (128 - n) of the 128-bit bitmap, so sorting by n is sorting by bit.
_FIELD_BITS: dict[int, int] = {n: 1 << (128 - n) for n in FIELD_FORMATS}
_BITS_TO_FIELDS: list[tuple[int, int]] = sorted((bit, n) for n, bit in _FIELD_BITS.items())
_BITS_TO_FIELDS.reverse()  # highest bit (lowest field number) first
_LENGTH_FORMATS = {2: b"%02d", 3: b"%03d"}

# Response MTI for each request MTI (spec 5): the repeat digit is dropped.
RESPONSE_MTI: dict[bytes, bytes] = {
    b"0200": b"0210",
    b"0220": b"0230",
    b"0221": b"0230",
    b"0420": b"0430",
    b"0421": b"0430",
    b"0800": b"0810",
}


class WireFormatError(ValueError):
    """A message could not be encoded or decoded with the spec's field formats."""


def encode_message(mti: bytes, fields: Mapping[int, bytes]) -> bytes:
    """Encode ``mti`` + ``fields`` (values already in wire form, as bytes)."""
    bitmap = 0
    for number in fields:
        bit = _FIELD_BITS.get(number)
        if bit is None:
            raise WireFormatError(f"field {number} is not in the host spec")
        bitmap |= bit
    parts = [mti]
    if bitmap & ((1 << 64) - 1):
        bitmap |= _SECONDARY_BIT
        parts.append(b"%032X" % bitmap)
    else:
        parts.append(b"%016X" % (bitmap >> 64))
    for number in sorted(fields):
        value = fields[number]
        prefix, length = FIELD_FORMATS[number]
        if prefix:
            if len(value) > length:
                raise WireFormatError(f"field {number}: {len(value)} bytes > {length}")
            parts.append(_LENGTH_FORMATS[prefix] % len(value))
        elif len(value) != length:
            raise WireFormatError(f"field {number}: {len(value)} bytes, fixed length is {length}")
        parts.append(value)
    return b"".join(parts)


def mac_field_for(fields: Mapping[int, bytes]) -> int:
    """Spec 8: the MAC is field 64 without a secondary bitmap, else field 128."""
    return 128 if max(fields) > 64 else 64


def encode_with_mac(mti: bytes, fields: dict[int, bytes], mac: Callable[[bytes], bytes]) -> bytes:
    """Add the MAC field, encode, and fill it with ``mac(mac_input)`` (spec 8).

    ``fields`` is modified (the MAC field is set): callers pass a fresh dict.
    """
    fields[mac_field_for(fields)] = b"0" * mac_length_chars
    encoded = encode_message(mti, fields)
    mac_input = encoded[:-mac_length_chars]
    return mac_input + mac(mac_input)


def decode_message(data: bytes) -> tuple[bytes, dict[int, bytes]]:
    """Decode one message (without the length prefix) into its MTI and fields."""
    try:
        mti = data[:mti_length_chars]
        bitmap = int(data[4:20], 16) << 64
        position = 20
        if bitmap & _SECONDARY_BIT:
            bitmap |= int(data[20:36], 16)
            position = 36
        bitmap &= ~_SECONDARY_BIT
    except ValueError as exc:
        raise WireFormatError("bad MTI or bitmap") from exc
    fields: dict[int, bytes] = {}
    end = len(data)
    for bit, number in _BITS_TO_FIELDS:
        if not bitmap & bit:
            continue
        bitmap ^= bit
        prefix, length = FIELD_FORMATS[number]
        if prefix:
            digits = data[position : position + prefix]
            if len(digits) != prefix or not digits.isdigit():
                raise WireFormatError(f"field {number}: bad length prefix")
            length = int(digits)
            position += prefix
        value = data[position : position + length]
        if len(value) != length:
            raise WireFormatError(f"field {number}: truncated")
        fields[number] = value
        position += length
    if bitmap:
        raise WireFormatError(f"fields outside the host spec in bitmap {bitmap:032X}")
    if position != end:
        raise WireFormatError(f"{end - position} bytes after the last field")
    return mti, fields


def response_mti(mti: bytes) -> bytes:
    try:
        return RESPONSE_MTI[mti]
    except KeyError:
        raise WireFormatError(f"no response MTI for {mti!r}") from None


def encode_tags(tags: Mapping[str, str]) -> bytes:
    """Field 48 elements: TAG + 3-digit byte length + UTF-8 value (spec 3)."""
    parts = []
    for tag, value in tags.items():
        raw = value.encode("utf-8")
        parts.append(tag.encode("ascii") + b"%03d" % len(raw) + raw)
    return b"".join(parts)


def decode_tags(value: bytes) -> dict[str, str]:
    """Split field 48 into its tagged elements (lengths count bytes)."""
    tags: dict[str, str] = {}
    position = 0
    while position < len(value):
        header = value[position : position + 5]
        if len(header) != 5 or not header[2:].isdigit():
            raise WireFormatError("field 48: bad element header")
        length = int(header[2:])
        element = value[position + 5 : position + 5 + length]
        if len(element) != length:
            raise WireFormatError("field 48: truncated element")
        tags[header[:2].decode("ascii")] = element.decode("utf-8")
        position += 5 + length
    return tags


def frame(payload: bytes) -> bytes:
    """Spec 1: a 2-byte big-endian length before every message."""
    return len(payload).to_bytes(2, "big") + payload


frame_size_bytes_max = 4096  # spec 1: a longer length closes the connection


def take_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete frame's payload at the front of ``buffer``."""
    frames: list[bytes] = []
    position = 0
    available = len(buffer)
    while available - position >= 2:
        length = (buffer[position] << 8) | buffer[position + 1]
        if length > frame_size_bytes_max:
            raise WireFormatError(f"frame of {length} bytes > {frame_size_bytes_max}")
        if available - position - 2 < length:
            break
        frames.append(bytes(buffer[position + 2 : position + 2 + length]))
        position += 2 + length
    if position:
        del buffer[:position]
    return frames
