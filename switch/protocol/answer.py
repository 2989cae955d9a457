"""What a request handler gives back: the encoded response and its field 39, typed.

The authorization engine decides field 39 itself, so it hands it over with the bytes and the
server counts the answer by code without decoding it again. A handler that only has bytes
(a plug-in's, the core's own ``30``/``58``) may return them bare: :func:`response_code_of`
then reads field 39 from the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.protocol.message import peek_field


@dataclass(frozen=True, slots=True)
class Answer:
    code: str | None  # field 39 as sent (None: the response has none)
    payload: bytes  # the encoded message, MAC included


Reply = Answer | bytes | None  # what a handler returns; None: nothing to send


def payload_of(reply: Reply) -> bytes | None:
    """The bytes to frame and write."""
    return reply.payload if isinstance(reply, Answer) else reply


def response_code_of(reply: Reply) -> str | None:
    """Field 39 of a reply: carried by an :class:`Answer`, else read from the bytes."""
    if reply is None:
        return None
    if isinstance(reply, Answer):
        return reply.code
    return peek_field(reply, "39")
