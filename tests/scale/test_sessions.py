"""One connection per terminal across nodes: the ``terminal_sessions`` table (migration 0800)
and LISTEN/NOTIFY. A sign-on on node B closes node A's older connection promptly; keys
exchanged on one node work on the others; generations settle races; a missed notification
is made up for by reconciling after a listener reset."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from switch.cluster_sessions import ClusterSessions
from switch.db.notifications import Notifications
from switch.db.runtime import Database
from switch.session import Session, SessionRegistry
from tests.authorization.harness import CARD_MAIN, FIXTURE, connect_atm
from tests.e2e.processes import prepare
from tests.scale.processes import serve_process

CLOSE_WITHIN_S = 2.0


@pytest.mark.slow
async def test_sign_on_on_node_b_closes_node_a_and_keys_follow(pg_dsn: str, tmp_path: Path
                                                                ) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with trio.open_nursery() as nursery, \
            serve_process(data_dir, pg_dsn, log_name="a.log") as node_a, \
            serve_process(data_dir, pg_dsn, log_name="b.log") as node_b:
        on_a = await connect_atm(nursery, node_a.address, "ATM001")
        response, _ = await on_a.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"

        on_b = await connect_atm(nursery, node_b.address, "ATM001")  # new keys, from B
        with trio.fail_after(CLOSE_WITHIN_S):
            while not on_a.link.closed:
                await trio.sleep(0.01)
        response, _ = await on_b.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"

        # Back to A without a key exchange: A uses the keys B exchanged (from PostgreSQL).
        again = await connect_atm(nursery, node_a.address, "ATM001", key_exchange=False,
                                  keys=on_b.keys, first_stan=500)
        with trio.fail_after(CLOSE_WITHIN_S):
            while not on_b.link.closed:
                await trio.sleep(0.01)
        response, _ = await again.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"
        nursery.cancel_scope.cancel()


class Node:
    """A node's session bookkeeping in-process: its own registry and notification hub."""

    def __init__(self, db: Database, name: str) -> None:
        self.registry = SessionRegistry()
        self.hub = Notifications(db)
        self.cluster = ClusterSessions(db, self.registry, self.hub, node_id=name)
        self.closed: list[str] = []
        self._ids = 0

    async def sign_on(self, terminal_id: str) -> Session:
        self._ids += 1
        session = Session(connection_id=self._ids, peer="test")
        session.attach_close_hook(self.closed.append)
        await self.cluster.record_sign_on(terminal_id, session)
        self.registry.claim(terminal_id, session)
        return session


async def test_generations_and_reconcile(db: Database) -> None:
    one, two = Node(db, "node-1"), Node(db, "node-2")
    async with trio.open_nursery() as nursery:
        for node in (one, two):
            await nursery.start(node.hub.run)
            await nursery.start(node.cluster.run)
        first = await one.sign_on("ATM001")
        second = await two.sign_on("ATM001")
        with trio.fail_after(CLOSE_WITHIN_S):
            while not first.closing:
                await trio.sleep(0.01)
        assert one.closed == ["signed on at another node"]
        assert one.registry.current("ATM001") is None
        assert not second.closing and two.registry.current("ATM001") is second

        # A late notification with an older generation closes nothing.
        two.cluster._on_notify('{"terminal_id": "ATM001", "node_id": "node-1", "generation": 1}')
        assert not second.closing

        # A change the listener never saw (trigger off) is found by reconcile().
        third = await one.sign_on("ATM002")
        await db.execute("ALTER TABLE terminal_sessions DISABLE TRIGGER terminal_sessions_notify")
        await db.execute("UPDATE terminal_sessions SET node_id = 'node-9',"
                         " generation = generation + 1 WHERE terminal_id = 'ATM002'")
        await trio.sleep(0.3)
        assert not third.closing
        await one.cluster.reconcile()
        assert third.closing
        row = await db.fetchrow("SELECT node_id, generation FROM terminal_sessions"
                                " WHERE terminal_id = 'ATM001'")
        assert (row["node_id"], row["generation"]) == ("node-2", 2)
        nursery.cancel_scope.cancel()
