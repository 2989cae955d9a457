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

One private module per job (``docs/codec.md``, "Layout"):

- :mod:`._tables`: per-field facts and the byte-to-class table, read from ``SPEC``;
- :mod:`._plans`: plans and shapes for decoding and encoding, their bounded caches;
- :mod:`._decoding`: ``decode``, ``peek_field``, ``mac_span`` (bytes in);
- :mod:`._encoding`: ``encode``, ``mac_input`` / ``with_mac``, ``encode_with_mac`` (bytes out).

This module only re-exports them: callers get the very same function objects.
"""

from switch.protocol.fastcodec._decoding import decode, mac_span, peek_field
from switch.protocol.fastcodec._encoding import (
    AsyncMacFunction,
    MacFunction,
    encode,
    encode_with_async_mac,
    encode_with_mac,
    mac_input,
    with_mac,
)

__all__ = [
    "AsyncMacFunction",
    "MacFunction",
    "decode",
    "encode",
    "encode_with_async_mac",
    "encode_with_mac",
    "mac_input",
    "mac_span",
    "peek_field",
    "with_mac",
]
