"""Typed protocol errors.

Two kinds, as in h11: the remote side broke the protocol (:class:`FramingError`,
:class:`MessageFormatError`: the server answers ``30`` or closes the
connection), or the local side tried to build something the dialect forbids
(:class:`MessageBuildError`: a bug in our own code, never the terminal's fault).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class ProtocolError(Exception):
    """Base of every error raised by :mod:`switch.protocol`."""


class FramingError(ProtocolError):
    """The length prefix is unreadable or the byte stream cannot be split into messages.

    The connection cannot be resynchronised after this: the server closes it.
    """


class FrameTooLarge(FramingError):
    """A length prefix announced more than the maximum message size (spec 1: close)."""

    def __init__(self, length: int, max_bytes: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the maximum of {max_bytes}")
        self.length = length
        self.max_bytes = max_bytes


class MessageFormatError(ProtocolError):
    """A received message does not follow the dialect (spec 6: response code ``30``).

    ``mti`` and ``stan`` are set when they could be read, so the server can
    answer ``30``; ``fields`` holds the other fields that were read and are
    valid (for echoing in that answer). Otherwise the connection is closed.
    """

    #: The response code a switch answers this error with (spec 6).
    response_code_hint = "30"

    def __init__(
        self,
        reason: str,
        *,
        mti: str | None = None,
        stan: str | None = None,
        fields: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.mti = mti
        self.stan = stan
        self.field = field
        self.fields: Mapping[str, str] = MappingProxyType(dict(fields or {}))


class MessageBuildError(ProtocolError, ValueError):
    """Our own code asked to encode a message the dialect does not allow."""
