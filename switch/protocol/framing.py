"""Length-prefixed framing (spec 1), sans-I/O.

``binary2`` (the spec): a 2-byte unsigned big-endian length, then the message.
``ascii4`` (an option some terminal fleets use): 4 ASCII digits, then the message.
A length above ``max_bytes`` raises :class:`FrameTooLarge` (spec 1: close).
A zero length yields an empty frame; the server treats it as a keep-alive.
"""

from __future__ import annotations

from typing import Final, Literal

from switch.protocol.errors import FrameTooLarge, FramingError

Framing = Literal["binary2", "ascii4"]
FRAMINGS: Final[tuple[Framing, ...]] = ("binary2", "ascii4")
FRAME_SIZE_BYTES_MAX: Final = 4096  # spec 1
HEADER_BYTES: Final[dict[str, int]] = {"binary2": 2, "ascii4": 4}
# The decoder never buffers more than this many maximum-size frames: a reader
# that drains frames before reading again never comes close.
BUFFERED_FRAMES_MAX: Final = 16


def header_size(framing: str) -> int:
    try:
        return HEADER_BYTES[framing]
    except KeyError:
        raise ValueError(f"unknown framing {framing!r}; use one of {FRAMINGS}") from None


def encode_frame(payload: bytes, framing: str = "binary2") -> bytes:
    """Prefix ``payload`` with its length."""
    size = len(payload)
    if framing == "binary2":
        if size > 0xFFFF:
            raise FrameTooLarge(size, 0xFFFF)
        return size.to_bytes(2, "big") + payload
    if framing == "ascii4":
        if size > 9999:
            raise FrameTooLarge(size, 9999)
        return b"%04d" % size + payload
    header_size(framing)  # raises for an unknown framing
    raise AssertionError("unreachable")


class FrameDecoder:
    """Bytes in (:meth:`receive_data`), whole message payloads out (:meth:`next_frame`)."""

    def __init__(self, max_bytes: int = FRAME_SIZE_BYTES_MAX, framing: str = "binary2") -> None:
        self._header = header_size(framing)
        self._framing = framing
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._buffer_bytes_max = BUFFERED_FRAMES_MAX * (max_bytes + self._header)
        self._failed: FramingError | None = None

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray) -> None:
        """Append received bytes; raises :class:`FramingError` past the buffer limit."""
        if len(self._buffer) + len(data) > self._buffer_bytes_max:
            raise FramingError(
                f"more than {self._buffer_bytes_max} bytes buffered without being read"
            )
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete payload, or None until more data arrives.

        After a :class:`FramingError` the stream cannot be resynchronised, so the
        same error is raised again on every later call.
        """
        if self._failed is not None:
            raise self._failed
        if len(self._buffer) < self._header:
            return None
        try:
            size = self._read_length()
        except FramingError as exc:
            self._failed = exc
            raise
        end = self._header + size
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[self._header : end])
        del self._buffer[:end]
        return payload

    def _read_length(self) -> int:
        header = bytes(self._buffer[: self._header])
        if self._framing == "binary2":
            size = int.from_bytes(header, "big")
        elif header.isdigit() and header.isascii():
            size = int(header)
        else:
            raise FramingError("ASCII length prefix is not 4 digits")
        if size > self.max_bytes:
            raise FrameTooLarge(size, self.max_bytes)
        return size
