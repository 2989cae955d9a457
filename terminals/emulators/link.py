"""Device side of the ACK/NAK link (card reader, dispenser).

For each good command frame: ACK it, let the device model act, send the reply frame and resend it
while the host NAKs it (3 times at most, as the real devices do). A corrupt frame gets a NAK. A
powered-off device reads and drops everything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

import trio

from terminals.devices.events import ACK, NAK, ControlCode, CorruptFrame, Event, Frame
from terminals.devices.framing import FrameParser
from terminals.devices.receiving import receive_event
from terminals.transport.base import Transport

# The host must ACK a reply this fast, or the device considers it delivered and moves on.
reply_ack_timeout_seconds = 0.5
# Resends of a reply the host NAKs.
reply_resends_max = 3

Handler = Callable[[bytes], Awaitable[bytes | None]]


class DeviceLink:
    """Serves one device model over one transport until the transport closes."""

    def __init__(
        self,
        transport: Transport,
        parser: FrameParser,
        encode_frame: Callable[[bytes], bytes],
        *,
        is_powered: Callable[[], bool],
    ) -> None:
        self._transport = transport
        self._parser = parser
        self._encode_frame = encode_frame
        self._is_powered = is_powered
        self._pending: deque[Event] = deque()
        self.frames_received = 0
        self.naks_sent = 0

    async def serve(self, handler: Handler) -> None:
        """Answer commands forever (returns only by raising TransportClosed or cancellation)."""
        while True:
            event = await self._next_event()
            if not self._is_powered():
                continue
            if isinstance(event, CorruptFrame):
                self.naks_sent += 1
                await self._transport.send_all(bytes([ControlCode.NAK]))
            elif isinstance(event, Frame):
                self.frames_received += 1
                await self._transport.send_all(bytes([ControlCode.ACK]))
                reply = await handler(event.text)
                if reply is not None and self._is_powered():
                    await self._send_reply(reply)

    async def _send_reply(self, text: bytes) -> None:
        frame = self._encode_frame(text)
        for _attempt in range(reply_resends_max + 1):
            await self._transport.send_all(frame)
            with trio.move_on_after(reply_ack_timeout_seconds):
                while True:
                    event = await self._next_event()
                    if event == ACK:
                        return
                    if event == NAK:
                        break
                    if isinstance(event, Frame | CorruptFrame):
                        # The host moved on (it timed out): handle its new frame next.
                        self._pending.append(event)
                        return

    async def _next_event(self) -> Event:
        if self._pending:
            return self._pending.popleft()
        event = await receive_event(self._transport, self._parser)
        assert event is not None  # no timeout given: only a frame or control byte ends the wait
        return event
