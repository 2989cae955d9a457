"""The ways the batched engine (v2) could still lose money (issue 21), each reproduced against a
running switch over real TCP and a real PostgreSQL: PostgreSQL is made slow for real (another
transaction holds a row lock past the request deadline), the switch is restarted on the same
database, and the test reads what the terminal was told, the stored decision and the ledger.
Each test fails on the v2 engine (migrations 0311/0312 alone) and passes on v3 (0320)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import trio

from switch.authorization.batch_items import (
    AdviceItem,
    FinancialItem,
    advice_columns,
    financial_columns,
)
from switch.authorization.request import MessageKey, OriginalData
from switch.authorization.sweeper import sweep_once
from switch.config import AuthorizationConfig
from tests.authorization.harness import CARD_MAIN, CARD_SECOND, PIN, running_switch

OPENING_ACC1 = 1_370_000


async def hold_row_lock(
    db: Any, statement: str, *args: Any, seconds: float,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``statement`` (``SELECT ... FOR UPDATE``s separated by ``;``) in a transaction kept
    open for ``seconds``: PostgreSQL itself is slow for whoever needs those rows."""
    locked = trio.Event()
    token = trio.lowlevel.current_trio_token()

    async def hold(connection: Any) -> None:
        async with connection.transaction():
            for one in statement.split(";"):
                await connection.execute(one, *args)
            token.run_sync_soon(locked.set)
            await asyncio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: db.run(hold, timeout_s=seconds + 5))
        await locked.wait()
        task_status.started()


# The original's row and its key (whoever reads or writes a 0200 key takes the key's lock).
ORIGINAL_ROW = (
    "SELECT 1 FROM auth_messages WHERE message_class = '0200' AND stan = $1 FOR UPDATE;"
    " SELECT auth_key_locks(ARRAY[terminal_id], ARRAY[stan], ARRAY[transmission_dt],"
    " ARRAY[acquirer_id]) FROM auth_messages WHERE message_class = '0200' AND stan = $1"
)


async def settle_voids(switch: Any) -> None:
    """What the sweeper does first on every pass: give PostgreSQL the voids it is owed."""
    with trio.fail_after(10):
        while await switch.authorization.financial.retry_voids():
            await trio.sleep(0.05)


async def stored(db: Any, stan: str, message_class: str = "0200") -> Any:
    return await db.fetchrow(
        "SELECT state, response_code FROM auth_messages WHERE message_class = $1 AND stan = $2",
        message_class, stan,
    )


async def until_stored(db: Any, stan: str) -> None:
    """Wait for the batch that went on past the deadline to commit its decision for ``stan``."""
    with trio.fail_after(10):
        while (await stored(db, stan)) is None:
            await trio.sleep(0.05)


async def withdrawal_answered_91(switch: Any, atm: Any) -> Any:
    """A 1,000.00 withdrawal whose batch commits after the deadline (ACC1 locked for 3 s): the
    terminal is told 91; returned once the batch went on and committed its 00 with the hold."""
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda **kw: hold_row_lock(
            switch.db, "SELECT 1 FROM ledger_accounts WHERE account_id = 'ACC1' FOR UPDATE",
            seconds=3.0, **kw))
        answer, original = await atm.withdraw(CARD_MAIN, 100_000)
        assert answer.fields["39"] == "91"
    await until_stored(switch.db, original["11"])
    return original


async def test_a_late_repeat_cannot_undo_a_completed_withdrawal(pg_dsn: str) -> None:
    """Failure 1: 0200 answered 00, its 0220 completed (cash out, customer debited), then an
    exact repeat of the 0200 while PostgreSQL is slow. The repeat misses its deadline and is
    answered 91, but it made no claim, so its void must change nothing: the customer stays
    debited once and the decision stays 00."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        approved, original = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        assert (await atm.complete(original)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (OPENING_ACC1 - 100_000,) * 2 + (0,)
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda **kw: hold_row_lock(
                switch.db, ORIGINAL_ROW, original["11"], seconds=2.5, **kw))
            repeat = await atm.send("0200", original)
            assert repeat.fields["39"] == "91"  # the stored answer was not readable in time
        await settle_voids(switch)
        assert await switch.balance("ACC1") == (OPENING_ACC1 - 100_000,) * 2 + (0,)
        row = await stored(switch.db, original["11"])
        assert (row["state"], row["response_code"]) == ("completed", "00")
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def test_a_91_leaves_no_effect_across_a_restart(pg_dsn: str, tmp_path: Path) -> None:
    """Failure 2: the batch's reply comes after the deadline (a row lock held longer than the
    deadline and the void's own wait), so the void cannot be recorded in time either; the
    switch answers 91 and is then restarted. The void it owed must survive the restart: the
    hold is released, never captured at expiry as dispensed, and a repeat gets 91."""
    journal = tmp_path / "void-journal.jsonl"
    config = AuthorizationConfig(hold_expiry_s=1)
    async with running_switch(pg_dsn, deadline_s=1.5, config=config,
                              void_journal_path=journal) as switch:
        atm = await switch.atm("ATM001")
        original = await withdrawal_answered_91(switch, atm)
    # A new switch process on the same database and data directory.
    async with running_switch(pg_dsn, deadline_s=1.5, config=config, load_fixture=False,
                              void_journal_path=journal) as switch:
        await trio.sleep(1.2)  # past the hold's expiry
        await settle_voids(switch)
        await sweep_once(switch.authorization.ctx)
        assert await switch.balance("ACC1") == (OPENING_ACC1, OPENING_ACC1, 0)
        atm = await switch.atm("ATM001", first_stan=500)
        assert (await atm.send("0200", original)).fields["39"] == "91"
        row = await stored(switch.db, original["11"])
        assert (row["state"], row["response_code"]) == ("voided", "91")
        assert not journal.exists()  # nothing owed any more
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def test_a_repeat_of_an_owed_91_gets_91_and_the_void_goes_through(
    pg_dsn: str,
) -> None:
    """Failure 2, second half: a repeat that arrives before the clean-up ran must get 91 again
    (spec 5.6), not the stored 00, and must not stop the clean-up."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        original = await withdrawal_answered_91(switch, atm)
        repeat = await atm.send("0200", original)  # the sweeper has not run
        assert repeat.fields["39"] == "91"
        await settle_voids(switch)
        assert await switch.balance("ACC1") == (OPENING_ACC1, OPENING_ACC1, 0)
        assert (await atm.send("0200", original)).fields["39"] == "91"
        assert (await stored(switch.db, original["11"]))["state"] == "voided"


async def test_a_voided_pin_change_keeps_the_old_pin(pg_dsn: str) -> None:
    """Failure 2, PIN change: a PIN change whose batch commits after its deadline is answered
    91; the void puts the old PIN back, so the old PIN works and the new one does not."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        change = atm.request_fields(CARD_MAIN, "900000", 0,
                                    tags={"NP": atm.keys.pin_block("8642", CARD_MAIN.pan)})
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda **kw: hold_row_lock(
                switch.db, "SELECT 1 FROM cards WHERE pan_masked LIKE '622848%0017' FOR UPDATE",
                seconds=2.5, **kw))
            assert (await atm.send("0200", change)).fields["39"] == "91"
        await until_stored(switch.db, change["11"])
        await settle_voids(switch)
        new, _ = await atm.withdraw(CARD_MAIN, 10_000, pin="8642")
        assert new.fields["39"] == "55"
        old, _ = await atm.withdraw(CARD_MAIN, 10_000, pin=PIN)
        assert old.fields["39"] == "00"
        assert (await stored(switch.db, change["11"]))["state"] == "voided"


async def test_two_reversals_of_one_original_in_one_batch_apply_once(pg_dsn: str) -> None:
    """Failure 3: a 0420 reason 32 (95 = 500.00 dispensed) and a 0420 reason 22 of the same
    1,000.00 withdrawal, forced into one advice batch (eight other advice batches are held in
    flight by a row lock, so both queue and leave together). One after the other, the first
    one recorded takes effect and the second finds nothing left: the batch must agree."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        approved, original = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        other = await switch.atm("ATM002")  # the eight fillers use another connection
        fillers = []
        for _ in range(8):
            answer, fields = await other.withdraw(CARD_SECOND, 10_000, pin="4321")
            assert answer.fields["39"] == "00"
            fillers.append(fields)
        codes = []
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda **kw: hold_row_lock(
                switch.db, "SELECT 1 FROM ledger_accounts WHERE account_id = 'ACC2' FOR UPDATE",
                seconds=1.5, **kw))
            for fields in fillers:
                nursery.start_soon(other.complete, fields)
            await trio.sleep(0.3)  # eight advice batches in flight, all waiting for ACC2

            async def reverse(reason: str, dispensed: int | None) -> None:
                answer, _ = await atm.reverse(original, reason=reason, dispensed=dispensed)
                codes.append(answer.fields["39"])

            nursery.start_soon(reverse, "32", 50_000)
            await trio.sleep(0.05)
            nursery.start_soon(reverse, "22", None)
        assert codes == ["00", "00"]
        rows = await switch.db.fetch(
            "SELECT reason, xmin::text AS tx, commit_seq FROM auth_messages"
            " WHERE message_class = '0420' ORDER BY commit_seq")
        assert [row["reason"] for row in rows] in (["32", "22"], ["22", "32"])
        assert rows[0]["tx"] == rows[1]["tx"]  # recorded by one transaction: one batch
        kept = 50_000 if rows[0]["reason"] == "32" else 0
        assert await switch.balance("ACC1") == (OPENING_ACC1 - kept,) * 2 + (0,)
        state = (await stored(switch.db, original["11"]))["state"]
        assert state == ("partially_reversed" if kept else "reversed")
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def test_a_second_completion_after_a_presumed_capture_corrects_nothing(
    pg_dsn: str,
) -> None:
    """Failure 6b: the hold expires and is captured in full as presumed dispensed; a 0220 for
    the full amount confirms it; a later, smaller 0220 (another STAN) must not credit the
    difference: spec 10's correction is made once, by the first completion."""
    config = AuthorizationConfig(hold_expiry_s=1)
    async with running_switch(pg_dsn, config=config) as switch:
        atm = await switch.atm("ATM001")
        approved, original = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        await trio.sleep(1.2)
        await sweep_once(switch.authorization.ctx)
        assert await switch.balance("ACC1") == (OPENING_ACC1 - 100_000,) * 2 + (0,)
        assert (await atm.complete(original, 100_000)).fields["39"] == "00"
        assert (await atm.complete(original, 50_000)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (OPENING_ACC1 - 100_000,) * 2 + (0,)
        assert (await stored(switch.db, original["11"]))["state"] == "completed"


def _financial_item(stan: str) -> FinancialItem:
    """A 0200 for a card not on file (it is declined 14): enough to take its key."""
    return FinancialItem(
        key=MessageKey("0200", "ATM001", stan, "1207010203", "00000123456"),
        fingerprint=f"fp-{stan}", processing_code="010000", amount_minor=10_000,
        token=f"t-{stan}", card_id=None, card_version=0, presented_expiry=None, month=2612,
        pin="none", from_account=None, to_account=None, static_code=None, kind="withdrawal",
        new_pin=None, currency="156", day=dt.date(2026, 12, 7),
        expires_at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC), daily_max=None, daily_count=None,
        ledger_key=f"k-{stan}", ledger_fingerprint="", description=None, reference=None,
        rrn=None,
    )  # fmt: skip


def _reversal_of(stan: str, own_stan: str) -> AdviceItem:
    return AdviceItem(
        key=MessageKey("0420", "ATM001", own_stan, "1207010210", "00000123456"),
        fingerprint=f"fp-r{own_stan}", processing_code="010000", amount_minor=10_000,
        token=f"t-r{own_stan}",
        original=OriginalData("0200", stan, "1207010203", "00000123456"),
        actual_amount_minor=None, rrn=None, reason="68",
    )


async def test_a_0200_batch_and_an_advice_batch_do_not_deadlock(pg_dsn: str) -> None:
    """Failure 6a: v2's 0200 batch inserted its keys and then locked the rows of its repeats,
    while the advice batch locked originals and then inserted markers: a 0200 batch holding a
    new key K1 and waiting for a repeat's row K2, and an advice batch holding K2 and waiting
    to reserve K1, deadlocked (PostgreSQL aborts one: 40P01, answered 96). Reproduced with the
    batch functions themselves on three connections: T0 holds a third key so that T1 (the
    0200 batch: K2 repeat, K1 new, K0) pauses between its keys, and T2 (reversals of K2 and of
    the unknown K1) runs in that pause. v3 takes every 0200 key of a batch in one statement
    in key order, so neither batch can hold one key while waiting for a lower one."""
    async with running_switch(pg_dsn) as switch:
        db = switch.db
        k2, k1, k0 = (_financial_item(s) for s in ("000001", "000005", "000009"))
        tries = ("SELECT * FROM auth_financial_batch(" + ", ".join(f"${n}" for n in range(1, 32))
                 + ")")

        async def batch(connection: Any, items: list[FinancialItem]) -> Any:
            return await connection.fetch(tries, *financial_columns(items), 3)

        await db.run(lambda c: batch(c, [k2]))  # K2: an original already decided (14)
        errors: list[BaseException] = []

        async def t0(connection: Any) -> None:
            async with connection.transaction():
                await batch(connection, [k0])
                await asyncio.sleep(0.8)

        async def t1(connection: Any) -> None:
            await batch(connection, [k2, k1, k0])

        async def t2(connection: Any) -> None:
            await connection.fetch(
                "SELECT * FROM auth_advice_batch(" + ", ".join(f"${n}" for n in range(1, 16))
                + ")", *advice_columns([_reversal_of("000001", "000101"),
                                        _reversal_of("000005", "000102")]))

        async def run(work: Any) -> None:
            try:
                await db.run(work, timeout_s=10)
            except Exception as exc:  # the deadlock (40P01) is what this test looks for
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, t0)
            await trio.sleep(0.1)
            nursery.start_soon(run, t1)
            await trio.sleep(0.2)
            nursery.start_soon(run, t2)
        assert errors == []
        states = await db.fetch("SELECT stan, state FROM auth_messages WHERE message_class ="
                                " '0420' ORDER BY stan")
        assert [row["state"] for row in states] == ["recorded", "recorded"]
