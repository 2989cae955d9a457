"""Encoding on the fast path: a message in, its bytes (or what its MAC covers) out.

Why apart: this is the code every answer runs; it only looks plans and shapes up
(:mod:`._plans`) and hands anything it is not sure of to
:mod:`switch.protocol.codec_fallback`, errors included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from switch.protocol import codec_fallback
from switch.protocol.dialect import (
    CONTENT_PATTERNS,
    MAC_FIELD_PRIMARY,
    MAC_LENGTH_CHARS,
    SPEC,
    content_ok,
)
from switch.protocol.errors import MessageBuildError
from switch.protocol.fastcodec import _plans
from switch.protocol.fastcodec._plans import (
    _NO_ENCODE_PLAN,
    _NO_ENCODE_SHAPE,
    _encode_plan,
    _EncodePlan,
)
from switch.protocol.fastcodec._tables import _CLASS_MASKS

# The same dict as in _plans, bound by assignment so that `_encode_plans.get(...)` stays
# a LOAD_METHOD call (see _decoding: an imported name would make a bound method each time).
_encode_plans: Final = _plans._encode_plans

MacFunction = Callable[[bytes], str]
AsyncMacFunction = Callable[[bytes], Awaitable[str]]


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
