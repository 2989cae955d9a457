"""Helpers to run a device emulator and talk to it through a driver, over an in-memory line
(fast unit tests) or a real pty pair opened with pyserial (integration tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

from terminals.transport import Transport, TransportClosed, memory_transport_pair, open_pty_pair

Serve = Callable[[Transport], Awaitable[None]]


async def _serve_quietly(serve: Serve, transport: Transport) -> None:
    try:
        await serve(transport)
    except TransportClosed:
        pass


@asynccontextmanager
async def _served(
    serve: Serve,
    host: Transport,
    device: Transport,
    settle: Callable[[], Awaitable[object]],
    close_after: Transport | None = None,
) -> AsyncIterator[Transport]:
    """Run `serve` on `device` while the body talks to `host`; `settle` lets it start."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve_quietly, serve, device)
        await settle()
        try:
            yield host
        finally:
            # Close first, then cancel: an await after cancel() would raise Cancelled here and
            # the nursery would swallow it together with the body's own exception.
            with trio.CancelScope(shield=True):
                await host.aclose()
            nursery.cancel_scope.cancel()
            if close_after is not None:
                await close_after.aclose()


@asynccontextmanager
async def memory_link(serve: Serve) -> AsyncIterator[Transport]:
    """Start `serve` on the device end of an in-memory line; yield the host end."""
    host, device = memory_transport_pair()
    async with _served(serve, host, device, trio.testing.wait_all_tasks_blocked) as linked:
        yield linked


@asynccontextmanager
async def pty_link(serve: Serve) -> AsyncIterator[Transport]:
    """Start `serve` on a pty master; yield the slave opened by path with pyserial."""
    pair = open_pty_pair()
    device = pair.device_transport()
    host = pair.open_driver_transport()
    pair.close_slave_keeper()
    async with _served(serve, host, device, trio.lowlevel.checkpoint, close_after=device) as linked:
        yield linked
