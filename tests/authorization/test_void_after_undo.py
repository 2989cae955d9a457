"""A 91 whose request something else undid before the switch's void (migration 0321), found by
the 30-minute simulation (docs/testing.md): the void is owed (PostgreSQL too slow to take it
in time), then a reversal, or the hold expiry sweep, gets to the original first. The 91 must
still be recorded, so a repeat gets 91 (spec 5.6), and a presumed capture must be given back:
the terminal was told 91 and dispensed nothing (spec 10, "a 91 never debits")."""

from __future__ import annotations

import trio

from switch.authorization.sweeper import sweep_once
from switch.config import AuthorizationConfig
from tests.authorization.harness import running_switch
from tests.authorization.test_engine_v3 import (
    OPENING_ACC1,
    settle_voids,
    stored,
    withdrawal_answered_91,
)


async def test_a_reversal_of_an_owed_91_lets_the_void_go_first(pg_dsn: str) -> None:
    """Spec 5.6: a reversal a terminal sends after a 91 is answered 00 with no effect. On the
    node that owes the void, the advice lets it go first, so the reversal finds the 91."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        original = await withdrawal_answered_91(switch, atm)
        assert len(switch.authorization.financial.journal) == 1  # the void is owed
        reversal, _ = await atm.reverse(original, reason="32", dispensed=50_000)
        assert reversal.fields["39"] == "00"
        assert not len(switch.authorization.financial.journal)
        row = await stored(switch.db, original["11"])
        assert (row["state"], row["response_code"]) == ("voided", "91")
        assert await switch.balance("ACC1") == (OPENING_ACC1, OPENING_ACC1, 0)
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def test_a_91_reversed_elsewhere_before_its_void_is_still_recorded_91(
    pg_dsn: str,
) -> None:
    """Seed 20261325: a 0420 recorded (here by a second switch on the same database, which
    does not know the first one's journal) before the void; the void then found the original
    "reversed" and left its decision 00."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        original = await withdrawal_answered_91(switch, atm)
        assert len(switch.authorization.financial.journal) == 1  # the void is owed
        async with running_switch(pg_dsn, deadline_s=1.5, load_fixture=False) as other:
            elsewhere = await other.atm("ATM001", first_stan=700)
            reversal, _ = await elsewhere.reverse(original, reason="17")
            assert reversal.fields["39"] == "00"
        assert (await stored(switch.db, original["11"]))["state"] == "reversed"
        await settle_voids(switch)
        row = await stored(switch.db, original["11"])
        assert (row["state"], row["response_code"]) == ("voided", "91")
        assert await switch.balance("ACC1") == (OPENING_ACC1, OPENING_ACC1, 0)
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def test_a_91_presumed_dispensed_before_its_void_is_given_back(pg_dsn: str) -> None:
    """The hold expired (withdrawal presumed dispensed, captured) while its void was owed: the
    void reverses the capture, so the customer who was told 91 is not debited."""
    config = AuthorizationConfig(hold_expiry_s=1)
    async with running_switch(pg_dsn, deadline_s=1.5, config=config) as switch:
        atm = await switch.atm("ATM001")
        original = await withdrawal_answered_91(switch, atm)
        assert len(switch.authorization.financial.journal) == 1
        await trio.sleep(1.2)  # past the hold's expiry
        await sweep_once(switch.authorization.ctx)  # as if the void could not reach PostgreSQL
        assert (await stored(switch.db, original["11"]))["state"] == "presumed_captured"
        await settle_voids(switch)
        row = await stored(switch.db, original["11"])
        assert (row["state"], row["response_code"]) == ("voided", "91")
        assert await switch.balance("ACC1") == (OPENING_ACC1, OPENING_ACC1, 0)
        assert (await atm.send("0200", original)).fields["39"] == "91"
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def _advice_elsewhere_before_the_void(pg_dsn: str, send_advice: str) -> None:
    """A withdrawal answered 91 whose void is owed; a second switch on the same database (which
    does not know the first one's journal) records an advice of it first, moving cash on the
    ledger; then the void is settled. Spec 5.6: the 91 stands and leaves no effect."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        original = await withdrawal_answered_91(switch, atm)
        assert len(switch.authorization.financial.journal) == 1  # the void is owed
        async with running_switch(pg_dsn, deadline_s=1.5, load_fixture=False) as other:
            elsewhere = await other.atm("ATM001", first_stan=700)
            if send_advice == "partial reversal":
                advice, _ = await elsewhere.reverse(original, reason="32", dispensed=40_000)
                moved_to = "partially_reversed"
            else:
                advice = await elsewhere.complete(original)
                moved_to = "completed"
            assert advice.fields["39"] == "00"
        assert (await stored(switch.db, original["11"]))["state"] == moved_to
        assert (await switch.balance("ACC1"))[0] < OPENING_ACC1  # the advice posted cash
        await settle_voids(switch)
        row = await stored(switch.db, original["11"])
        assert (row["state"], row["response_code"]) == ("voided", "91")
        assert await switch.balance("ACC1") == (OPENING_ACC1, OPENING_ACC1, 0)
        assert not await switch.db.fetch("SELECT * FROM ledger_check_invariants()")


async def test_a_partial_reversal_recorded_before_the_void_is_undone(pg_dsn: str) -> None:
    """Seed 20265028 (migration 0323): a 0420 reason 32 of a request told only 91, recorded
    before the void, left 00 and the reversal's field 95 posted."""
    await _advice_elsewhere_before_the_void(pg_dsn, "partial reversal")


async def test_a_completion_recorded_before_the_void_is_undone(pg_dsn: str) -> None:
    """The same with a 0220: the terminal was told 91, so the completion it sends anyway
    posts nothing in the end (migration 0323)."""
    await _advice_elsewhere_before_the_void(pg_dsn, "completion")
