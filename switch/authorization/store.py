"""PostgreSQL access for idempotency records, stored responses and reversal markers.

Each function is one round trip (one ``Database.run``). Rows of ``auth_messages`` are keyed by
the message key of spec 5.5; a row is claimed ``pending`` before any effect and finished
``done`` with the response fields, which are re-sent for every repeat.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from switch.authorization.request import MessageKey, OriginalData
from switch.db.runtime import Database

_KEY_WHERE = (
    "message_class = $1 AND terminal_id = $2 AND stan = $3 AND transmission_dt = $4"
    " AND acquirer_id = $5"
)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    record_id: int
    key: MessageKey
    fingerprint: str
    state: str
    response_code: str | None
    response_fields: dict[str, str | None] | None
    effect: dict[str, Any] | None
    card_id: int | None
    created_at: dt.datetime

    @property
    def done(self) -> bool:
        return self.state != "claimed"


def _key_args(key: MessageKey) -> tuple[str, str, str, str, str]:
    return (key.message_class, key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id)


def original_key(terminal_id: str, original: OriginalData) -> MessageKey:
    """The 0200 key an advice's field 90 names (spec 5.4: 41 of the advice + 90)."""
    return MessageKey(
        "0200", terminal_id, original.stan, original.transmission_dt, original.acquirer_id
    )


def _record(row: asyncpg.Record | None) -> MessageRecord | None:
    if row is None:
        return None
    fields = row["response_fields"]
    effect = row["effect"]
    return MessageRecord(
        record_id=row["id"],
        key=MessageKey(
            row["message_class"], row["terminal_id"], row["stan"], row["transmission_dt"],
            row["acquirer_id"],
        ),
        fingerprint=row["fingerprint"],
        state=row["state"],
        response_code=row["response_code"],
        response_fields=json.loads(fields) if fields is not None else None,
        effect=json.loads(effect) if effect is not None else None,
        card_id=row["card_id"],
        created_at=row["created_at"],
    )


async def load_record(db: Database, key: MessageKey) -> MessageRecord | None:
    row = await db.fetchrow(f"SELECT * FROM auth_messages WHERE {_KEY_WHERE}", *_key_args(key))
    return _record(row)


async def has_reversal_marker(db: Database, key: MessageKey) -> bool:
    """Spec 5.4: a reversal of this (unknown) original arrived first."""
    found = await db.fetchval(
        "SELECT 1 FROM reversal_markers WHERE terminal_id = $1 AND stan = $2"
        " AND transmission_dt = $3 AND acquirer_id = $4",
        key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id,
    )
    return found is not None


# The card and its ledger account in one read. This reads the ledger's own table (read-only):
# the account's status and currency decide 57/12 before any ledger call, and reading them
# here saves a round trip per 0200. The ledger remains the only writer.
CARD_WITH_ACCOUNT = (
    "SELECT c.*, a.name AS account_name, a.currency AS account_currency,"
    " a.status AS account_status, a.kind AS account_kind"
    " FROM cards c LEFT JOIN ledger_accounts a ON a.account_id = c.account_id"
    " WHERE c.pan_hash = $1"
)


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of :func:`claim` plus what the 0200 pipeline reads in the same round trip."""

    claimed: bool
    record: MessageRecord
    reversal_marker: bool = False
    card_row: asyncpg.Record | None = None


async def claim(
    db: Database, key: MessageKey, *, fingerprint: str, processing_code: str, amount_minor: int,
    pan_hash: str | None = None,
) -> Claim:
    """Insert a pending row for the key (claimed) or return the existing one (not claimed).

    With ``pan_hash`` (a 0200) the reversal marker and the card row are read in the same
    transaction, so a 0200 costs one round trip here. The claim commits with
    ``synchronous_commit = off``: it is only worth keeping if a later, durable commit (the
    ledger's hold, the answer) follows, and that commit flushes the WAL up to it as well.
    """

    async def work(connection: asyncpg.Connection) -> Claim | None:
        async with connection.transaction():
            await connection.execute("SET LOCAL synchronous_commit TO OFF")
            # Every writer of a message key takes its lock first (migration 0320).
            if key.message_class == "0200":
                await connection.execute(
                    "SELECT auth_key_locks(ARRAY[$1], ARRAY[$2], ARRAY[$3], ARRAY[$4])",
                    key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id,
                )
            else:
                await connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || $3"
                    " || ':' || $4 || ':' || $5, 8583))",
                    key.message_class, key.terminal_id, key.stan, key.transmission_dt,
                    key.acquirer_id,
                )
            row = await connection.fetchrow(
                "INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt,"
                " acquirer_id, fingerprint, processing_code, amount_minor)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING *",
                *_key_args(key), fingerprint, processing_code, amount_minor,
            )
            claimed = row is not None
            if not claimed:
                row = await connection.fetchrow(
                    f"SELECT * FROM auth_messages WHERE {_KEY_WHERE}", *_key_args(key)
                )
            record = _record(row)
            if record is None:
                return None  # deleted by retention between the statements: try again
            if not claimed or pan_hash is None:
                return Claim(claimed, record)
            marker = await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM reversal_markers WHERE terminal_id = $1"
                " AND stan = $2 AND transmission_dt = $3 AND acquirer_id = $4)",
                key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id,
            )
            card = await connection.fetchrow(CARD_WITH_ACCOUNT, pan_hash)
            return Claim(True, record, bool(marker), card)

    result = await db.run(work)
    if result is None:
        return await claim(db, key, fingerprint=fingerprint, processing_code=processing_code,
                           amount_minor=amount_minor, pan_hash=pan_hash)
    return result


async def take_over_stale(db: Database, key: MessageKey, created_before: dt.datetime) -> bool:
    """Restart the clock of a stale pending row so exactly one caller resolves it."""
    status = await db.execute(
        f"UPDATE auth_messages SET created_at = now() WHERE {_KEY_WHERE}"
        " AND state = 'claimed' AND created_at < $6",
        *_key_args(key), created_before,
    )
    return status.endswith(" 1")


async def finish(
    db: Database,
    key: MessageKey,
    *,
    response_code: str,
    response_fields: Mapping[str, str | None] | None,
    card_id: int | None = None,
    effect: Mapping[str, Any] | None = None,
) -> None:
    """Record the answer durably (before it is sent: spec 5.2 "00 only after commit")."""
    await db.execute(
        "UPDATE auth_messages SET state = auth_state_for(message_class, $6),"
        " response_code = $6, response_fields = $7,"
        f" card_id = $8, effect = $9, answered_at = now() WHERE {_KEY_WHERE}",
        *_key_args(key), response_code, _json_or_none(response_fields), card_id,
        _json_or_none(effect),
    )


def _json_or_none(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), ensure_ascii=False)


async def update_effect(db: Database, key: MessageKey, effect: Mapping[str, Any]) -> None:
    await db.execute(
        f"UPDATE auth_messages SET effect = $6 WHERE {_KEY_WHERE}",
        *_key_args(key), json.dumps(dict(effect)),
    )


async def forget(db: Database, key: MessageKey) -> None:
    """Drop a pending claim whose answer is not recorded (30, 58, 63: spec 5.5)."""
    await db.execute(f"DELETE FROM auth_messages WHERE {_KEY_WHERE} AND state = 'claimed'",
                     *_key_args(key))


async def add_reversal_marker(db: Database, terminal_id: str, original: OriginalData,
                              reversal_stan: str) -> None:
    await db.execute(
        "INSERT INTO reversal_markers (terminal_id, stan, transmission_dt, acquirer_id,"
        " reversal_stan) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        terminal_id, original.stan, original.transmission_dt, original.acquirer_id, reversal_stan,
    )


async def stale_pending(db: Database, created_before: dt.datetime, limit: int) -> list[MessageKey]:
    rows = await db.fetch(
        "SELECT message_class, terminal_id, stan, transmission_dt, acquirer_id"
        " FROM auth_messages WHERE state = 'claimed' AND created_at < $1"
        " ORDER BY created_at LIMIT $2",
        created_before, limit,
    )
    return [MessageKey(*tuple(row)) for row in rows]


async def purge_older_than(db: Database, cutoff: dt.datetime) -> int:
    """Spec 5.5: keys are kept at least 48 hours; older answered rows are deleted."""

    async def work(connection: asyncpg.Connection) -> int:
        status = await connection.execute(
            "DELETE FROM auth_messages WHERE state <> 'claimed' AND created_at < $1",
            cutoff,
        )
        await connection.execute("DELETE FROM reversal_markers WHERE created_at < $1", cutoff)
        return int(status.split()[-1])

    return await db.run(work)
