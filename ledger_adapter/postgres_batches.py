"""Calling the batch functions of the ledger migrations, one round trip per batch.

Each ``*_columns`` function turns a batch of requests into the column arrays the PL/pgSQL
function takes; ``run_batch`` sends them, retries the rare transient conflicts, and when an
unexpected SQL error hits a multi-request batch, reruns its requests one by one so the one
bad request fails alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from ledger_adapter.errors import LedgerError, LedgerUnavailable
from ledger_adapter.memory_book import Decision
from ledger_adapter.model import Balance, DailyLimit
from switch.db.runtime import Database, DatabaseUnavailable

# LD001 idempotency key raced with another process, 40P01 deadlock, 40001 serialization:
# the batch did nothing; send it again.
retryable_sqlstates = frozenset({"LD001", "40P01", "40001"})
# A batch is retried this many times before its callers get LedgerUnavailable.
batch_attempts_max = 3

HOLD_QUERY = (
    "SELECT * FROM ledger_hold_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)
SETTLE_QUERY = "SELECT * FROM ledger_settle_batch($1, $2, $3, $4, $5)"
TRANSFER_QUERY = "SELECT * FROM ledger_transfer_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"


@dataclasses.dataclass(frozen=True, slots=True)
class HoldRequest:
    key: str
    fingerprint: str
    account_id: str
    counterparty: str | None
    amount: int
    direction: str
    expires_at: dt.datetime
    expiry_action: str
    daily_limit: DailyLimit | None
    description: str | None
    reference: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class SettleRequest:
    key: str
    fingerprint: str
    operation: str  # capture | release | reverse
    hold_id: int
    amount: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class TransferRequest:
    key: str
    fingerprint: str
    from_account: str
    to_account: str
    amount: int
    daily_limit: DailyLimit | None
    description: str | None
    reference: str | None


def hold_columns(batch: Sequence[HoldRequest]) -> list[list[Any]]:
    return [
        [r.key for r in batch],
        [r.fingerprint for r in batch],
        [r.account_id for r in batch],
        [r.counterparty for r in batch],
        [r.amount for r in batch],
        [r.direction for r in batch],
        [r.expires_at for r in batch],
        [r.expiry_action for r in batch],
        *_limit_columns([r.daily_limit for r in batch]),
        [r.description for r in batch],
        [r.reference for r in batch],
    ]


def settle_columns(batch: Sequence[SettleRequest]) -> list[list[Any]]:
    return [
        [r.key for r in batch],
        [r.fingerprint for r in batch],
        [r.operation for r in batch],
        [r.hold_id for r in batch],
        [r.amount for r in batch],
    ]


def transfer_columns(batch: Sequence[TransferRequest]) -> list[list[Any]]:
    return [
        [r.key for r in batch],
        [r.fingerprint for r in batch],
        [r.from_account for r in batch],
        [r.to_account for r in batch],
        [r.amount for r in batch],
        *_limit_columns([r.daily_limit for r in batch]),
        [r.description for r in batch],
        [r.reference for r in batch],
    ]


def _limit_columns(limits: Sequence[DailyLimit | None]) -> list[list[Any]]:
    return [
        [None if x is None else x.counter_id for x in limits],
        [None if x is None else x.day for x in limits],
        [None if x is None else x.amount_max for x in limits],
        [None if x is None else x.count_max for x in limits],
    ]


def reference_text(reference: Mapping[str, Any] | None) -> str | None:
    return None if reference is None else json.dumps(dict(reference), sort_keys=True, default=str)


def decision_of(row: Any) -> Decision:
    """A ``ledger_result`` row as a ``Decision``."""
    ledger = row["ledger_balance"]
    balance = None
    if ledger is not None:
        held = row["held"]
        balance = Balance(ledger, ledger - held, held, row["pending_credit"])
    return Decision(
        status=row["status"],
        hold_id=row["hold_id"],
        amount_a=row["amount_a"] or 0,
        amount_b=row["amount_b"] or 0,
        balance=balance,
        flag=bool(row["flag"]),
    )


async def _fetch(connection: asyncpg.Connection, query: str, *args: Any) -> list[Any]:
    return list(await connection.fetch(query, *args))


async def run_batch(
    db: Database, query: str, columns: list[list[Any]], timeout_s: float
) -> list[Decision | Exception]:
    """Send one batch; per request a ``Decision`` or the exception to raise to its caller."""
    size = len(columns[0])
    try:
        rows = await _send(db, query, columns, timeout_s=timeout_s)
    except asyncpg.PostgresError as exc:
        if size == 1:
            return [LedgerError(f"ledger rejected the request: {exc.__class__.__name__}: {exc}")]
        return await _one_by_one(db, query, columns, timeout_s=timeout_s)
    except LedgerUnavailable as exc:
        return [LedgerUnavailable(str(exc)) for _ in range(size)]
    if len(rows) != size:
        return [LedgerError(f"ledger returned {len(rows)} results for {size}") for _ in range(size)]
    return [decision_of(row) for row in rows]


async def _one_by_one(
    db: Database, query: str, columns: list[list[Any]], *, timeout_s: float
) -> list[Decision | Exception]:
    outcomes: list[Decision | Exception] = []
    for index in range(len(columns[0])):
        single = [[column[index]] for column in columns]
        outcomes.extend(await run_batch(db, query, single, timeout_s))
    return outcomes


async def _send(
    db: Database, query: str, columns: list[list[Any]], *, timeout_s: float
) -> list[Any]:
    for attempt in range(1, batch_attempts_max + 1):
        try:
            return await db.run(_fetch, query, *columns, timeout_s=timeout_s)
        except DatabaseUnavailable as exc:
            raise LedgerUnavailable(str(exc)) from exc
        except asyncpg.PostgresError as exc:
            if exc.sqlstate not in retryable_sqlstates or attempt == batch_attempts_max:
                if exc.sqlstate in retryable_sqlstates:
                    raise LedgerUnavailable(f"ledger batch kept conflicting: {exc}") from exc
                raise
    raise AssertionError("unreachable")
