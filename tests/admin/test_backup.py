"""Backup and restore with pg_dump/pg_restore: consistent under load, LMK kept out.

Method: ledger traffic (holds, captures, releases, transfers) runs on the source database while
``backup.create`` dumps it; the archive is restored into a second, freshly started PostgreSQL
server. The restore recomputes every table's content digest against the manifest (taken in the
dump's own snapshot) and runs the ledger invariants; the test then re-reads every balance, hold
and idempotency record in the restored server and compares them with the manifest's per-table
digest and with the ledger's own accounting. Tampering and a wrong LMK must be refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import tarfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import trio

from ledger_adapter.postgres import PostgresLedger
from switch.admin import backup
from switch.admin.lmk_split import LmkSplitError, join, lmk_kcv, split
from switch.db.runtime import Database, open_database
from tests.admin.conftest import TEST_LMK
from tests.conftest import dsn_for_database, fresh_pg_server

T = TypeVar("T")

ACCOUNTS = [f"LOAD{i}" for i in range(8)]
OPS_BEFORE_BACKUP_MIN = 20
OPS_AFTER_BACKUP_MIN = 20  # the load really went on past the dump


@pytest.fixture
def second_server() -> Iterator[str]:
    """A fresh PostgreSQL server (not the source's) to restore into."""
    yield from fresh_pg_server("atm-restore-pg-")


async def load(db: Database, stop: trio.Event, counter: list[int]) -> None:
    """Money-moving traffic with idempotency keys until ``stop``."""
    ledger = PostgresLedger(db)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    n = 0
    while not stop.is_set():
        n += 1
        account = ACCOUNTS[n % len(ACCOUNTS)]
        held = await ledger.hold(f"h{n}", account_id=account, amount=100 + n % 7,
                                 direction="debit", expires_at=expires, expiry_action="release")
        if held.hold_id is not None and n % 3 == 0:
            await ledger.capture(f"c{n}", hold_id=held.hold_id)
        elif held.hold_id is not None and n % 3 == 1:
            await ledger.release(f"r{n}", hold_id=held.hold_id)
        await ledger.transfer(f"t{n}", from_account=account,
                              to_account=ACCOUNTS[(n + 1) % len(ACCOUNTS)], amount=3)
        counter[0] += 1


async def balances(dsn: str) -> dict[str, tuple[int, int]]:
    """Ledger and available balance of every load account, read independently by SQL."""
    connection = await asyncpg.connect(dsn)
    try:
        found = {}
        for account in ACCOUNTS:
            legs = await connection.fetchval(
                "SELECT coalesce(sum(amount), 0) FROM ledger_legs WHERE account_id = $1",
                account)
            held = await connection.fetchval(
                "SELECT coalesce(sum(amount), 0) FROM ledger_holds WHERE account_id = $1"
                " AND direction = 'debit' AND state = 'open'", account)
            found[account] = (int(legs), int(held))
        return found
    finally:
        await connection.close()


async def in_asyncio(coroutine: Coroutine[Any, Any, T]) -> T:
    """backup.* are asyncio programs (as the CLI runs them): run one in a worker thread."""
    return await trio.to_thread.run_sync(asyncio.run, coroutine)


async def create_database(server_dsn: str, name: str) -> str:
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return dsn_for_database(server_dsn, name)


async def digest_of(dsn: str) -> dict[str, dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        return await backup.content_digest(connection)
    finally:
        await connection.close()


async def test_backup_under_load_restores_exactly_into_a_fresh_server(
    db: Database, pg_dsn: str, second_server: str, tmp_path: Path
) -> None:
    ledger = PostgresLedger(db)
    for account in ACCOUNTS:
        await ledger.open_account(account, name=account, currency="156", balance=1_000_000)
    archive = tmp_path / "atm.backup"
    stop, counter = trio.Event(), [0]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load, db, stop, counter)
        while counter[0] < OPS_BEFORE_BACKUP_MIN:
            await trio.sleep(0.05)
        manifest = await in_asyncio(backup.create(pg_dsn, archive, TEST_LMK))
        at_backup = counter[0]
        while counter[0] < at_backup + OPS_AFTER_BACKUP_MIN:
            await trio.sleep(0.05)
        stop.set()
    assert manifest["content"]["ledger_idempotency"]["rows"] >= OPS_BEFORE_BACKUP_MIN
    assert TEST_LMK not in archive.read_bytes()
    assert TEST_LMK.hex().encode() not in archive.read_bytes().lower()

    verified = await in_asyncio(backup.verify(archive))
    assert verified["dump_sha256"] == manifest["dump_sha256"]
    target = await in_asyncio(create_database(second_server, "restored"))
    await in_asyncio(backup.restore(target, archive, TEST_LMK))

    # Every table, including every leg, hold and idempotency record, as in the dump's snapshot.
    assert await in_asyncio(digest_of(target)) == manifest["content"]
    restored = await in_asyncio(balances(target))
    live = await in_asyncio(balances(pg_dsn))
    assert restored != live  # the load went on after the snapshot: the dump is a point in time
    async with open_database(target, pool_size_min=1, pool_size_max=2) as restored_db:
        restored_ledger = PostgresLedger(restored_db)
        await restored_ledger.check_invariants()
        for account, (legs, held) in restored.items():
            balance = await restored_ledger.balance(account)
            assert (balance.ledger, balance.held) == (legs, held)
            assert balance.available == legs - held


async def test_a_damaged_backup_or_a_wrong_lmk_is_refused(
    db: Database, pg_dsn: str, tmp_path: Path
) -> None:
    await PostgresLedger(db).open_account("ACC1", name="a", currency="156", balance=5)
    archive = tmp_path / "atm.backup"
    await in_asyncio(backup.create(pg_dsn, archive, TEST_LMK))
    with pytest.raises(backup.BackupError, match="not the one"):
        await in_asyncio(backup.restore(pg_dsn, archive, bytes(32)))
    with pytest.raises(backup.BackupError, match="not empty"):
        await in_asyncio(backup.restore(pg_dsn, archive, TEST_LMK))
    damaged = tmp_path / "damaged.backup"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as copy:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == backup.DUMP_NAME:
                data = data[:-10] + bytes(10)
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))
    with pytest.raises(backup.BackupError, match="checksum"):
        await in_asyncio(backup.verify(damaged))


def test_lmk_components_rejoin_and_check_their_kcvs() -> None:
    components = split(TEST_LMK, 3)
    assert all(c.value_hex != TEST_LMK.hex().upper() for c in components)
    pairs = [(c.value_hex, c.kcv) for c in components]
    assert join(pairs, lmk_kcv(TEST_LMK)) == TEST_LMK
    with pytest.raises(LmkSplitError, match="component 2"):
        join([pairs[0], (pairs[1][0], "000000"), pairs[2]])
    with pytest.raises(LmkSplitError):
        join(pairs[:2], lmk_kcv(TEST_LMK))  # a missing component gives another key
