"""Decode and encode plans and shapes of the fast codec, and their bounded caches.

Why apart: a plan (what a bitmap or a set of field keys decides) and a shape (what
the variable lengths add) are built once and looked up on every message; building
them, and keeping every cache under its limit, is one job whichever way the bytes go.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from switch.protocol import codec_fallback
from switch.protocol.dialect import (
    DATA_FIELDS,
    MAC_FIELD_PRIMARY,
    MAC_FIELD_SECONDARY,
    mac_field_for,
)
from switch.protocol.fastcodec._tables import _FIELDS, BITMAP_CHARS, MTI_BYTES, _Field

# Bounds on the caches: an attacker choosing bitmaps or lengths at random only
# makes us rebuild entries (a few µs each), never grow memory without limit.
# Plans per cache (decode by primary bitmap, by both bitmaps, encode by keys):
plans_cached_max: Final = 2048
# Shapes over all plans (~1.5 kB each: slices and a class mask as big as a message);
# a real traffic mix needs a few hundred.
shapes_cached_max: Final = 8192

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
# Decode plans.
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


# ---------------------------------------------------------------------------
# Encode plans.
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
