"""The NOTIFY listener delivers payloads to Trio callbacks and resets caches when its
connection is lost (real PostgreSQL: the connection is killed with pg_terminate_backend)."""

from __future__ import annotations

import trio

from switch.db.notifications import Notifications, backoff_schedule
from switch.db.runtime import Database


async def _wait_for(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.01)


async def test_payloads_reach_subscribers_and_a_lost_connection_resets(db: Database) -> None:
    hub = Notifications(db)
    seen: list[str] = []
    resets: list[int] = []
    hub.subscribe("atm_test_channel", seen.append)
    hub.on_reset(lambda: resets.append(1))
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        assert hub.connected and len(resets) == 1  # a reset on connect: nothing cached is trusted
        await db.execute("SELECT pg_notify('atm_test_channel', 'card:7')")
        await db.execute("SELECT pg_notify('other_channel', 'ignored')")
        await _wait_for(lambda: seen == ["card:7"])
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        # lost (reset) then reconnected (reset again), and delivery works afterwards
        await _wait_for(lambda: len(resets) >= 3 and hub.connected)
        await db.execute("SELECT pg_notify('atm_test_channel', 'card:8')")
        await _wait_for(lambda: seen == ["card:7", "card:8"])
        nursery.cancel_scope.cancel()


def test_backoff_grows_and_is_capped() -> None:
    delays = backoff_schedule(10)
    assert delays[0] < delays[1] < delays[2]
    assert max(delays) == delays[-1] and delays[-1] <= 5.0
