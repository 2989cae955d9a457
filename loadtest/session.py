"""One load-test terminal's connection: send requests, match answers by STAN.

Field 41 is fixed per connection, so the STAN (field 11) alone matches a
response to its request (spec 1: up to 8 outstanding, answers in any order).
A reader task decodes every frame and wakes the waiting request.
"""

from __future__ import annotations

import random

import trio

from loadtest.wire import WireFormatError, decode_message, frame, take_frames

inflight_per_connection_max = 8  # spec 1
receive_bytes_max = 65_536
stan_max = 999_999


class RequestFailed(Exception):
    """A request got no usable answer; ``outcome`` names why (a stats error outcome)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class _Waiter:
    __slots__ = ("event", "fields", "mti", "raw")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.raw = b""
        self.mti = b""
        self.fields: dict[int, bytes] = {}


class Session:
    """A connected terminal: request/response over one TCP stream."""

    def __init__(self, stream: trio.SocketStream, rng: random.Random) -> None:
        self.stream = stream
        self.slots = trio.Semaphore(inflight_per_connection_max)
        self._send_lock = trio.StrictFIFOLock()
        self._pending: dict[bytes, _Waiter] = {}
        # Start STANs at a random point so reruns against the same database do not
        # repeat a message key (41, 11, 7, 32) within one second.
        self._stan = rng.randrange(1, stan_max)
        self.closed = False

    def next_stan(self) -> bytes:
        """Spec 2: +1 per message, 999999 wraps to 000001."""
        self._stan = 1 if self._stan >= stan_max else self._stan + 1
        return b"%06d" % self._stan

    async def read_responses(self) -> None:
        """Run until the connection ends; wakes waiters as their answers arrive."""
        buffer = bytearray()
        try:
            while True:
                data = await self.stream.receive_some(receive_bytes_max)
                if not data:
                    break
                buffer += data
                for payload in take_frames(buffer):
                    self._deliver(payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, WireFormatError):
            pass
        finally:
            self.closed = True
            for waiter in self._pending.values():
                waiter.event.set()  # wakes with an empty answer: disconnected
            self._pending.clear()

    def _deliver(self, payload: bytes) -> None:
        try:
            mti, fields = decode_message(payload)
        except WireFormatError:
            return  # cannot be matched; its request times out and counts as an error
        waiter = self._pending.pop(fields.get(11, b""), None)
        if waiter is None:
            return  # a late answer to a request that already timed out
        waiter.raw, waiter.mti, waiter.fields = payload, mti, fields
        waiter.event.set()

    async def exchange(
        self, stan: bytes, request: bytes, timeout_s: float
    ) -> tuple[bytes, dict[int, bytes], bytes]:
        """Send ``request`` (STAN ``stan``) and wait for its answer: (MTI, fields, raw)."""
        if self.closed:
            raise RequestFailed("disconnected")
        waiter = _Waiter()
        self._pending[stan] = waiter
        try:
            async with self._send_lock:
                await self.stream.send_all(frame(request))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._pending.pop(stan, None)
            self.closed = True
            raise RequestFailed("disconnected") from None
        with trio.move_on_after(timeout_s):
            await waiter.event.wait()
        if not waiter.event.is_set():
            self._pending.pop(stan, None)
            raise RequestFailed("timeout")
        if not waiter.raw:
            raise RequestFailed("disconnected")
        return waiter.mti, waiter.fields, waiter.raw

    async def aclose(self) -> None:
        self.closed = True
        await trio.aclose_forcefully(self.stream)
