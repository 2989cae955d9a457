"""Card issuing and card administration (the ``cards`` CLI and ``fixtures load``).

A card is stored as a keyed PAN hash (lookup), an LMK-encrypted PAN, the masked PAN, and PIN
verification data (IBM 3624 offset under the issuer PVK, an LMK handle kept in
``issuer_keys``). Every change writes the audit table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switch.authorization import audit
from switch.authorization.cards import CARD_STATUSES, CardRecord, card_by_pan_hash, mask_pan
from switch.authorization.limits import validate_limits
from switch.db.runtime import Database
from switch.hsm.software import SoftwareHsm
from switch.hsm.verification_data import PinVerificationData

PVK_NAME = "pvk"
PVK_USAGE = "V1"  # IBM 3624 PIN verification key
_PAN = re.compile(r"^[0-9]{12,19}$")
_EXPIRY = re.compile(r"^[0-9]{2}(0[1-9]|1[0-2])$")


class CardAdminError(ValueError):
    """A card request is invalid (bad PAN, expiry, status, unknown card); shown to the operator."""


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card: CardRecord
    created: bool
    pin: str | None  # only from a test-mode PIN mailer


async def issuer_pvk(db: Database, hsm: SoftwareHsm) -> str:
    """The issuer's PIN verification key handle; generated once, kept under the LMK."""
    handle = await db.fetchval("SELECT handle FROM issuer_keys WHERE name = $1", PVK_NAME)
    if handle is not None:
        return str(handle)
    new_handle = await hsm.generate_key(PVK_USAGE, algorithm="T")
    await db.execute(
        "INSERT INTO issuer_keys (name, handle) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        PVK_NAME,
        new_handle,
    )
    return str(await db.fetchval("SELECT handle FROM issuer_keys WHERE name = $1", PVK_NAME))


def check_card_data(pan: str, expiry: str, status: str) -> None:
    if not _PAN.match(pan):
        raise CardAdminError("a PAN is 12-19 digits")
    if not _EXPIRY.match(expiry):
        raise CardAdminError(f"expiry must be YYMM, not {expiry!r}")
    if status not in CARD_STATUSES:
        raise CardAdminError(f"card status must be one of {', '.join(CARD_STATUSES)}")


async def upsert_card(
    db: Database,
    hsm: SoftwareHsm,
    *,
    pan: str,
    expiry: str,
    account_id: str,
    verification: PinVerificationData,
    status: str = "active",
    limits: Mapping[str, Any] | None = None,
    action: str = "card.issue",
) -> tuple[CardRecord, bool]:
    """Insert a card or bring an existing one (same PAN) to exactly this state; audited."""
    check_card_data(pan, expiry, status)
    limits_checked = validate_limits(limits or {})
    pan_hash = await hsm.pan_lookup_hash(pan)
    before = await card_by_pan_hash(db, pan_hash)
    await db.execute(
        "INSERT INTO cards (pan_hash, pan_encrypted, pan_masked, expiry, status, account_id,"
        " pin_verification, limits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (pan_hash) DO UPDATE SET expiry = excluded.expiry,"
        " status = excluded.status, account_id = excluded.account_id,"
        " pin_verification = excluded.pin_verification, limits = excluded.limits,"
        " pin_tries = 0, updated_at = now()",
        pan_hash,
        await hsm.encrypt_pan(pan),
        mask_pan(pan),
        expiry,
        status,
        account_id,
        verification.to_json(),
        json.dumps(limits_checked),
    )
    after = await card_by_pan_hash(db, pan_hash)
    assert after is not None
    await audit.record(
        db,
        action=action,
        subject=f"card:{after.card_id}",
        before=before.as_dict() if before else None,
        after=after.as_dict(),
    )
    return after, before is None


async def find_card(db: Database, hsm: SoftwareHsm, pan: str) -> CardRecord:
    if not _PAN.match(pan):
        raise CardAdminError("a PAN is 12-19 digits")
    card = await card_by_pan_hash(db, await hsm.pan_lookup_hash(pan))
    if card is None:
        raise CardAdminError(f"no card {mask_pan(pan)} on file")
    return card


class CardUnchanged(CardAdminError):
    """The card already has the status asked for: nothing is written or audited."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the card is already {status}: nothing changed")
        self.status = status


async def set_card_status(
    db: Database, hsm: SoftwareHsm, pan: str, status: str, *, reset_tries: bool = False
) -> CardRecord:
    """Report lost/stolen, block/unblock, close; audited."""
    if status not in CARD_STATUSES:
        raise CardAdminError(f"card status must be one of {', '.join(CARD_STATUSES)}")
    before = await find_card(db, hsm, pan)
    if before.status == status and (not reset_tries or before.pin_tries == 0):
        raise CardUnchanged(status)
    await db.execute(
        "UPDATE cards SET status = $2, pin_tries = CASE WHEN $3 THEN 0 ELSE pin_tries END,"
        " updated_at = now() WHERE card_id = $1",
        before.card_id,
        status,
        reset_tries,
    )
    after = await find_card(db, hsm, pan)
    await audit.record(
        db,
        action=f"card.status.{status}",
        subject=f"card:{after.card_id}",
        before=before.as_dict(),
        after=after.as_dict(),
    )
    return after


async def reset_tries(db: Database, hsm: SoftwareHsm, pan: str) -> CardRecord:
    """Reset the PIN try counter; a card blocked by PIN tries becomes active again."""
    before = await find_card(db, hsm, pan)
    await db.execute(
        "UPDATE cards SET pin_tries = 0, status = CASE WHEN status = 'blocked' THEN 'active'"
        " ELSE status END, updated_at = now() WHERE card_id = $1",
        before.card_id,
    )
    after = await find_card(db, hsm, pan)
    await audit.record(
        db,
        action="card.reset_tries",
        subject=f"card:{after.card_id}",
        before=before.as_dict(),
        after=after.as_dict(),
    )
    return after
