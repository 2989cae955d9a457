"""PostgreSQL down, restarting or hung: calls fail fast with LedgerUnavailable and the ledger
recovers by itself. Uses a PostgreSQL of its own (never the shared session server): stopped
with ``pg_ctl -m immediate`` (a crash), restarted, and frozen with SIGSTOP."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from ledger_adapter import LedgerUnavailable
from ledger_adapter.postgres import PostgresLedger
from switch.db.migrate import migrate
from switch.db.runtime import open_database
from tests.ledger.conftest import CURRENCY, withdraw_hold

CALL_TIMEOUT_S = 1.5
# A failing call must return within its deadline plus scheduling slack on a loaded machine.
FAIL_FAST_S = CALL_TIMEOUT_S + 2.0

pytestmark = pytest.mark.slow


class OwnPostgres:
    """A pgserver instance in a temporary directory that the test may crash and restart."""

    def __init__(self, root: Path) -> None:
        from pgserver.postgres_server import get_server

        self.server = get_server(root / "pg", cleanup_mode="delete")
        self.dsn = str(self.server.get_uri())

    def crash(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "immediate", "stop"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
        )

    def restart(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def processes(self) -> list[int]:
        postmaster = self.server.get_pid()
        assert postmaster is not None
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                        children.append(int(entry))
        return [postmaster, *children]


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    with tempfile.TemporaryDirectory(prefix="atm-ledger-pg-") as root:
        instance = OwnPostgres(Path(root))
        try:
            yield instance
        finally:
            instance.server.cleanup()


@contextlib.asynccontextmanager
async def funded_ledger(own_postgres: OwnPostgres) -> AsyncIterator[PostgresLedger]:
    """A ledger on the test's own server (migrated, short call deadline) with ACC1 funded."""
    async with open_database(
        own_postgres.dsn, pool_size_max=4, call_timeout_s=CALL_TIMEOUT_S
    ) as db:
        await migrate(db)
        ledger = PostgresLedger(db)
        await ledger.open_account("ACC1", name="a", currency=CURRENCY, balance=100_000)
        yield ledger


async def eventually_approved(ledger: PostgresLedger, key: str, within_s: float) -> None:
    with trio.fail_after(within_s):
        while True:
            try:
                assert (await withdraw_hold(ledger, key, "ACC1", 100)).approved
                return
            except LedgerUnavailable:
                await trio.sleep(0.2)


async def test_down_fails_fast_and_reconnects_after_restart(own_postgres: OwnPostgres) -> None:
    async with funded_ledger(own_postgres) as ledger:
        assert (await withdraw_hold(ledger, "before", "ACC1", 100)).approved

        await trio.to_thread.run_sync(own_postgres.crash)
        for attempt in range(3):
            started = trio.current_time()
            with pytest.raises(LedgerUnavailable):
                await withdraw_hold(ledger, f"during{attempt}", "ACC1", 100)
            assert trio.current_time() - started < FAIL_FAST_S
        with pytest.raises(LedgerUnavailable):
            await ledger.balance("ACC1")

        await trio.to_thread.run_sync(own_postgres.restart)
        await eventually_approved(ledger, "after", within_s=15)
        # The acknowledged hold from before the crash survived it; nothing else was applied.
        assert (await ledger.balance("ACC1")).held == 200
        assert (await withdraw_hold(ledger, "before", "ACC1", 100)).approved
        await ledger.check_invariants()


async def test_hung_server_fails_at_the_deadline(own_postgres: OwnPostgres) -> None:
    async with funded_ledger(own_postgres) as ledger:
        pids = own_postgres.processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = trio.current_time()
            with pytest.raises(LedgerUnavailable):
                await withdraw_hold(ledger, "hung", "ACC1", 100)
            assert CALL_TIMEOUT_S - 0.1 <= trio.current_time() - started < FAIL_FAST_S
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        # The abandoned call's outcome is unknown: undo it by key, then carry on.
        with trio.fail_after(15):
            while True:
                try:
                    await ledger.release_by_key("hung")
                    break
                except LedgerUnavailable:
                    await trio.sleep(0.2)
        await eventually_approved(ledger, "after", within_s=15)
        assert (await ledger.balance("ACC1")).held == 100
        await ledger.check_invariants()
