"""Keys across nodes (issue 19 item 1): whichever node a terminal signs on at answers it, from
the first message after the sign-on, with the keys most recently agreed anywhere, whether the
``NOTIFY`` of the key change reached that node before the sign-on, after it, or was lost while
its listener reconnected.

Method: two real ``atm-switch serve`` processes on one database and real TCP. The order is
forced from outside: "after" holds the key table's trigger off during the change and sends the
``NOTIFY`` by hand later; "before" fences with a second terminal whose sign-on elsewhere closes
its connection on the node (PostgreSQL delivers notifications in commit order, so once that
close is seen the key ``NOTIFY`` was handled); "reconnected" holds the trigger off and kills the
nodes' listener connections. A request MAC'd under the superseded keys must be refused (``63``)
with a response MAC under the current keys, and one under the current keys approved.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio

from switch.db.runtime import Database
from switch.hsm.terminal_keys import store_terminal_master_key
from switch.protocol.message import Message
from terminals.hostlink.financial import encode_request, financial_request
from terminals.hostlink.keys import TerminalKeySet
from tests.authorization.harness import CARD_MAIN, FIXTURE, PIN, Atm, connect_atm
from tests.e2e.processes import prepare
from tests.scale.processes import ServeProcess, serve_process

ORDERS = ("notify_before_sign_on", "notify_after_sign_on", "listener_reconnected")
SETTLE_S = 5.0  # a close or a listener reconnection seen within this, or the test fails

LISTENERS = (
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
)


async def hold_key_notifications(db: Database) -> None:
    """Key changes from now on announce nothing (their ``NOTIFY`` comes late, by hand)."""
    await db.execute("ALTER TABLE terminal_keys DISABLE TRIGGER terminal_keys_notify")


async def send_late_notification(db: Database, terminal_id: str) -> None:
    await db.execute("ALTER TABLE terminal_keys ENABLE TRIGGER terminal_keys_notify")
    await db.execute("SELECT pg_notify('atm_terminals', $1)", terminal_id)


async def wait_closed(atm: Atm) -> None:
    with trio.fail_after(SETTLE_S):
        while not atm.link.closed:
            await trio.sleep(0.02)


async def reconnect_listeners(db: Database) -> None:
    """Kill every node's LISTEN connection and wait until each has a new one."""
    old = {row["pid"] for row in await db.fetch(LISTENERS)}
    assert len(old) == 2, old
    await db.execute("SELECT pg_terminate_backend(pid) FROM (" + LISTENERS + ") AS l")
    with trio.fail_after(SETTLE_S * 3):
        while True:
            now = {row["pid"] for row in await db.fetch(LISTENERS)}
            if len(now) == 2 and not now & old:
                return
            await trio.sleep(0.05)


async def fence(nursery: trio.Nursery, order: str, bystander: Atm, elsewhere: ServeProcess,
                db: Database) -> None:
    """Make the key change's ``NOTIFY`` reach the other node before, or after, the sign-on."""
    if order == "notify_before_sign_on":
        await connect_atm(nursery, elsewhere.address, bystander.identity.terminal_id,
                          key_exchange=False)
        await wait_closed(bystander)
    elif order == "listener_reconnected":
        await reconnect_listeners(db)


async def withdraw_under(atm: Atm, keys: TerminalKeySet) -> tuple[Message, bytes | None]:
    """A withdrawal whose PIN block and MAC are under ``keys`` (a terminal that missed an
    0810); the response MAC is still checked under ``atm.keys``."""
    fields = financial_request(
        atm.identity, CARD_MAIN, stan=atm.next_stan(), processing_code="010000",
        amount_minor=10_000, now=dt.datetime.now(dt.UTC),
        pin_block=keys.pin_block(PIN, CARD_MAIN.pan),
    )
    return await atm.exchange(encode_request("0200", fields, keys))


async def assert_current_keys_only(atm: Atm, superseded: TerminalKeySet) -> None:
    """First messages after a sign-on: old keys refused under the new TAK, new keys approved."""
    response, raw = await withdraw_under(atm, superseded)
    assert response.fields["39"] == "63", response.fields
    assert raw is not None  # its MAC verified under atm.keys (the hook raises otherwise)
    response, _ = await atm.withdraw(CARD_MAIN, 10_000)
    assert response.fields["39"] == "00", response.fields


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
async def test_keys_exchanged_on_either_node_hold_on_the_other(
    db: Database, pg_dsn: str, tmp_path: Path, order: str
) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with trio.open_nursery() as nursery, \
            serve_process(data_dir, pg_dsn, log_name="a.log") as node_a, \
            serve_process(data_dir, pg_dsn, log_name="b.log") as node_b:
        bystander_a = await connect_atm(nursery, node_a.address, "ATM002", key_exchange=False)
        on_a = await connect_atm(nursery, node_a.address, "ATM001")  # keys 1, cached on A
        response, _ = await on_a.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"
        if order != "notify_before_sign_on":
            await hold_key_notifications(db)

        on_b = await connect_atm(nursery, node_b.address, "ATM001")  # keys 2, agreed on B
        await wait_closed(on_a)
        await fence(nursery, order, bystander_a, node_b, db)
        back_on_a = await connect_atm(nursery, node_a.address, "ATM001", key_exchange=False,
                                      keys=on_b.keys, first_stan=300)
        await wait_closed(on_b)
        await assert_current_keys_only(back_on_a, on_a.keys)
        if order == "notify_after_sign_on":
            await send_late_notification(db, "ATM001")
            await trio.sleep(0.3)
            response, _ = await back_on_a.withdraw(CARD_MAIN, 10_000)
            assert response.fields["39"] == "00"
            await hold_key_notifications(db)

        # The other way round: keys 3 agreed on A; B itself last stored keys 2.
        superseded = back_on_a.keys
        await back_on_a.key_exchange()
        response, _ = await back_on_a.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"
        bystander_b = await connect_atm(nursery, node_b.address, "ATM003", key_exchange=False)
        await fence(nursery, order, bystander_b, node_a, db)
        back_on_b = await connect_atm(nursery, node_b.address, "ATM001", key_exchange=False,
                                      keys=back_on_a.keys, first_stan=600)
        await wait_closed(back_on_a)
        await assert_current_keys_only(back_on_b, superseded)
        nursery.cancel_scope.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS)
async def test_working_keys_cleared_elsewhere_are_gone_at_the_next_sign_on(
    db: Database, pg_dsn: str, tmp_path: Path, order: str
) -> None:
    """A TMK load (the back office's rotation path) clears the working keys: after its next
    sign-on, no node accepts the old TAK, whatever it had cached; a key exchange recovers."""
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with trio.open_nursery() as nursery, \
            serve_process(data_dir, pg_dsn, log_name="a.log") as node_a, \
            serve_process(data_dir, pg_dsn, log_name="b.log") as node_b:
        bystander = await connect_atm(nursery, node_a.address, "ATM002", key_exchange=False)
        on_a = await connect_atm(nursery, node_a.address, "ATM001")
        response, _ = await on_a.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"
        if order != "notify_before_sign_on":
            await hold_key_notifications(db)
        row = await db.fetchrow("SELECT tmk, key_type, tmk_kcv FROM terminal_keys"
                                " WHERE terminal_id = 'ATM001'")
        await store_terminal_master_key(db, "ATM001", tmk=row["tmk"], key_type=row["key_type"],
                                        tmk_kcv=row["tmk_kcv"])
        await fence(nursery, order, bystander, node_b, db)
        await on_a.aclose()
        again = await connect_atm(nursery, node_a.address, "ATM001", key_exchange=False,
                                  keys=on_a.keys, first_stan=300)
        response, raw = await withdraw_under(again, on_a.keys)
        assert response.fields["39"] == "63", response.fields
        assert raw is None  # no TAK on file: answered without a MAC (spec 8)
        await again.key_exchange()
        response, _ = await again.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"
        nursery.cancel_scope.cancel()
