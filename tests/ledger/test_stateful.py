"""Random sequences of hold / capture / release / reverse / transfer / sweep, with repeats
and key reuse, against PostgresLedger on a real PostgreSQL, checked step by step against a
deliberately simple model: balances match, money is conserved, available never goes below
zero except through a flagged correcting entry, every hold resolves once, repeats return
the first result, a reused key with other arguments is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ledger_adapter import DailyLimit, IdempotencyConflict, cash_account_id
from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import open_database

CURRENCY = "156"
OPENING = {"A": 10_000, "B": 5_000}
NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
PAST, FUTURE = NOW - dt.timedelta(minutes=1), NOW + dt.timedelta(minutes=10)
LIMIT = DailyLimit("card-A", NOW.date(), amount_max=8_000)
TABLES = (
    "ledger_accounts, ledger_entries, ledger_legs, ledger_holds, ledger_idempotency,"
    " ledger_daily_counters"
)


class LedgerThread:
    """A Trio run in a thread hosting the ledger, so sync hypothesis rules can call it."""

    def __init__(self, dsn: str) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main, dsn), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    async def _main(self, dsn: str) -> None:
        self._stop = trio.Event()
        async with open_database(dsn, pool_size_min=1, pool_size_max=4) as db:
            self.db = db
            self.ledger = PostgresLedger(db)
            self.token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return await fn(*args, **kwargs)

        return trio.from_thread.run(run, trio_token=self.token)

    def close(self) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self.token)
        self._thread.join(30)


@dataclasses.dataclass
class ModelHold:
    account: str
    counterparty: str
    direction: str
    amount: int
    expiry_action: str
    expired: bool
    limited: bool
    state: str = "open"
    captured: int = 0
    reversed: int = 0


class LedgerMachine(RuleBasedStateMachine):
    thread: LedgerThread  # set by the test

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.balance = dict(OPENING) | {cash_account_id(CURRENCY): 0}
        self.model_holds: dict[int, ModelHold] = {}
        self.history: list[tuple[str, Callable[[], Any], Any]] = []
        self.counted = 0  # what card-A's daily counter should hold
        self.flagged: set[str] = set()
        self.keys = 0

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        return self.thread.call(fn, *args, **kwargs)

    def key(self) -> str:
        self.keys += 1
        return f"k{self.keys}"

    def remember(self, key: str, call: Callable[[], Any], result: Any) -> None:
        self.history.append((key, call, result))

    @initialize()
    def fresh_database(self) -> None:
        ledger = self.thread.ledger
        self.run(
            self.thread.db.execute, f"TRUNCATE {TABLES}; ALTER SEQUENCE ledger_hold_ids RESTART"
        )
        for account, opening in OPENING.items():
            self.run(ledger.open_account, account, name=account, currency=CURRENCY, balance=opening)

    def available(self, account: str) -> int:
        held = sum(
            h.amount for h in self.model_holds.values()
            if h.account == account and h.state == "open" and h.direction == "debit"
        )  # fmt: skip
        return self.balance[account] - held

    @rule(
        target=holds, account=st.sampled_from(["A", "B"]), amount=st.integers(1, 6_000),
        direction=st.sampled_from(["debit", "credit"]), expired=st.booleans(),
        limited=st.booleans(),
    )  # fmt: skip
    def hold(
        self, account: str, amount: int, direction: str, expired: bool, limited: bool
    ) -> int | None:
        ledger, key = self.thread.ledger, self.key()
        limited = limited and account == "A" and direction == "debit"
        action = "capture" if direction == "debit" else "release"

        def call() -> Any:
            return self.run(
                ledger.hold, key, account_id=account, amount=amount, direction=direction,
                expires_at=PAST if expired else FUTURE, expiry_action=action,
                daily_limit=LIMIT if limited else None,
            )  # fmt: skip

        result = call()
        if limited and self.counted + amount > 8_000:
            expected = "daily_amount_exceeded"
        elif direction == "debit" and self.available(account) < amount:
            expected = "insufficient_funds"
        else:
            expected = "approved"
        assert result.status == expected
        self.remember(key, call, result)
        if not result.approved:
            return None
        cash = cash_account_id(CURRENCY)
        self.model_holds[result.hold_id] = ModelHold(
            account, cash, direction, amount, action, expired, limited
        )
        self.counted += amount if limited else 0
        return int(result.hold_id)

    @rule(target=holds, account=st.sampled_from(["A", "B"]), extra=st.sampled_from([0, 1]))
    def hold_all_available(self, account: str, extra: int) -> int | None:
        """Boundaries: exactly the available amount is approved, one more is not."""
        amount = self.available(account) + extra
        if amount <= 0:
            return None
        return self.hold(account, amount, "debit", expired=False, limited=False)

    def close(self, hold: ModelHold, captured: int) -> None:
        sign = -1 if hold.direction == "debit" else 1
        self.balance[hold.account] += sign * captured
        self.balance[hold.counterparty] -= sign * captured
        if hold.limited:
            self.counted -= hold.amount - captured
        hold.state, hold.captured = ("captured" if captured else "released"), captured

    @rule(hold_id=holds, part=st.one_of(st.none(), st.integers(0, 7_000)))
    def capture(self, hold_id: int | None, part: int | None) -> None:
        if hold_id is None:
            return
        ledger, key, hold = self.thread.ledger, self.key(), self.model_holds[hold_id]

        def call() -> Any:
            return self.run(ledger.capture, key, hold_id=hold_id, amount=part)

        result = call()
        self.remember(key, call, result)
        amount = hold.amount if part is None else part
        if hold.state != "open":
            assert result.status == (
                "already_captured" if hold.state == "captured" else "already_released"
            )
        elif amount > hold.amount:
            assert result.status == "amount_exceeds_hold"
        else:
            assert (result.status, result.captured_amount) == ("captured", amount)
            self.close(hold, amount)

    @rule(hold_id=holds)
    def release(self, hold_id: int | None) -> None:
        if hold_id is None:
            return
        ledger, key, hold = self.thread.ledger, self.key(), self.model_holds[hold_id]

        def call() -> Any:
            return self.run(ledger.release, key, hold_id=hold_id)

        result = call()
        self.remember(key, call, result)
        if hold.state == "open":
            assert (result.status, result.released_amount) == ("released", hold.amount)
            self.close(hold, 0)
        else:
            assert result.status != "released"

    @rule(hold_id=holds, part=st.one_of(st.none(), st.integers(0, 7_000)))
    def reverse(self, hold_id: int | None, part: int | None) -> None:
        if hold_id is None:
            return
        ledger, key, hold = self.thread.ledger, self.key(), self.model_holds[hold_id]

        def call() -> Any:
            return self.run(ledger.reverse, key, hold_id=hold_id, amount=part)

        result = call()
        self.remember(key, call, result)
        net = hold.captured - hold.reversed
        amount = net if part is None else part
        if hold.state != "captured":
            assert result.status == "not_captured"
            return
        if amount > net:
            assert result.status == "amount_exceeds_captured"
            return
        sign = 1 if hold.direction == "debit" else -1
        debited = hold.counterparty if sign == 1 else hold.account
        overdraws = debited in OPENING and self.available(debited) - amount < 0
        assert (result.status, result.reversed_amount, result.reconciliation) == (
            "reversed",
            amount,
            overdraws,
        )
        self.balance[hold.account] += sign * amount
        self.balance[hold.counterparty] -= sign * amount
        hold.reversed += amount
        if hold.limited:
            self.counted -= amount
        if overdraws:
            self.flagged.add(debited)

    @rule(target=holds, source=st.sampled_from(["A", "B"]), amount=st.integers(1, 8_000))
    def transfer(self, source: str, amount: int) -> int | None:
        ledger, key = self.thread.ledger, self.key()
        target = "B" if source == "A" else "A"

        def call() -> Any:
            return self.run(
                ledger.transfer, key, from_account=source, to_account=target, amount=amount
            )

        result = call()
        self.remember(key, call, result)
        expected = "approved" if self.available(source) >= amount else "insufficient_funds"
        assert result.status == expected
        if not result.approved:
            return None
        self.balance[source] -= amount
        self.balance[target] += amount
        hold = ModelHold(
            source, target, "debit", amount, "capture", False, False, "captured", amount
        )
        self.model_holds[result.hold_id] = hold
        return int(result.hold_id)

    @rule()
    def sweep(self) -> None:
        swept = self.run(self.thread.ledger.sweep_expired, NOW)
        due = [h for h in self.model_holds.values() if h.state == "open" and h.expired]
        assert swept == len(due)
        for hold in due:
            self.close(hold, hold.amount if hold.expiry_action == "capture" else 0)

    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        if not self.history:
            return
        key, call, first = data.draw(st.sampled_from(self.history))
        assert call() == first, f"repeat of {key} changed its result"

    @rule(data=st.data())
    def reuse_key_with_other_arguments(self, data: st.DataObject) -> None:
        if not self.history:
            return
        key, _, _ = data.draw(st.sampled_from(self.history))
        try:
            self.run(
                self.thread.ledger.hold, key, account_id="A", amount=7_777, direction="credit",
                expires_at=FUTURE, expiry_action="release",
            )  # fmt: skip
        except IdempotencyConflict:
            return
        raise AssertionError(f"key {key} reused with other arguments was accepted")

    @invariant()
    def balances_match_the_model(self) -> None:
        ledger = self.thread.ledger
        for account in ("A", "B"):
            balance = self.run(ledger.balance, account)
            assert balance.ledger == self.balance[account]
            assert balance.available == self.available(account)
            if balance.available < 0:
                assert account in self.flagged
        cash = self.run(ledger.balance, cash_account_id(CURRENCY)).ledger
        assert cash == self.balance[cash_account_id(CURRENCY)]
        # Conservation: what the customers lost, the cash position gained, and back.
        assert sum(self.balance.values()) == sum(OPENING.values())
        self.run(ledger.check_invariants)


def test_random_operation_sequences_match_the_model(pg_dsn: str) -> None:
    thread = LedgerThread(pg_dsn)
    try:
        LedgerMachine.thread = thread
        run_state_machine_as_test(
            LedgerMachine, settings=settings(max_examples=60, stateful_step_count=40)
        )
    finally:
        thread.close()
