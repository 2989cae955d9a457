"""Crash safety: a process placing and capturing holds in batches is killed with SIGKILL in
the middle, then started again over the same keys. Every result it acknowledged before the
kill is in the database exactly as acknowledged, repeats return it unchanged, nothing is
applied twice, and the money invariants hold."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import Database
from tests.ledger.conftest import CURRENCY
from tests.ledger.crash_child import ACCOUNTS

KEYS = 1500
CONCURRENCY = 64
# Kill once this many results were acknowledged: mid-run, with batches in flight.
ACKS_BEFORE_KILL = 400
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def read_acks(path: Path) -> dict[str, tuple[str, str]]:
    acks: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        key, status, hold_id = line.split()
        assert key not in acks, f"{key} acknowledged twice"
        acks[key] = (status, hold_id)
    return acks


def start_child(dsn: str, ack: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "tests.ledger.crash_child",
        dsn,
        str(ack),
        str(KEYS),
        str(CONCURRENCY),
    ]
    return subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE)


def kill_after_acks(
    child: subprocess.Popen[bytes], ack: Path, count: int, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ack.exists() and ack.read_bytes().count(b"\n") >= count:
            child.send_signal(signal.SIGKILL)
            child.wait()
            return
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        time.sleep(0.005)
    child.kill()
    raise AssertionError("child acknowledged too little before the deadline")


async def test_sigkill_mid_batches_loses_and_duplicates_nothing(
    db: Database, pg_dsn: str, tmp_path: Path
) -> None:
    ledger = PostgresLedger(db)
    for account in ACCOUNTS:
        await ledger.open_account(account, name=account, currency=CURRENCY, balance=10**9)
    first_acks, second_acks = tmp_path / "first.acks", tmp_path / "second.acks"

    child = start_child(pg_dsn, first_acks)
    await trio.to_thread.run_sync(kill_after_acks, child, first_acks, ACKS_BEFORE_KILL, 60.0)
    assert child.returncode == -signal.SIGKILL
    before_kill = read_acks(first_acks)
    assert ACKS_BEFORE_KILL <= len(before_kill) < 2 * KEYS, "the kill must land mid-run"

    child = start_child(pg_dsn, second_acks)
    _, errors = await trio.to_thread.run_sync(child.communicate)
    assert child.returncode == 0, errors.decode()
    after_restart = read_acks(second_acks)

    # Every acknowledged result is durable and repeats return it unchanged.
    for key, acknowledged in before_kill.items():
        assert after_restart.get(key, acknowledged) == acknowledged, key
        row = await db.fetchrow(
            "SELECT status, hold_id FROM ledger_idempotency WHERE key = $1", key
        )
        assert row is not None, f"acknowledged {key} is not in the database"
        assert (row["status"], str(row["hold_id"])) == acknowledged
    # Nothing applied twice: one hold per approved hold key, one capture entry per capture.
    holds = await db.fetchval("SELECT count(*) FROM ledger_holds")
    approved = await db.fetchval(
        "SELECT count(*) FROM ledger_idempotency WHERE operation = 'hold' AND status = 'approved'"
    )
    assert holds == approved == KEYS
    captures = await db.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'capture'")
    assert captures == KEYS // 2
    held = await db.fetchval("SELECT sum(held) FROM ledger_accounts")
    expected_held = sum(100 + n % 7 for n in range(KEYS) if n % 2)
    assert held == expected_held
    await ledger.check_invariants()
