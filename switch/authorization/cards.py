"""Card records in PostgreSQL: lookup by keyed PAN hash, PIN try counter, status changes.

The PAN never reaches this table in clear (see docs/authorization.md, card data storage).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from switch.authorization.outcomes import Decline, Outcome
from switch.db.runtime import Database

CARD_STATUSES = ("active", "lost", "stolen", "closed", "blocked")


@dataclass(frozen=True, slots=True)
class CardRecord:
    card_id: int
    pan_masked: str
    expiry: str
    status: str
    account_id: str
    pin_verification: dict[str, Any]
    pin_tries: int
    limits: dict[str, Any]
    # The worst of lost/stolen/closed ever reported (migration 0610); kept whatever follows.
    reported: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the audit log and the CLI: no PAN, no PIN data."""
        return {
            "card_id": self.card_id,
            "pan": self.pan_masked,
            "expiry": self.expiry,
            "status": self.status,
            "account": self.account_id,
            "pin_tries": self.pin_tries,
            "limits": self.limits,
            "reported": self.reported,
        }


def card_from_row(row: asyncpg.Record | None) -> CardRecord | None:
    if row is None:
        return None
    return CardRecord(
        card_id=row["card_id"],
        pan_masked=row["pan_masked"],
        expiry=row["expiry"],
        status=row["status"],
        account_id=row["account_id"],
        pin_verification=json.loads(row["pin_verification"]),
        pin_tries=row["pin_tries"],
        limits=json.loads(row["limits"]),
        reported=row.get("reported"),
    )


async def card_by_pan_hash(db: Database, pan_hash: str) -> CardRecord | None:
    return card_from_row(await db.fetchrow("SELECT * FROM cards WHERE pan_hash = $1", pan_hash))


async def card_by_id(db: Database, card_id: int) -> CardRecord | None:
    return card_from_row(await db.fetchrow("SELECT * FROM cards WHERE card_id = $1", card_id))


def is_expired(expiry: str, today: dt.date) -> bool:
    """A card is valid through the last day of its YYMM month."""
    year, month = 2000 + int(expiry[:2]), int(expiry[2:4])
    return (year, month) < (today.year, today.month)


def check_card(card: CardRecord | None, presented_expiry: str | None, today: dt.date) -> CardRecord:
    """Spec 6 order: 14 not on file, 41/43 lost/stolen, 57 closed, 54 expired, 75 blocked."""
    if card is None:
        raise Decline(Outcome.CARD_NOT_ON_FILE)
    if card.status == "lost":
        raise Decline(Outcome.CARD_LOST)
    if card.status == "stolen":
        raise Decline(Outcome.CARD_STOLEN)
    if card.status == "closed":
        raise Decline(Outcome.CARD_CLOSED)
    expiries = [card.expiry] + ([presented_expiry] if presented_expiry else [])
    if any(is_expired(expiry, today) for expiry in expiries):
        raise Decline(Outcome.CARD_EXPIRED)
    if card.status == "blocked":
        raise Decline(Outcome.CARD_BLOCKED)
    return card


async def record_pin_failure(db: Database, card_id: int, tries_max: int) -> int:
    """Count one wrong PIN; block the card at ``tries_max`` consecutive failures. Returns tries."""
    tries = await db.fetchval(
        "UPDATE cards SET pin_tries = pin_tries + 1, updated_at = now(),"
        " status = CASE WHEN pin_tries + 1 >= $2 AND status = 'active' THEN 'blocked'"
        " ELSE status END WHERE card_id = $1 RETURNING pin_tries",
        card_id, tries_max,
    )
    return int(tries or 0)


async def reset_pin_tries(db: Database, card_id: int) -> None:
    await db.execute(
        "UPDATE cards SET pin_tries = 0, updated_at = now() WHERE card_id = $1 AND pin_tries <> 0",
        card_id,
    )


async def replace_pin_verification(db: Database, card_id: int, verification_json: str) -> None:
    """PIN change: the new verification data replaces the old at once (spec 5.2)."""
    await db.execute(
        "UPDATE cards SET pin_verification = $2, pin_tries = 0, updated_at = now()"
        " WHERE card_id = $1",
        card_id, verification_json,
    )
