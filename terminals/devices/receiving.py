"""Reading events from a transport through a parser, with the inter-character timeout.

Shared by every driver and emulator link so they all treat a stalled half-frame the same way.
"""

from __future__ import annotations

import math

import trio

from terminals.devices.events import Control, CorruptFrame, Event, Frame
from terminals.devices.framing import (
    FrameParser,
    inter_character_timeout_seconds,
    receive_chunk_bytes_max,
)
from terminals.transport.base import Transport


async def receive_event(
    transport: Transport, parser: FrameParser, *, timeout_seconds: float = math.inf
) -> Event | None:
    """The next event, or None when `timeout_seconds` pass first. A partial frame that stalls
    for the inter-character timeout is dropped and reported as a CorruptFrame (so the link
    answers NAK and the sender retries at once instead of after its own timeout)."""
    with trio.move_on_after(max(timeout_seconds, 0.0)):
        while True:
            event = parser.next_event()
            if isinstance(event, Frame | Control | CorruptFrame):
                return event
            if parser.buffered_bytes == 0:
                parser.receive_data(await transport.receive_some(receive_chunk_bytes_max))
                continue
            with trio.move_on_after(inter_character_timeout_seconds) as stall:
                parser.receive_data(await transport.receive_some(receive_chunk_bytes_max))
            if stall.cancelled_caught:
                parser.abandon_partial_frame()
                return CorruptFrame("incomplete frame abandoned (inter-character timeout)")
    return None
