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

STATES = ("pending", "approved", "declined", "unanswered", "stand_in")


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
