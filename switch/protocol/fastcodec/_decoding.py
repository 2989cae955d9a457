"""Decoding on the fast path: bytes in, a :class:`Message` or the exact path's verdict out.

Why apart: this is the code every request runs; it only looks plans and shapes up
(:mod:`._plans`) and hands anything it is not sure of to
:mod:`switch.protocol.codec_fallback`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from switch.protocol import codec_fallback
from switch.protocol.dialect import MAC_LENGTH_CHARS, content_ok
from switch.protocol.errors import MessageFormatError
from switch.protocol.fastcodec import _plans
from switch.protocol.fastcodec._plans import _INVALID, _NEEDS_SECONDARY, _plan_for
from switch.protocol.fastcodec._tables import _CLASS_MASKS, BITMAP_CHARS, MTI_BYTES
from switch.protocol.message_view import Message, trusted_message

# The same dicts as in _plans, bound by assignment rather than `from ... import`: CPython
# compiles `name.get(...)` on an imported name as an attribute load that makes a bound
# method on every message, and as LOAD_METHOD (no allocation) on any other global.
_primary_plans: Final = _plans._primary_plans
_full_plans: Final = _plans._full_plans


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


def mac_span(frame: bytes) -> tuple[bytes, str]:
    """(what the MAC covers, the MAC) of a received message: the MAC field is always last."""
    if len(frame) < MTI_BYTES + BITMAP_CHARS + MAC_LENGTH_CHARS:
        raise MessageFormatError("message too short to carry a MAC")
    return (
        bytes(frame[:-MAC_LENGTH_CHARS]),
        bytes(frame[-MAC_LENGTH_CHARS:]).decode("ascii", errors="replace"),
    )
