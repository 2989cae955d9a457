"""asyncpg under Trio: the one place that crosses into asyncio.

asyncpg speaks asyncio only. ``open_database`` opens a bridge
(:mod:`switch.db.bridges`: a private uvloop loop in a helper thread by default,
or trio-asyncio) with an asyncpg pool in it; ``Database`` methods run asyncpg
calls as asyncio coroutines there and return to Trio. For a multi-statement
transaction pass an asyncio coroutine function to
:meth:`Database.run` so the whole transaction crosses once (measured here: a
crossing costs ~100 us of CPU, a statement ~50-70 us; with trio-asyncio they cost
~250 us and ~200 us, see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import asyncpg
import trio

from switch.db.bridges import Bridge, open_bridge

P = ParamSpec("P")
T = TypeVar("T")


pool_connect_timeout_s = 30.0  # PostgreSQL starting up may take a while to accept
pool_close_timeout_s = 5.0  # then connections are terminated instead


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer (down, restarting, or past the call deadline)."""


_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionFailureError,
    # A connection lost mid-statement surfaces as these (e.g. the backend terminated or
    # PostgreSQL killed under load): the answer is 91, never 96 (issue 10).
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.QueryCanceledError,
)
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (*_TRANSIENT_ERRORS, trio.TooSlowError)


class Database:
    """A pooled PostgreSQL handle usable from Trio tasks."""

    def __init__(
        self, pool: asyncpg.Pool, dsn: str, call_timeout_s: float, bridge: Bridge
    ) -> None:
        self._pool = pool
        self._bridge = bridge
        self.dsn = dsn
        self.call_timeout_s = call_timeout_s

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @property
    def bridge(self) -> Bridge:
        """The asyncio bridge, for code that keeps its own connection (the NOTIFY listener)."""
        return self._bridge

    async def run(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        timeout_s: float | None = None,
    ) -> T:
        """Run ``fn(connection, *args)`` (an asyncio coroutine function) on a pooled connection.

        Fails with :class:`DatabaseUnavailable` when PostgreSQL is unreachable or
        the call passes its deadline; asyncpg's own SQL errors pass through.
        """
        async def in_asyncio() -> T:
            async with self._pool.acquire() as connection:
                return await fn(connection, *args)

        return await self._cross(in_asyncio(), timeout_s)

    async def _cross(self, coroutine: Awaitable[T], timeout_s: float | None) -> T:
        """Run an asyncio coroutine in the bridge under the call deadline, errors mapped."""
        deadline = self.call_timeout_s if timeout_s is None else timeout_s

        async def wrapped() -> T:
            return await coroutine

        try:
            with trio.fail_after(deadline):
                return await self._bridge.call(wrapped())
        except trio.TooSlowError as exc:
            raise DatabaseUnavailable(f"database call exceeded {deadline:.1f}s") from exc
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:
            raise DatabaseUnavailable("database call cancelled (pool closing)") from exc
        except _TRANSIENT_ERRORS as exc:
            raise DatabaseUnavailable(f"database unreachable: {type(exc).__name__}") from exc

    async def execute(self, query: str, *args: Any, timeout_s: float | None = None) -> str:
        async def call(connection: asyncpg.Connection) -> str:
            return str(await connection.execute(query, *args))

        return await self.run(call, timeout_s=timeout_s)

    async def fetch(self, query: str, *args: Any, timeout_s: float | None = None) -> list[Any]:
        async def call(connection: asyncpg.Connection) -> list[Any]:
            return list(await connection.fetch(query, *args))

        return await self.run(call, timeout_s=timeout_s)

    async def fetchrow(self, query: str, *args: Any, timeout_s: float | None = None) -> Any:
        async def call(connection: asyncpg.Connection) -> Any:
            return await connection.fetchrow(query, *args)

        return await self.run(call, timeout_s=timeout_s)

    async def fetchval(self, query: str, *args: Any, timeout_s: float | None = None) -> Any:
        async def call(connection: asyncpg.Connection) -> Any:
            return await connection.fetchval(query, *args)

        return await self.run(call, timeout_s=timeout_s)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """One PostgreSQL transaction as a ``Database``: every call made through the yielded
        handle runs on one pinned connection, committed when the block ends and rolled back
        when it raises. A change and its audit row go through one of these (issue 18), so a
        change whose audit row cannot be written does not happen."""
        connection = await self._cross(self._pool.acquire(), None)
        try:
            pinned = Transaction(self._pool, self.dsn, self.call_timeout_s, self._bridge,
                                 connection)
            async with pinned._block():
                yield pinned
        finally:
            with trio.CancelScope(shield=True):
                await self._cross(self._pool.release(connection), pool_close_timeout_s)

    async def ping(self, timeout_s: float = 1.0) -> bool:
        """True when PostgreSQL answers ``SELECT 1`` within ``timeout_s``."""
        try:
            return bool(await self.fetchval("SELECT 1", timeout_s=timeout_s) == 1)
        except (DatabaseUnavailable, asyncpg.PostgresError):
            return False


class Transaction(Database):
    """A ``Database`` bound to one connection inside an open transaction (see
    :meth:`Database.transaction`); ``transaction()`` on it opens a savepoint."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, call_timeout_s: float, bridge: Bridge,
                 connection: asyncpg.Connection) -> None:
        super().__init__(pool, dsn, call_timeout_s, bridge)
        self._connection = connection

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any,
                  timeout_s: float | None = None) -> T:
        return await self._cross(fn(self._connection, *args), timeout_s)

    @contextlib.asynccontextmanager
    async def _block(self) -> AsyncIterator[None]:
        """Start a transaction (a savepoint when one is open); commit on success, else roll
        back, shielded so that a cancelled request still rolls back its half-made change."""
        started = self._connection.transaction()
        await self._cross(started.start(), None)
        try:
            yield
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._cross(started.rollback(), pool_close_timeout_s)
            raise
        await self._cross(started.commit(), None)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        async with self._block():
            yield self


async def _keep_session_state(connection: asyncpg.Connection) -> None:
    """Pool release hook: skip asyncpg's default reset round trip.

    By default asyncpg runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: one extra PostgreSQL round trip per ``Database.run``
    (measured: ~40% of the switch's database round trips under load). Nothing here
    leaves session state behind (no LISTEN, SET or cursors outside a transaction; the
    migration's advisory lock is unlocked in ``finally``), and asyncpg still rolls back
    an open transaction before calling this hook.
    """


async def _create_pool(dsn: str, *, pool_size_min: int, pool_size_max: int) -> asyncpg.Pool:
    """Runs in the loop thread: asyncpg binds the pool to the running loop."""
    return await asyncpg.create_pool(
        dsn, min_size=pool_size_min, max_size=pool_size_max, reset=_keep_session_state
    )


@contextlib.asynccontextmanager
async def open_database(
    dsn: str,
    *,
    pool_size_min: int = 2,
    pool_size_max: int = 16,
    call_timeout_s: float = 4.0,
    bridge: str = "uvloop-thread",
) -> AsyncIterator[Database]:
    """Open the asyncio bridge and an asyncpg pool for the duration of the block.

    A lone exception inside an ExceptionGroup (from nurseries in the body or in
    trio-asyncio) is unwrapped again so callers can catch ``DatabaseUnavailable``
    (or their own errors) directly.
    """
    try:
        async with open_bridge(bridge) as loop:
            try:
                with trio.fail_after(max(call_timeout_s, pool_connect_timeout_s)):
                    pool = await loop.call(
                        _create_pool(
                            dsn, pool_size_min=pool_size_min, pool_size_max=pool_size_max
                        )
                    )
            except _CONNECT_ERRORS as exc:
                raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
            try:
                yield Database(pool, dsn, call_timeout_s, loop)
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(pool_close_timeout_s) as closing:
                        await loop.call(pool.close())
                    if closing.cancelled_caught:
                        loop.call_soon(pool.terminate)
    except BaseExceptionGroup as group:
        leaf = single_exception(group)
        if leaf is None:
            raise
        raise leaf from leaf.__cause__


def single_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The only leaf exception of a (nested) group, or None when there are several."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else None
