"""A table-driven decoder and encoder for the dialect, several times faster than pyiso8583.

Why: the switch decodes every request and encodes every answer on the latency path,
and pyiso8583 plus the dialect's checks cost ~40 µs a message (issue 10, item 5).

How: everything that depends only on the bitmap is computed once and cached, the
*plan* (which fields, in which order, where the variable lengths sit, whether the
set of fields is legal at all); everything that depends on the bitmap and the
variable lengths is cached too, the *shape* (the slice of every field, and the
character class required at every byte position as one big integer). A message
then costs a few dictionary lookups, one ``bytes.translate`` that maps every byte
to the set of classes it belongs to, one AND of two integers that checks all the
fields' characters at once, one ASCII decode and one C-level slicing of all fields.

Anything the fast path is not sure of (a malformed message, a non-ASCII field 48
that is not UTF-8, a class that cannot be checked byte by byte) goes to
:mod:`switch.protocol.codec_fallback`, which decides it exactly as the previous
codec did, errors included. The tables are derived from
:data:`switch.protocol.dialect.SPEC` at import time, so a field added there just works.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from switch.protocol import codec_fallback
from switch.protocol.dialect import (
    CONTENT_PATTERNS,
    DATA_FIELDS,
    MAC_FIELD_PRIMARY,
    MAC_FIELD_SECONDARY,
    MAC_LENGTH_CHARS,
    SPEC,
    content_ok,
    mac_field_for,
)
from switch.protocol.errors import MessageBuildError, MessageFormatError
from switch.protocol.message_view import Message, trusted_message

MacFunction = Callable[[bytes], str]
AsyncMacFunction = Callable[[bytes], Awaitable[str]]

MTI_BYTES: Final = 4
BITMAP_CHARS: Final = 16

# Bounds on the caches: an attacker choosing bitmaps or lengths at random only
# makes us rebuild entries (a few µs each), never grow memory without limit.
# Plans per cache (decode by primary bitmap, by both bitmaps, encode by keys):
plans_cached_max: Final = 2048
# Shapes over all plans (~1.5 kB each: slices and a class mask as big as a message);
# a real traffic mix needs a few hundred.
shapes_cached_max: Final = 8192

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

_T = TypeVar("_T")


def _tuple_getter(items: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``operator.itemgetter`` that always returns a tuple (it does not for one item)."""
    if len(items) >= 2:
        return operator.itemgetter(*items)
    if len(items) == 1:
        only = items[0]
        return lambda source: (source[only],)
    return lambda source: ()


def _bounded_put(cache: dict[Any, _T], key: Any, value: _T, limit: int) -> _T:
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


class _ShapeBudget:
    """Counts shapes over all plans; past :data:`shapes_cached_max` every cache starts over."""

    count = 0

    @classmethod
    def put(cls, shapes: dict[Any, _T], key: Any, shape: _T) -> _T:
        if cls.count >= shapes_cached_max:
            forget_cached_plans()
        cls.count += 1
        shapes[key] = shape
        return shape


def forget_cached_plans() -> None:
    """Drop every cached plan and shape (they are rebuilt on demand)."""
    _primary_plans.clear()
    _full_plans.clear()
    _encode_plans.clear()
    _ShapeBudget.count = 0


# ---------------------------------------------------------------------------
# Decoding.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DecodeShape:
    total: int  # exact length of the message
    required: int  # per byte position the class bit it must have, as one big integer
    slices: Callable[[Any], tuple[Any, ...]]  # every field's value, then the MTI


@dataclass(slots=True)
class _DecodePlan:
    """What a bitmap alone decides: the fields, their order, where the lengths are."""

    keys: tuple[str, ...]
    fields: tuple[_Field, ...]
    start: int  # first byte after the bitmap(s)
    # per variable field: (fixed bytes before its prefix since the last variable field,
    # prefix width, prefix -> length table)
    steps: tuple[tuple[int, int, Mapping[bytes, int]], ...]
    encodings: tuple[str, ...]  # per field, then "ascii" for the MTI
    late_checks: tuple[str, ...]  # fields whose class has no bit
    shapes: dict[tuple[int, ...], _DecodeShape] = field(default_factory=dict)

    def shape(self, lengths: tuple[int, ...]) -> _DecodeShape:
        """Positions and required classes for these variable lengths (cached)."""
        required = bytearray(b"\x01" * MTI_BYTES + b"\x00" * (self.start - MTI_BYTES))
        slices: list[slice] = []
        variable = iter(lengths)
        for spec in self.fields:
            if spec.width:
                length = next(variable)
                required += b"\x00" * spec.width
            else:
                length = spec.max_len
            slices.append(slice(len(required), len(required) + length))
            required += bytes([spec.class_bit]) * length
        slices.append(slice(0, MTI_BYTES))
        shape = _DecodeShape(
            total=len(required),
            required=int.from_bytes(required, "big"),
            slices=_tuple_getter(slices),
        )
        return _ShapeBudget.put(self.shapes, lengths, shape)


_INVALID: Final = _DecodePlan((), (), 0, (), (), ())  # an unusable bitmap: the exact path
_NEEDS_SECONDARY: Final = _DecodePlan((), (), 0, (), (), ())  # look the 32 chars up
_BIT_ONE_SET: Final = frozenset(b"89ABCDEF")  # first hex digit of a bitmap flagging field 1
_primary_plans: dict[bytes, _DecodePlan] = {}
_full_plans: dict[bytes, _DecodePlan] = {}


def _plan_for(data: bytes) -> _DecodePlan:
    """Build and cache the plan of ``data``'s bitmap(s); _INVALID when they are unusable."""
    primary = data[MTI_BYTES : MTI_BYTES + BITMAP_CHARS]
    # Keyed by what the primary bitmap says (its bit 1), so that a malformed secondary
    # bitmap never poisons the entry of a good primary one.
    if len(primary) == BITMAP_CHARS and primary[0] in _BIT_ONE_SET:
        _bounded_put(_primary_plans, primary, _NEEDS_SECONDARY, plans_cached_max)
        key, start = data[MTI_BYTES : MTI_BYTES + 2 * BITMAP_CHARS], MTI_BYTES + 2 * BITMAP_CHARS
        cache = _full_plans
    else:
        key, start, cache = primary, MTI_BYTES + BITMAP_CHARS, _primary_plans
    numbers = codec_fallback.bitmap_fields(data)
    keys = [str(number) for number in sorted(numbers or ())]
    if (
        numbers is None
        or not numbers <= DATA_FIELDS
        or not codec_fallback.mac_placement_ok(set(keys))
    ):
        return _bounded_put(cache, key, _INVALID, plans_cached_max)
    fields = tuple(_FIELDS[key] for key in keys)
    steps: list[tuple[int, int, Mapping[bytes, int]]] = []
    gap = 0
    for spec in fields:
        if spec.width:
            steps.append((gap, spec.width, spec.prefixes))
            gap = 0
        else:
            gap += spec.max_len
    plan = _DecodePlan(
        keys=tuple(keys),
        fields=fields,
        start=start,
        steps=tuple(steps),
        encodings=(*(spec.encoding for spec in fields), "ascii"),
        late_checks=tuple(spec.key for spec in fields if not spec.class_bit),
    )
    return _bounded_put(cache, key, plan, plans_cached_max)


def _fast_fields(data: bytes) -> tuple[str, dict[str, str]] | None:
    """(MTI, fields) when ``data`` is certainly valid, None when the exact path must decide."""
    plan = _primary_plans.get(data[4:20])
    if plan is None:
        plan = _plan_for(data)
    elif plan is _NEEDS_SECONDARY:
        plan = _full_plans.get(data[4:36]) or _plan_for(data)
    if plan is _INVALID:
        return None
    position = plan.start
    lengths = []
    for gap, width, prefixes in plan.steps:
        position += gap
        length = prefixes.get(data[position : position + width])
        if length is None:
            return None
        position += width + length
        lengths.append(length)
    key = tuple(lengths)
    shape = plan.shapes.get(key) or plan.shape(key)
    if len(data) != shape.total:
        return None
    required = shape.required
    if int.from_bytes(data.translate(_CLASS_MASKS), "big") & required != required:
        return None
    if data.isascii():
        values = shape.slices(data.decode("ascii"))
    else:
        try:
            values = tuple(
                chunk.decode(encoding)
                for chunk, encoding in zip(shape.slices(data), plan.encodings, strict=True)
            )
        except UnicodeDecodeError:
            return None
        for key_, value in zip(plan.keys, values, strict=False):
            if not value.isascii() and not content_ok(key_, value):
                return None
    # zip stops at the shorter: the MTI, the last value, is left out (strict= costs 0.2 µs).
    fields = dict(zip(plan.keys, values))  # noqa: B905
    for late in plan.late_checks:
        if not content_ok(late, fields[late]):
            return None
    return values[-1], fields


def decode(frame: bytes) -> Message:
    """Decode one message (the frame payload, without the length prefix).

    Same result as the previous codec for every input: the :class:`Message`, or the
    :class:`MessageFormatError` with the same reason and salvaged MTI, STAN and fields.
    """
    if frame.__class__ is not bytes:
        if not isinstance(frame, (bytes, bytearray)):
            raise TypeError(f"message must be bytes, not {type(frame).__name__}")
        frame = bytes(frame)
    decoded = _fast_fields(frame)
    if decoded is None:
        decoded = codec_fallback.decode_fields(frame)
    return trusted_message(decoded[0], MappingProxyType(decoded[1]))


def peek_field(data: bytes, field: str) -> str | None:
    """One field of an encoded message (None if absent or invalid), never raising on junk.

    A valid message is decoded on the fast path; otherwise the fields are walked in
    order up to ``field``, stopping where a length becomes unknowable.
    """
    last = int(field)
    if data.__class__ is bytes:
        decoded = _fast_fields(data)
        if decoded is not None:
            return decoded[1].get(field)
    return codec_fallback.walk_fields(data, last=last).get(field)


# ---------------------------------------------------------------------------
# Encoding.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EncodeShape:
    total: int  # characters without the MAC value
    required: int
    inserts: tuple[tuple[int, str], ...]  # (index in the parts list, length prefix)


@dataclass(slots=True)
class _EncodePlan:
    """What a set of field keys decides: order, bitmap, MAC field."""

    values: Callable[[Mapping[str, str]], tuple[Any, ...]]  # values in field order
    fields: tuple[_Field, ...]
    bitmap: str
    shapes: dict[tuple[int, ...], _EncodeShape | None] = field(default_factory=dict)

    def shape(self, lengths: tuple[int, ...]) -> _EncodeShape | None:
        """Layout for these value lengths, None when a length is not allowed (cached)."""
        if len(lengths) != len(self.fields):
            return None
        required = bytearray(b"\x01" * MTI_BYTES + b"\x00" * len(self.bitmap))
        inserts: list[tuple[int, str]] = []
        for index, (spec, length) in enumerate(zip(self.fields, lengths, strict=True)):
            if spec.width:
                if length > spec.max_len:
                    return _ShapeBudget.put(self.shapes, lengths, None)
                # parts = [mti, bitmap, values...]; earlier inserts shift later ones by one
                inserts.append((2 + index + len(inserts), f"{length:0{spec.width}d}"))
                required += b"\x00" * spec.width
            elif length != spec.max_len:
                return _ShapeBudget.put(self.shapes, lengths, None)
            required += bytes([spec.class_bit]) * length
        shape = _EncodeShape(len(required), int.from_bytes(required, "big"), tuple(inserts))
        return _ShapeBudget.put(self.shapes, lengths, shape)


_encode_plans: dict[tuple[tuple[str, ...], bool], _EncodePlan | None] = {}
_NO_ENCODE_PLAN: Final = _EncodePlan(lambda fields: (), (), "")  # "not cached yet" markers
_NO_ENCODE_SHAPE: Final = _EncodeShape(0, 0, ())


def _encode_plan(keys: tuple[str, ...], with_mac: bool) -> _EncodePlan | None:
    """The plan for these keys, None when they are not a legal message (cached)."""
    if not all(key.__class__ is str and key in _FIELDS for key in keys):
        return _bounded_put(_encode_plans, (keys, with_mac), None, plans_cached_max)
    if with_mac and (MAC_FIELD_PRIMARY in keys or MAC_FIELD_SECONDARY in keys):
        return _bounded_put(_encode_plans, (keys, with_mac), None, plans_cached_max)
    ordered = sorted(keys, key=int)
    fields = tuple(_FIELDS[key] for key in ordered)
    numbers = [spec.number for spec in fields]
    if with_mac:
        numbers.append(int(mac_field_for(keys)))
    plan = _EncodePlan(
        values=_tuple_getter(ordered),
        fields=fields,
        bitmap=codec_fallback.bitmap_text(sorted(numbers)),
    )
    late = any(not spec.class_bit for spec in fields)
    return _bounded_put(_encode_plans, (keys, with_mac), None if late else plan, plans_cached_max)


def _fast_encode(mti: str, fields: Mapping[str, str], with_mac: bool) -> bytes | None:
    """The encoded message (without the MAC value when ``with_mac``), or None: exact path."""
    try:
        keys = tuple(fields)
        plan = _encode_plans.get((keys, with_mac), _NO_ENCODE_PLAN)
        if plan is _NO_ENCODE_PLAN:
            plan = _encode_plan(keys, with_mac)
        if plan is None:
            return None
        values = plan.values(fields)
        lengths = tuple(map(len, values))
        shape = plan.shapes.get(lengths, _NO_ENCODE_SHAPE)
        if shape is _NO_ENCODE_SHAPE:
            shape = plan.shape(lengths)
        if shape is None:
            return None
        parts = [mti, plan.bitmap, *values]
        for index, prefix in shape.inserts:
            parts.insert(index, prefix)
        text = "".join(parts)
    except Exception:
        # A value that is not a str, a mapping that is not one...: the exact path raises
        # what the previous codec raised.
        return None
    if not text.isascii():
        return _encode_non_ascii(plan, mti, values)
    if len(text) != shape.total:
        return None
    encoded = text.encode("ascii")
    required = shape.required
    if int.from_bytes(encoded.translate(_CLASS_MASKS), "big") & required != required:
        return None
    return encoded


def _encode_non_ascii(plan: _EncodePlan, mti: str, values: tuple[str, ...]) -> bytes | None:
    """:func:`_fast_encode` when a UTF-8 field holds non-ASCII text: lengths count bytes."""
    try:
        head = mti.encode("ascii")
        chunks = [
            value.encode(spec.encoding) for value, spec in zip(values, plan.fields, strict=True)
        ]
    except UnicodeEncodeError:
        return None
    for value, spec in zip(values, plan.fields, strict=True):
        if not value.isascii() and not content_ok(spec.key, value):
            return None  # the class mask lets every non-ASCII byte pass
    shape = plan.shapes.get(lengths := tuple(map(len, chunks)), _NO_ENCODE_SHAPE)
    if shape is _NO_ENCODE_SHAPE:
        shape = plan.shape(lengths)
    if shape is None:
        return None
    parts = [head, plan.bitmap.encode("ascii"), *chunks]
    for index, prefix in shape.inserts:
        parts.insert(index, prefix.encode("ascii"))
    encoded = b"".join(parts)
    required = shape.required
    if len(encoded) != shape.total or (
        int.from_bytes(encoded.translate(_CLASS_MASKS), "big") & required != required
    ):
        return None
    return encoded


def encode(mti: str, fields: Mapping[str, str]) -> bytes:
    """Encode a message without MAC; :class:`MessageBuildError` when the dialect forbids it."""
    encoded = _fast_encode(mti, fields, False)
    if encoded is None:
        encoded = codec_fallback.encode_unmacced(mti, fields, with_mac_field=False)
    return encoded


def mac_input(mti: str, fields: Mapping[str, str]) -> bytes:
    """What the MAC of this message covers (spec 8): the encoded message up to the MAC
    field, its bitmap already flagging the MAC field (64, or 128 with a secondary bitmap).

    Pass the MAC of these bytes to :func:`with_mac` to get the message.
    """
    encoded = _fast_encode(mti, fields, True)
    if encoded is None:
        encoded = codec_fallback.encode_unmacced(mti, fields, with_mac_field=True)[
            :-MAC_LENGTH_CHARS
        ]
    return encoded


_mac_text_ok: Final = CONTENT_PATTERNS[SPEC[MAC_FIELD_PRIMARY]["content"]].fullmatch


def with_mac(mac_input_bytes: bytes, mac_hex: str) -> bytes:
    """The message whose :func:`mac_input` is ``mac_input_bytes``, MAC value appended."""
    mac_text = mac_hex.upper()
    if len(mac_text) != MAC_LENGTH_CHARS or _mac_text_ok(mac_text) is None:
        raise MessageBuildError("the MAC function must return 16 hex characters")
    return mac_input_bytes + mac_text.encode("ascii")


def encode_with_mac(mti: str, fields: Mapping[str, str], mac: MacFunction) -> bytes:
    """Encode with a MAC (field 64, or 128 when a secondary bitmap is needed; spec 8).

    ``mac`` gets :func:`mac_input` and returns 16 hex characters.
    """
    head = mac_input(mti, fields)
    return with_mac(head, mac(head))


async def encode_with_async_mac(
    mti: str, fields: Mapping[str, str], mac: AsyncMacFunction
) -> bytes:
    """:func:`encode_with_mac` for an ``async`` MAC function (an HSM call)."""
    head = mac_input(mti, fields)
    return with_mac(head, await mac(head))


def mac_span(frame: bytes) -> tuple[bytes, str]:
    """(what the MAC covers, the MAC) of a received message: the MAC field is always last."""
    if len(frame) < MTI_BYTES + BITMAP_CHARS + MAC_LENGTH_CHARS:
        raise MessageFormatError("message too short to carry a MAC")
    return (
        bytes(frame[:-MAC_LENGTH_CHARS]),
        bytes(frame[-MAC_LENGTH_CHARS:]).decode("ascii", errors="replace"),
    )
