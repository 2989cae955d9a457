"""In-memory transport pair for unit tests, and a seeded line-noise wrapper.

The pair is Trio's `memory_stream_pair` (two one-way byte pipes) behind the `Transport`
interface, with one shared `ModemLines`. `NoisyTransport` corrupts outgoing bytes from a seeded
random generator, so NAK/retry paths are tested reproducibly.
"""

from __future__ import annotations

import random

import trio
import trio.testing

from terminals.transport.base import ModemLines, TransportClosed


class MemoryTransport:
    """One end of an in-memory serial line."""

    def __init__(self, stream: trio.abc.Stream, lines: ModemLines) -> None:
        self._stream = stream
        self.lines = lines

    async def send_all(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise TransportClosed("memory transport closed") from error

    async def receive_some(self, max_bytes: int) -> bytes:
        try:
            data = await self._stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise TransportClosed("memory transport closed") from error
        if not data:
            raise TransportClosed("peer closed the memory transport")
        return bytes(data)

    async def aclose(self) -> None:
        await self._stream.aclose()


def memory_transport_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """(host end, device end) of a fresh in-memory line."""
    host_stream, device_stream = trio.testing.memory_stream_pair()
    lines = ModemLines()
    return MemoryTransport(host_stream, lines), MemoryTransport(device_stream, lines)


class NoisyTransport:
    """Wraps a transport and flips one random bit in some of the chunks it sends."""

    def __init__(self, inner: MemoryTransport, *, seed: int, corrupt_probability: float) -> None:
        self._inner = inner
        self._random = random.Random(seed)
        self._corrupt_probability = corrupt_probability
        self.lines = inner.lines
        self.chunks_corrupted = 0

    async def send_all(self, data: bytes) -> None:
        if data and self._random.random() < self._corrupt_probability:
            noisy = bytearray(data)
            position = self._random.randrange(len(noisy))
            noisy[position] ^= 1 << self._random.randrange(8)
            data = bytes(noisy)
            self.chunks_corrupted += 1
        await self._inner.send_all(data)

    async def receive_some(self, max_bytes: int) -> bytes:
        return await self._inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._inner.aclose()
