"""The terminal key book (``switch/authorization/caches.py``) on a real PostgreSQL: the re-read
under a sign-on sees a change whose ``NOTIFY`` never came, and a read that returns late with
older keys never replaces newer ones (``key_version``, migration 0810). Method: the key rows are
changed with the production SQL; a slow read is a real read held back before it returns."""

from __future__ import annotations

from typing import Any

import trio

from switch.authorization.caches import KeyBook
from switch.db.runtime import Database
from switch.hsm.terminal_keys import store_terminal_master_key, store_working_keys

TMK = "D0000K0TB00E0000" + "0" * 48  # shaped like a handle; the key book never unwraps it
TPK_1, TAK_1 = "D1" + "1" * 30, "D1" + "a" * 30
TPK_2, TAK_2 = "D2" + "2" * 30, "D2" + "b" * 30


class HeldReads:
    """The database, except that a read started while ``hold`` is set waits for ``release``
    after PostgreSQL answered (a slow network or a paused process)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.hold = False
        self.release = trio.Event()
        self.holding = trio.Event()

    async def fetchrow(self, query: str, *args: Any) -> Any:
        held = self.hold
        self.hold = False
        row = await self._db.fetchrow(query, *args)
        if held:
            self.holding.set()
            await self.release.wait()
        return row


async def terminal_with_keys(db: Database) -> None:
    await db.execute("INSERT INTO terminals (terminal_id, status) VALUES ('T1', 'enabled')")
    await store_terminal_master_key(db, "T1", tmk=TMK, key_type="tdes", tmk_kcv="ABCDEF")
    await store_working_keys(db, "T1", tpk=TPK_1, tak=TAK_1)


async def test_key_version_grows_only_when_keys_change(db: Database) -> None:
    await terminal_with_keys(db)
    first = await db.fetchval("SELECT key_version FROM terminal_keys WHERE terminal_id = 'T1'")
    await db.execute("UPDATE terminal_keys SET updated_at = now() WHERE terminal_id = 'T1'")
    assert await db.fetchval("SELECT key_version FROM terminal_keys") == first
    await store_working_keys(db, "T1", tpk=TPK_2, tak=TAK_2)
    assert await db.fetchval("SELECT key_version FROM terminal_keys") > first


async def test_refresh_reads_a_change_whose_notify_never_came(db: Database) -> None:
    await terminal_with_keys(db)
    book = KeyBook(db)
    cached = await book.load("T1")
    assert cached is not None and cached.tak == TAK_1
    await store_working_keys(db, "T1", tpk=TPK_2, tak=TAK_2)  # on another node; no NOTIFY here
    assert (await book.load("T1")) == cached  # between sign-ons the cache is trusted
    fresh = await book.refresh("T1")
    assert fresh is not None and fresh.tak == TAK_2 and fresh.version > cached.version
    assert await book.load("T1") == fresh and book.remembered("T1") == fresh

    await store_terminal_master_key(db, "T1", tmk=TMK, key_type="tdes", tmk_kcv="ABCDEF")
    cleared = await book.refresh("T1")  # working keys cleared by a TMK load
    assert cleared is not None and cleared.tak is None


async def test_a_late_read_of_older_keys_does_not_replace_newer_ones(db: Database) -> None:
    await terminal_with_keys(db)
    reads = HeldReads(db)
    book = KeyBook(reads)  # type: ignore[arg-type]  # the one method KeyBook calls
    late: list[Any] = []
    async with trio.open_nursery() as nursery:
        reads.hold = True

        async def slow_load() -> None:
            late.append(await book.load("T1"))

        nursery.start_soon(slow_load)
        await reads.holding.wait()  # it has read keys 1 and is held before returning
        await store_working_keys(db, "T1", tpk=TPK_2, tak=TAK_2)
        fresh = await book.refresh("T1")  # the terminal signs on meanwhile
        assert fresh is not None and fresh.tak == TAK_2
        reads.release.set()
    assert late[0] == fresh  # the late read answers with the newest keys it knows
    assert await book.load("T1") == fresh and book.remembered("T1") == fresh
