"""What the fast codec knows of each field and each byte, read from the dialect once.

Why apart: the decode and encode plans (:mod:`._plans`) and the class check on the
hot path (:mod:`._decoding`, :mod:`._encoding`) all read these tables; they are
built at import from :data:`switch.protocol.dialect.SPEC`, and a dialect this codec
cannot do exactly is refused here, before any message is seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from switch.protocol.dialect import CONTENT_PATTERNS, DATA_FIELDS, SPEC

MTI_BYTES: Final = 4
BITMAP_CHARS: Final = 16

# ---------------------------------------------------------------------------
# Character classes as bits: _CLASS_MASKS[byte] = the classes that byte belongs to.
# ---------------------------------------------------------------------------

_DIGIT_BIT: Final = 1  # MTI digits (the length prefixes are checked by table lookup)
_SINGLE_CLASS: Final = re.compile(r"\[(?:[^\]\\]|\\.)+\]\*")


def _class_bits() -> dict[str, int]:
    """One bit per content class that a byte-by-byte test decides exactly.

    A class qualifies when its pattern is ``[...]*``: then a value matches iff every
    character does. Others (none today) get no bit and are checked with
    :func:`content_ok` on the value after slicing.
    """
    bits: dict[str, int] = {}
    for name in sorted(CONTENT_PATTERNS):
        if _SINGLE_CLASS.fullmatch(CONTENT_PATTERNS[name].pattern) and len(bits) < 7:
            bits[name] = 2 << len(bits)
    return bits


_CLASS_BITS: Final = _class_bits()


def _class_masks() -> bytes:
    table = bytearray(256)
    for byte in range(128):
        char = chr(byte)
        if char.isdigit():
            table[byte] |= _DIGIT_BIT
        for name, bit in _CLASS_BITS.items():
            if CONTENT_PATTERNS[name].fullmatch(char):
                table[byte] |= bit
    for byte in range(128, 256):
        # Non-ASCII bytes pass the mask: an ASCII field holding one fails its decode,
        # a UTF-8 field's non-ASCII value is checked with content_ok after decoding.
        table[byte] = 0xFF
    return bytes(table)


_CLASS_MASKS: Final = _class_masks()


# ---------------------------------------------------------------------------
# Per-field facts from SPEC.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    number: int
    width: int  # digits of the length prefix, 0 for a fixed-length field
    max_len: int  # the length of a fixed field, the maximum of a variable one
    encoding: str
    class_bit: int  # 0: the class is checked with content_ok after slicing
    prefixes: Mapping[bytes, int]  # b"00".. -> length, for the lengths allowed


def _check_supported(key: str, spec: Mapping[str, Any]) -> None:
    """Refuse at import a dialect this codec cannot do exactly (binary or nibble fields)."""
    text = spec.get("data_enc") not in ("b", "bcd") and spec.get("len_enc") not in ("b", "bcd")
    if not text or spec.get("len_count", "bytes") != "bytes":
        raise ValueError(f"fastcodec: field {key} is not text-encoded; extend the codec first")


def _load_fields() -> dict[str, _Field]:
    if SPEC["h"]["max_len"] or SPEC["t"]["data_enc"] != "ascii":
        raise ValueError("fastcodec: a header or a non-ASCII MTI needs codec work first")
    for key in ("p", "1"):
        if SPEC[key]["data_enc"] != "ascii" or SPEC[key]["max_len"] != BITMAP_CHARS:
            raise ValueError("fastcodec: only ASCII hex bitmaps are supported")
    prefix_tables: dict[tuple[int, int, str], dict[bytes, int]] = {}
    fields: dict[str, _Field] = {}
    for number in sorted(DATA_FIELDS):
        key = str(number)
        spec = SPEC[key]
        _check_supported(key, spec)
        width, max_len = int(spec["len_type"]), int(spec["max_len"])
        table = prefix_tables.setdefault(
            (width, max_len, spec["len_enc"]),
            {
                f"{n:0{width}d}".encode(spec["len_enc"]): n
                for n in range(min(max_len, 10**width - 1) + 1)
            }
            if width
            else {},
        )
        fields[key] = _Field(
            key=key,
            number=number,
            width=width,
            max_len=max_len,
            encoding=spec["data_enc"],
            class_bit=_CLASS_BITS.get(spec.get("content", ""), 0),
            prefixes=table,
        )
    return fields


_FIELDS: Final = _load_fields()
