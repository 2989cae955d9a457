"""The write side of one server connection: responses coalesced into as few writes as possible.

Each request task hands its framed response to :meth:`Outbox.send`. If no write
is in progress the task writes everything queued so far in one ``send_all``;
otherwise its frame joins the queue and the task waits until the writer has
flushed it. Under load, several responses leave in one system call; a task
still returns only once its response is on the wire, so the per-connection
in-flight limit bounds the queue too.
"""

from __future__ import annotations

from typing import Final

import trio

# A peer that does not read its responses for this long is disconnected.
WRITE_TIMEOUT_S: Final = 10.0


class WriteFailed(Exception):
    """The peer is gone or did not read in time: the connection must close."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Outbox:
    """Coalescing writer over a Trio stream (one per connection)."""

    def __init__(
        self, stream: trio.abc.SendStream, *, write_timeout_s: float | None = WRITE_TIMEOUT_S
    ) -> None:
        """``write_timeout_s=None``: no cancel scope per write; the owner watches
        :attr:`write_started_at` instead (the server's watchdog does, once for all
        connections, which is far cheaper than a scope per response)."""
        self._stream = stream
        self._write_timeout_s = write_timeout_s
        self.write_started_at: float | None = None
        self._queued: list[bytes] = []
        self._queued_seq = 0  # sequence number of the last frame queued
        self._flushed_seq = 0  # ... and of the last frame written
        self._writing = False
        self._flushed = trio.Event()
        self._failure: WriteFailed | None = None

    async def send(self, frame: bytes) -> None:
        """Return once ``frame`` is written; raise :class:`WriteFailed` if it cannot be."""
        if self._failure is not None:
            raise self._failure
        self._queued.append(frame)
        self._queued_seq += 1
        mine = self._queued_seq
        if self._writing:
            while self._flushed_seq < mine and self._failure is None:
                await self._flushed.wait()
        else:
            await self._write_all()
        if self._failure is not None and self._flushed_seq < mine:
            raise self._failure

    async def _write_all(self) -> None:
        self._writing = True
        try:
            while self._queued:
                batch, upto = b"".join(self._queued), self._queued_seq
                self._queued.clear()
                await self._write(batch)
                self._flushed_seq = upto
                self._wake_waiters()
        except BaseException as exc:  # cancelled or failed: nobody may wait forever
            if self._failure is None:
                self._failure = (
                    exc if isinstance(exc, WriteFailed) else WriteFailed("writer cancelled")
                )
            raise
        finally:
            self._writing = False
            self._wake_waiters()

    async def _write(self, data: bytes) -> None:
        if self._write_timeout_s is None:
            self.write_started_at = trio.current_time()
            try:
                await self._send(data)
            finally:
                self.write_started_at = None
            return
        with trio.move_on_after(self._write_timeout_s):
            await self._send(data)
            return
        raise WriteFailed("write timeout")

    async def _send(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise WriteFailed(f"peer gone: {type(exc).__name__}") from exc

    def _wake_waiters(self) -> None:
        flushed, self._flushed = self._flushed, trio.Event()
        flushed.set()
