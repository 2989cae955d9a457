"""``PostgresLedger``: the durable ledger, with group commit, on ``switch.db.runtime.Database``.

Money-moving calls are batched (see ``group_commit``) into one call of a PL/pgSQL batch
function (``ledger_adapter/migrations/01xx_ledger_*.sql``), i.e. one round trip and one commit
per batch. ``batching=False`` sends every call alone (same functions, same SQL work), which
is the baseline of ``python -m loadtest.ledger``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from ledger_adapter import postgres_batches as pb
from ledger_adapter import requests as rq
from ledger_adapter.deadline import call_with_deadline
from ledger_adapter.errors import (
    AccountConflict,
    AccountNotFound,
    HoldNotFound,
    IdempotencyConflict,
    InvalidRequest,
    InvariantViolation,
    LedgerUnavailable,
)
from ledger_adapter.group_commit import GroupCommitter
from ledger_adapter.memory_book import Decision
from ledger_adapter.model import (
    Account,
    Balance,
    CaptureResult,
    DailyLimit,
    Hold,
    HoldResult,
    ReleaseResult,
    ReverseResult,
    StatementEntry,
    TransferResult,
)
from switch.db.runtime import Database, DatabaseUnavailable

T = TypeVar("T")

# Largest batch per round trip: big enough to amortise a commit over hundreds of holds,
# small enough that one batch stays a few milliseconds of PostgreSQL time.
batch_size_max_default = 512
# Batches in flight per operation: one executing while the next one fills.
batches_in_flight_max_default = 2
# Requests waiting for a batch; beyond this the ledger answers LedgerUnavailable (`91`) at
# once rather than letting latency grow (DESIGN 6, overload).
queue_length_max_default = 20_000
# Expired holds resolved per sweeper transaction.
sweep_batch_size = 500


class PostgresLedger:
    """A ``Ledger`` on PostgreSQL. Create it inside the Trio run that opened ``db``."""

    def __init__(
        self,
        db: Database,
        *,
        batching: bool = True,
        batch_size_max: int = batch_size_max_default,
        batches_in_flight_max: int = batches_in_flight_max_default,
        queue_length_max: int = queue_length_max_default,
        call_timeout_s: float | None = None,
    ) -> None:
        self._db = db
        self.call_timeout_s = db.call_timeout_s if call_timeout_s is None else call_timeout_s
        if not batching:
            batch_size_max = 1
            batches_in_flight_max = max(1, int(db.pool.get_max_size()))
        settings = {
            "batch_size_max": batch_size_max,
            "batches_in_flight_max": batches_in_flight_max,
            "queue_length_max": queue_length_max,
        }
        self.holds: GroupCommitter[pb.HoldRequest, Decision] = GroupCommitter(
            self._flush(pb.HOLD_QUERY, pb.hold_columns), name="holds", **settings
        )
        self.settlements: GroupCommitter[pb.SettleRequest, Decision] = GroupCommitter(
            self._flush(pb.SETTLE_QUERY, pb.settle_columns), name="settlements", **settings
        )
        self.transfers: GroupCommitter[pb.TransferRequest, Decision] = GroupCommitter(
            self._flush(pb.TRANSFER_QUERY, pb.transfer_columns), name="transfers", **settings
        )

    def _flush(
        self, query: str, columns: Callable[[Sequence[Any]], list[list[Any]]]
    ) -> Callable[[Sequence[Any]], Awaitable[list[Decision | Exception]]]:
        async def flush(batch: Sequence[Any]) -> list[Decision | Exception]:
            return await pb.run_batch(
                self._db, query, columns(batch), timeout_s=self.call_timeout_s
            )

        return flush

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return await call_with_deadline(self._run, fn, *args, deadline_s=self.call_timeout_s)

    async def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            return await self._db.run(fn, *args, timeout_s=self.call_timeout_s)
        except DatabaseUnavailable as exc:
            raise LedgerUnavailable(str(exc)) from exc

    # -- accounts ---------------------------------------------------------------------------
    async def open_account(
        self,
        account_id: str,
        *,
        name: str,
        currency: str,
        balance: int = 0,
        status: str = "active",
        kind: str = "customer",
    ) -> Account:
        rq.check_account_fields(currency, balance, status, kind)
        query = "SELECT * FROM ledger_open_account($1, $2, $3, $4, $5, $6)"
        try:
            row = await self._call(
                _fetchrow, query, account_id, name, currency, balance, status, kind
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == "LD003":
                raise AccountConflict(str(exc)) from exc
            raise
        return _account(row)

    async def set_account_status(self, account_id: str, status: str) -> Account:
        rq.check_status(status)
        query = "UPDATE ledger_accounts SET status = $2 WHERE account_id = $1 RETURNING *"
        row = await self._call(_fetchrow, query, account_id, status)
        if row is None:
            raise AccountNotFound(account_id)
        return _account(row)

    async def get_account(self, account_id: str) -> Account:
        row = await self._call(
            _fetchrow, "SELECT * FROM ledger_accounts WHERE account_id = $1", account_id
        )
        if row is None:
            raise AccountNotFound(account_id)
        return _account(row)

    # -- money ------------------------------------------------------------------------------
    async def hold(
        self,
        key: str,
        *,
        account_id: str,
        amount: int,
        direction: str,
        expires_at: dt.datetime,
        expiry_action: str,
        daily_limit: DailyLimit | None = None,
        reference: Mapping[str, Any] | None = None,
        counterparty: str | None = None,
    ) -> HoldResult:
        rq.check_key(key)
        rq.check_amount(amount)
        rq.check_direction(direction)
        rq.check_expiry(expires_at, expiry_action)
        rq.check_daily_limit(daily_limit)
        fp = rq.hold_fingerprint(
            account_id, amount, direction, expiry_action, daily_limit, counterparty
        )
        request = pb.HoldRequest(
            key, fp, account_id, counterparty, amount, direction, expires_at, expiry_action,
            daily_limit, _description(reference), pb.reference_text(reference),
        )  # fmt: skip
        decision = _checked(key, await self.holds.submit(key, request))
        if decision.status == "approved" and decision.balance is not None:
            # A credit hold leaves available unchanged, so an account already overdrawn by a
            # flagged correcting entry may still take a pending deposit.
            _check_available(
                decision.balance, f"hold {decision.hold_id}", debit=direction == "debit"
            )
        return HoldResult(decision.status, decision.hold_id, decision.balance)

    async def capture(self, key: str, *, hold_id: int, amount: int | None = None) -> CaptureResult:
        rq.check_key(key)
        amount = rq.check_optional_amount(amount)
        decision = await self._settle(key, "capture", hold_id, amount)
        return CaptureResult(
            decision.status, hold_id, decision.amount_a, decision.amount_b, decision.balance
        )

    async def release(self, key: str, *, hold_id: int) -> ReleaseResult:
        rq.check_key(key)
        decision = await self._settle(key, "release", hold_id, None)
        return ReleaseResult(decision.status, hold_id, decision.amount_a, decision.balance)

    async def reverse(self, key: str, *, hold_id: int, amount: int | None = None) -> ReverseResult:
        rq.check_key(key)
        amount = rq.check_optional_amount(amount)
        decision = await self._settle(key, "reverse", hold_id, amount)
        return ReverseResult(
            decision.status, hold_id, decision.amount_a, decision.flag, decision.balance
        )

    async def _settle(self, key: str, operation: str, hold_id: int, amount: int | None) -> Decision:
        if isinstance(hold_id, bool) or not isinstance(hold_id, int):
            raise InvalidRequest(f"hold id must be an integer, got {hold_id!r}")
        parts = (hold_id,) if operation == "release" else (hold_id, amount)
        fp = rq.fingerprint(operation, *parts)
        request = pb.SettleRequest(key, fp, operation, hold_id, amount)
        decision = _checked(key, await self.settlements.submit(key, request))
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return decision

    async def transfer(
        self,
        key: str,
        *,
        from_account: str,
        to_account: str,
        amount: int,
        daily_limit: DailyLimit | None = None,
        reference: Mapping[str, Any] | None = None,
    ) -> TransferResult:
        rq.check_key(key)
        rq.check_amount(amount)
        rq.check_daily_limit(daily_limit)
        rq.check_transfer_accounts(from_account, to_account)
        fp = rq.transfer_fingerprint(from_account, to_account, amount, daily_limit)
        request = pb.TransferRequest(
            key, fp, from_account, to_account, amount, daily_limit, _description(reference),
            pb.reference_text(reference),
        )  # fmt: skip
        decision = _checked(key, await self.transfers.submit(key, request))
        if decision.status == "approved" and decision.balance is not None:
            _check_available(decision.balance, f"transfer {decision.hold_id}")
        return TransferResult(decision.status, decision.hold_id, decision.balance)

    async def release_by_key(self, hold_key: str) -> str:
        rq.check_key(hold_key)
        return str(await self._call(_fetchval, "SELECT ledger_release_by_key($1)", hold_key))

    # -- queries ----------------------------------------------------------------------------
    async def balance(self, account_id: str) -> Balance:
        query = (
            "SELECT a.kind, a.balance, a.held, a.pending_credit,"
            " CASE WHEN a.kind <> 'customer' THEN (SELECT coalesce(sum(amount), 0)"
            " FROM ledger_legs WHERE account_id = a.account_id) END AS posted"
            " FROM ledger_accounts a WHERE a.account_id = $1"
        )
        row = await self._call(_fetchrow, query, account_id)
        if row is None:
            raise AccountNotFound(account_id)
        if row["kind"] != "customer":
            posted = int(row["posted"])
            return Balance(posted, posted, 0, 0)
        return Balance(
            row["balance"], row["balance"] - row["held"], row["held"], row["pending_credit"]
        )

    async def statement(self, account_id: str, limit: int = 10) -> list[StatementEntry]:
        rq.check_statement_limit(limit)
        await self.get_account(account_id)
        query = (
            "SELECT posted_at, amount, description FROM ledger_legs"
            " WHERE account_id = $1 ORDER BY leg_id DESC LIMIT $2"
        )
        rows = await self._call(_fetch, query, account_id, limit)
        return [
            StatementEntry(
                r["posted_at"], "C" if r["amount"] > 0 else "D", abs(r["amount"]), r["description"]
            )
            for r in rows
        ]

    async def get_hold(self, hold_id: int) -> Hold:
        row = await self._call(_fetchrow, "SELECT * FROM ledger_holds WHERE hold_id = $1", hold_id)
        if row is None:
            raise HoldNotFound(hold_id)
        return Hold(**{field: row[field] for field in _HOLD_FIELDS})

    async def sweep_expired(self, now: dt.datetime) -> int:
        """Resolve expired holds in transactions of ``sweep_batch_size``; safe to run anywhere."""
        total = 0
        while True:
            done = int(
                await self._call(
                    _fetchval, "SELECT ledger_sweep_expired($1, $2)", now, sweep_batch_size
                )
            )
            total += done
            if done < sweep_batch_size:
                return total

    async def check_invariants(self) -> None:
        rows = await self._call(_fetch, "SELECT * FROM ledger_check_invariants()")
        if rows:
            raise InvariantViolation("; ".join(str(r[0]) for r in rows[:10]))


_HOLD_FIELDS = tuple(field.name for field in dataclasses.fields(Hold))


def _checked(key: str, decision: Decision) -> Decision:
    if decision.status == "idempotency_conflict":
        raise IdempotencyConflict(key)
    return decision


def _check_available(balance: Balance, what: str, *, debit: bool = True) -> None:
    """Second check, after reading back: a debit approval never leaves available below zero."""
    if (debit and balance.available < 0) or balance.held < 0 or balance.pending_credit < 0:
        raise InvariantViolation(f"{what} left a negative balance: {balance}")


def _description(reference: Mapping[str, Any] | None) -> str | None:
    if reference is None or not reference.get("description"):
        return None
    return str(reference["description"])


def _account(row: Any) -> Account:
    return Account(row["account_id"], row["name"], row["currency"], row["status"], row["kind"])


async def _fetchrow(connection: asyncpg.Connection, query: str, *args: Any) -> Any:
    return await connection.fetchrow(query, *args)


async def _fetchval(connection: asyncpg.Connection, query: str, *args: Any) -> Any:
    return await connection.fetchval(query, *args)


async def _fetch(connection: asyncpg.Connection, query: str, *args: Any) -> list[Any]:
    return list(await connection.fetch(query, *args))
