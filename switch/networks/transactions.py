"""PostgreSQL access for ``network_transactions``: one row per 0200 sent to a card network.

The row is written (``pending``) before the request leaves, so whatever happens next (an
answer, a timeout, a crash) the switch can name the request to the network again. The PAN is
stored only LMK-encrypted and masked; the PIN block never.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from switch.db.runtime import Database

STATES = ("pending", "approved", "declined", "unanswered", "stand_in", "stand_in_declined",
          "reversed")


@dataclass(frozen=True, slots=True)
class NewTransaction:
    network: str
    terminal_id: str
    stan: str
    transmission_dt: str
    acquirer_id: str
    transmitted_at: dt.datetime
    pan_encrypted: str
    pan_masked: str
    expiry: str | None
    processing_code: str
    amount_minor: int
    currency: str
    from_account: str | None
    to_account: str | None
    acceptor: Mapping[str, str]
    pan_hash: str | None = None  # keyed hash: counts a card's stand-in approvals


@dataclass(frozen=True, slots=True)
class TransactionRow:
    transaction_id: int
    network: str
    terminal_id: str
    transmitted_at: dt.datetime
    pan_encrypted: str
    expiry: str | None
    processing_code: str
    amount_minor: int
    currency: str
    acquirer_id: str
    stan: str
    from_account: str | None
    to_account: str | None
    acceptor: dict[str, str]
    state: str
    response_code: str | None
    authorization_id: str | None
    network_reference: str | None


def row_to_transaction(row: asyncpg.Record | Mapping[str, Any]) -> TransactionRow:
    acceptor = row["acceptor"]
    return TransactionRow(
        transaction_id=row["transaction_id"],
        network=row["network"],
        terminal_id=row["terminal_id"],
        transmitted_at=row["transmitted_at"],
        pan_encrypted=row["pan_encrypted"],
        expiry=row["expiry"],
        processing_code=row["processing_code"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        acquirer_id=row["acquirer_id"],
        stan=row["stan"],
        from_account=row["from_account"],
        to_account=row["to_account"],
        acceptor=json.loads(acceptor) if isinstance(acceptor, str) else dict(acceptor),
        state=row["state"],
        response_code=row["response_code"],
        authorization_id=row["authorization_id"],
        network_reference=row["network_reference"],
    )


async def open_transaction(db: Database, new: NewTransaction) -> int:
    """Insert the ``pending`` row (durable before the request is sent); its id."""
    transaction_id = await db.fetchval(
        "INSERT INTO network_transactions (network, terminal_id, stan, transmission_dt,"
        " acquirer_id, transmitted_at, pan_encrypted, pan_masked, expiry, processing_code,"
        " amount_minor, currency, from_account, to_account, acceptor, pan_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        " RETURNING transaction_id",
        new.network, new.terminal_id, new.stan, new.transmission_dt, new.acquirer_id,
        new.transmitted_at, new.pan_encrypted, new.pan_masked, new.expiry, new.processing_code,
        new.amount_minor, new.currency, new.from_account, new.to_account,
        json.dumps(dict(new.acceptor)), new.pan_hash,
    )
    return int(transaction_id)


async def stand_in_usage_today(
    db: Database, network: str, pan_hash: str, now: dt.datetime
) -> tuple[int, int]:
    """(count, amount) of the card's stand-in approvals at ``network`` on ``now``'s UTC day."""
    start = dt.datetime.combine(now.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    row = await db.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount_minor), 0) AS total FROM network_transactions"
        " WHERE pan_hash = $1 AND network = $2 AND state = 'stand_in'"
        " AND created_at >= $3 AND created_at < $3 + interval '1 day'",
        pan_hash, network, start,
    )
    return int(row["n"]), int(row["total"])


async def record_answer(
    db: Database,
    transaction_id: int,
    *,
    state: str,
    response_code: str | None,
    authorization_id: str | None = None,
    network_reference: str | None = None,
) -> None:
    if state not in STATES:
        raise ValueError(f"unknown network transaction state {state!r}")
    await db.execute(
        "UPDATE network_transactions SET state = $2, response_code = $3, authorization_id = $4,"
        " network_reference = $5, answered_at = now() WHERE transaction_id = $1",
        transaction_id, state, response_code, authorization_id, network_reference,
    )


async def load_transaction(db: Database, transaction_id: int) -> TransactionRow | None:
    row = await db.fetchrow(
        "SELECT * FROM network_transactions WHERE transaction_id = $1", transaction_id
    )
    return None if row is None else row_to_transaction(row)


async def stale_pending(db: Database, created_before: dt.datetime, limit: int) -> list[int]:
    """Requests whose process died before recording the answer (they need a reversal)."""
    rows = await db.fetch(
        "SELECT transaction_id FROM network_transactions WHERE state = 'pending'"
        " AND created_at < $1 ORDER BY created_at LIMIT $2",
        created_before, limit,
    )
    return [int(row["transaction_id"]) for row in rows]


def _utc_day(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


async def wrong_pin_tries_today(db: Database, pan_hash: str, now: dt.datetime) -> int:
    """Wrong PINs this card has had in stand-in on ``now``'s UTC day."""
    value = await db.fetchval(
        "SELECT wrong_tries FROM stand_in_pin_tries WHERE pan_hash = $1 AND day = $2",
        pan_hash, _utc_day(now),
    )
    return 0 if value is None else int(value)


async def count_wrong_pin(db: Database, pan_hash: str, now: dt.datetime) -> int:
    """One more wrong stand-in PIN for the card today; the day's count after it."""
    value = await db.fetchval(
        "INSERT INTO stand_in_pin_tries (pan_hash, day, wrong_tries) VALUES ($1, $2, 1)"
        " ON CONFLICT (pan_hash, day) DO UPDATE"
        " SET wrong_tries = stand_in_pin_tries.wrong_tries + 1 RETURNING wrong_tries",
        pan_hash, _utc_day(now),
    )
    return int(value)


async def approved_not_answered_00(
    db: Database, undecided_before: dt.datetime, limit: int
) -> list[int]:
    """Network approvals (or stand-in approvals) the terminal was not answered ``00`` for:
    they must be reversed (``auth_network_unanswered_approvals``, migration 0703)."""
    rows = await db.fetch(
        "SELECT auth_network_unanswered_approvals($1, $2) AS transaction_id",
        undecided_before, limit,
    )
    return [int(row["transaction_id"]) for row in rows]


_REVERSE_APPROVED = (
    "WITH moved AS (UPDATE network_transactions SET state = 'reversed'"
    " WHERE {where} AND state IN ('approved', 'stand_in')"
    " RETURNING transaction_id, network, amount_minor)"
    " INSERT INTO network_advices (transaction_id, network, kind, amount_minor, reason_code)"
    " SELECT transaction_id, network, 'reversal', amount_minor, '68' FROM moved"
    " ON CONFLICT (transaction_id, kind) DO NOTHING RETURNING advice_id"
)


async def reverse_approved(db: Database, transaction_id: int) -> bool:
    """``approved`` (or ``stand_in``) -> ``reversed`` and its 0420 (reason 68) queued, in one
    statement.

    One statement, so a crash leaves either both (the sender delivers it) or neither (the
    next sweep finds the approval again). False when another sweep got there first."""
    advice_id = await db.fetchval(
        _REVERSE_APPROVED.format(where="transaction_id = $1"), transaction_id
    )
    return advice_id is not None
