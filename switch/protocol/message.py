"""Decode and encode whole messages of the dialect, and the typed :class:`Message` view.

The public entry points every layer uses. Since issue 10 they run on the table-driven
codec (:mod:`switch.protocol.fastcodec`, a few µs a message); its exact fallback
(:mod:`switch.protocol.codec_fallback`) keeps the behaviour of the pyiso8583-based
codec this module used to hold (now ``tests/protocol/reference_codec.py``, the tests'
independent cross-check, not part of the package) for every input:

Decoding is strict where pyiso8583 is lenient (it checks lengths, not characters):
upper-case hex bitmaps, digit-only length prefixes, each field's character class
(:data:`switch.protocol.dialect.SPEC` ``content``), only fields of the dialect,
and the MAC, when present, last and in the right field (spec 8). Every failure is
a :class:`MessageFormatError` carrying the MTI, STAN and readable fields it could
salvage, so the server can answer ``30``.
"""

from __future__ import annotations

from collections.abc import Mapping

from switch.protocol import fastcodec
from switch.protocol.codec_fallback import salvage_fields
from switch.protocol.fastcodec import AsyncMacFunction, MacFunction
from switch.protocol.message_view import Message

__all__ = [
    "AsyncMacFunction",
    "MacFunction",
    "Message",
    "decode_message",
    "encode_message",
    "encode_message_async_mac",
    "mac_input_of",
    "mac_of",
    "peek_field",
    "salvage_fields",
]

#: Decode one message (the frame payload, without the length prefix).
decode_message = fastcodec.decode

#: One field of an encoded message, reading no further than needed (None if absent or
#: invalid); the server uses it to label metrics by field 39.
peek_field = fastcodec.peek_field


def encode_message(mti: str, fields: Mapping[str, str], *, mac: MacFunction | None = None) -> bytes:
    """Encode a message; with ``mac`` add the MAC field and fill it with ``mac(mac_input)``.

    ``mac_input`` is the encoded message up to the MAC field, with the bitmap
    already flagging the MAC field (spec 8): ``encoded[:-16]``.
    """
    if mac is None:
        return fastcodec.encode(mti, fields)
    return fastcodec.encode_with_mac(mti, fields, mac)


async def encode_message_async_mac(
    mti: str, fields: Mapping[str, str], *, mac: AsyncMacFunction
) -> bytes:
    """:func:`encode_message` for an ``async`` MAC function (an HSM call)."""
    head = fastcodec.mac_input(mti, fields)
    return fastcodec.with_mac(head, await mac(head))


def mac_input_of(raw: bytes) -> bytes:
    """The bytes a received message's MAC covers: everything before the last 16 characters."""
    return fastcodec.mac_span(raw)[0]


def mac_of(raw: bytes) -> str:
    """The MAC of a received message: its last 16 characters (the MAC field is always last)."""
    return fastcodec.mac_span(raw)[1]
