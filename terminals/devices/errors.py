"""Typed errors of the device protocols.

Like h11, two kinds: the remote side broke the protocol (`RemoteProtocolError`: garbage we could
not make sense of, a reply we did not expect) or we asked for something the protocol cannot say
(`LocalProtocolError`: a value out of range for a field). Checksum failures are not exceptions:
the parsers report them as `CorruptFrame` events so the link layer can answer NAK and carry on.
"""

from __future__ import annotations


class DeviceProtocolError(Exception):
    """Base of every device protocol error."""


class LocalProtocolError(DeviceProtocolError):
    """This side tried to encode something the protocol cannot carry (a bug in the caller)."""


class RemoteProtocolError(DeviceProtocolError):
    """The peer sent something well framed but meaningless (unknown command, bad field)."""


class FrameTooLarge(RemoteProtocolError):
    """A frame announced or reached more bytes than the protocol's buffer limit."""
