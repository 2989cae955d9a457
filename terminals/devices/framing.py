"""The part every serial frame parser shares: a bounded receive buffer and the scan loop.

Subclasses say how one event is recognised at the start of the buffer (`_parse_head`); this base
class feeds them bytes, throws away garbage between frames (counting it), and enforces the hard
buffer limit, so a noisy or hostile line can never make a parser grow without bound.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from terminals.devices.errors import FrameTooLarge
from terminals.devices.events import NEED_DATA, Event, _NeedData

# Most bytes a link layer reads from its transport at once. A parser's buffer limit is its largest
# frame plus this, so a link that drains events after every read can never overflow it.
receive_chunk_bytes_max = 4096
# A frame whose bytes stop arriving for this long is abandoned (a UART's inter-character
# timeout; at 9600 baud a byte takes ~1 ms). Without it, a corrupted length field could make a
# receiver swallow the sender's retries while it waits for bytes that never come.
inter_character_timeout_seconds = 0.1


class FrameParser(ABC):
    """Bytes in (`receive_data`), events out (`next_event` until it returns NEED_DATA)."""

    def __init__(self, *, buffer_size_bytes_max: int) -> None:
        self._buffer = bytearray()
        self._buffer_size_bytes_max = buffer_size_bytes_max
        self.garbage_bytes_discarded = 0

    def receive_data(self, data: bytes) -> None:
        """Append received bytes; call `next_event` until NEED_DATA before the next call.

        Raises FrameTooLarge when the caller lets unparsed input exceed the buffer limit.
        """
        if len(self._buffer) + len(data) > self._buffer_size_bytes_max:
            raise FrameTooLarge(
                f"receive buffer would hold {len(self._buffer) + len(data)} bytes, "
                f"limit {self._buffer_size_bytes_max}"
            )
        self._buffer += data

    def next_event(self) -> Event | _NeedData:
        """The next complete event, or NEED_DATA when the buffer holds no complete one."""
        while self._buffer:
            event = self._parse_head()
            if event is not None:
                return event
        return NEED_DATA

    def events(self) -> list[Event]:
        """Every complete event now available (convenience for tests and emulators)."""
        found: list[Event] = []
        while not isinstance(event := self.next_event(), _NeedData):
            found.append(event)
        return found

    def abandon_partial_frame(self) -> int:
        """Forget a half-received frame (the inter-character timeout of a real UART link).

        Called by a link layer when its response deadline passes, so a frame cut short by line
        trouble cannot swallow the retry that follows. Returns the bytes dropped.
        """
        dropped = len(self._buffer)
        self.garbage_bytes_discarded += dropped
        self._buffer.clear()
        return dropped

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet turned into events."""
        return len(self._buffer)

    def _discard(self, count: int) -> None:
        """Drop `count` bytes of garbage from the head of the buffer."""
        self.garbage_bytes_discarded += count
        del self._buffer[:count]

    def _consume(self, count: int) -> bytes:
        """Remove and return `count` bytes that formed an event."""
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken

    @abstractmethod
    def _parse_head(self) -> Event | _NeedData | None:
        """Look at the head of the buffer: return an event (consuming its bytes), NEED_DATA when
        the head is an incomplete frame, or None after discarding garbage (the loop retries)."""
