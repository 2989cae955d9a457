"""Card issuing and card administration (the ``cards`` CLI and ``fixtures load``).

A card is stored as a keyed PAN hash (lookup), an LMK-encrypted PAN, the masked PAN, and PIN
verification data (IBM 3624 offset under the issuer PVK, an LMK handle kept in
``issuer_keys``). Every change writes the audit table in the same transaction as the change,
and every status change follows :mod:`switch.authorization.card_status`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from switch.authorization import audit, card_status
from switch.authorization.cards import CARD_STATUSES, CardRecord, card_by_pan_hash
from switch.authorization.limits import validate_limits
from switch.db.runtime import Database
from switch.hsm.protocol import Hsm
from switch.hsm.verification_data import PinVerificationData
from switch.protocol.masking import mask_pan  # the one rule (6 + 4), stored with the card

PVK_NAME = "pvk"
PVK_USAGE = "V1"  # IBM 3624 PIN verification key
_PAN = re.compile(r"^[0-9]{12,19}$")
_EXPIRY = re.compile(r"^[0-9]{2}(0[1-9]|1[0-2])$")


class CardAdminError(ValueError):
    """A card request is invalid (bad PAN, expiry, status, unknown card); shown to the operator."""


class NeedsSecondPerson(CardAdminError):
    """The status change is a dual-control operation (reactivating a lost or stolen card)."""


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card: CardRecord
    created: bool
    pin: str | None  # only from a test-mode PIN mailer


async def issuer_pvk(db: Database, hsm: Hsm) -> str:
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
    hsm: Hsm,
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
    pan_encrypted = await hsm.encrypt_pan(pan)
    before = await card_by_pan_hash(db, pan_hash)
    if before is not None and before.status != status:
        _check_reissue(before, status)
    async with db.transaction() as tx:
        try:
            await tx.execute(
                "INSERT INTO cards (pan_hash, pan_encrypted, pan_masked, expiry, status,"
                " account_id, pin_verification, limits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (pan_hash) DO UPDATE SET expiry = excluded.expiry,"
                " status = excluded.status, account_id = excluded.account_id,"
                " pin_verification = excluded.pin_verification, limits = excluded.limits,"
                " pin_tries = 0, updated_at = now()",
                pan_hash, pan_encrypted, mask_pan(pan), expiry, status, account_id,
                verification.to_json(), json.dumps(limits_checked),
            )
        except asyncpg.CheckViolationError as exc:
            raise CardAdminError(_trigger_message(exc)) from exc
        after = await card_by_pan_hash(tx, pan_hash)
        if after is None:
            raise RuntimeError("a card just written is not on file")
        await audit.record(tx, action=action, subject=f"card:{after.card_id}",
                           before=before.as_dict() if before else None, after=after.as_dict())
    return after, before is None


def _check_reissue(before: CardRecord, status: str) -> None:
    """Re-issuing an existing PAN may change its status only as one operator could."""
    operation = card_status.OPERATION_FOR_STATUS[status]
    try:
        decided = card_status.decide(before.status, operation)
    except card_status.StatusChangeRefused as exc:
        raise CardAdminError(f"card {before.pan_masked}: {exc}") from exc
    if isinstance(decided, card_status.SecondPerson):
        raise NeedsSecondPerson(f"card {before.pan_masked} is {before.status}: re-issuing it "
                                "active needs a second person (reactivate it first)")


async def find_card(db: Database, hsm: Hsm, pan: str) -> CardRecord:
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


# The status each operation asks for (block -> blocked ...).
_STATUS_OF_OPERATION = {op: st for st, op in card_status.OPERATION_FOR_STATUS.items()}


async def set_card_status(
    db: Database, hsm: Hsm, pan: str, status: str, *, reset_tries: bool = False
) -> CardRecord:
    """Block/unblock, report lost/stolen, close (the CLI's verbs, named by the status they ask
    for): checked by the state machine (:mod:`switch.authorization.card_status`); audited in
    the same transaction."""
    operation = card_status.OPERATION_FOR_STATUS.get(status)
    if operation is None:
        raise CardAdminError(f"card status must be one of {', '.join(CARD_STATUSES)}")
    return await change_status(db, hsm, pan, operation, reset_tries=reset_tries)


async def change_status(
    db: Database, hsm: Hsm, pan: str, operation: str, *, reset_tries: bool = False
) -> CardRecord:
    """Apply one operator's status ``operation``; refused with :class:`CardAdminError` when the
    state machine refuses it or it needs a second person (:class:`NeedsSecondPerson`)."""
    before = await find_card(db, hsm, pan)
    asked = _STATUS_OF_OPERATION.get(operation)
    if asked == before.status and (not reset_tries or before.pin_tries == 0):
        raise CardUnchanged(asked)  # nothing to change: refused, not audited
    try:
        after_status = card_status.decide(before.status, operation)
    except card_status.StatusChangeRefused as exc:
        raise CardAdminError(str(exc)) from exc
    if isinstance(after_status, card_status.SecondPerson):
        raise NeedsSecondPerson(
            f"card {before.pan_masked} is {before.status}: reactivating it needs a second "
            "person (request it in the back office; another card_services user approves)")
    return await _apply_status(db, hsm, pan, before, after_status,
                               action=f"card.status.{after_status}", reset_tries=reset_tries)


async def reactivate(db: Database, hsm: Hsm, pan: str, *, actor: str | None = None
                     ) -> CardRecord:
    """A lost or stolen card made active again: only the executor of an approved
    dual-control request calls this (switch/admin/handlers/cards.py)."""
    before = await find_card(db, hsm, pan)
    try:
        after_status = card_status.reactivated(before.status)
    except card_status.StatusChangeRefused as exc:
        raise CardAdminError(str(exc)) from exc
    return await _apply_status(db, hsm, pan, before, after_status, action="card.reactivate",
                               reset_tries=True, clear_report=True, actor=actor)


async def _apply_status(db: Database, hsm: Hsm, pan: str, before: CardRecord,
                        status: str, *, action: str, reset_tries: bool,
                        clear_report: bool = False, actor: str | None = None) -> CardRecord:
    """Compare-and-set from the status read, with the audit row in the same transaction."""
    async with db.transaction() as tx:
        try:
            changed = await tx.execute(
                "UPDATE cards SET status = $2, pin_tries = CASE WHEN $3 THEN 0"
                " ELSE pin_tries END, reported = CASE WHEN $5 THEN NULL ELSE reported END,"
                " updated_at = now() WHERE card_id = $1 AND status = $4",
                before.card_id, status, reset_tries, before.status, clear_report,
            )
        except asyncpg.CheckViolationError as exc:
            raise CardAdminError(_trigger_message(exc)) from exc
        if not changed.endswith(" 1"):
            raise CardAdminError(f"card {before.pan_masked} changed meanwhile; look again")
        after = await find_card(tx, hsm, pan)
        await audit.record(tx, action=action, subject=f"card:{after.card_id}",
                           before=before.as_dict(), after=after.as_dict(), actor=actor)
    return after


def _trigger_message(exc: asyncpg.PostgresError) -> str:
    """The refusal of migration 0610's trigger, without its ``card N:`` prefix."""
    message = str(getattr(exc, "message", exc))
    return message.split(": ", 1)[-1]


async def reset_tries(db: Database, hsm: Hsm, pan: str) -> CardRecord:
    """Reset the PIN try counter and nothing else: a blocked card stays blocked (unblock it),
    a lost, stolen or closed card keeps its status (issue 18)."""
    before = await find_card(db, hsm, pan)
    async with db.transaction() as tx:
        await tx.execute("UPDATE cards SET pin_tries = 0, updated_at = now() WHERE card_id = $1",
                         before.card_id)
        after = await find_card(tx, hsm, pan)
        await audit.record(tx, action="card.reset_tries", subject=f"card:{after.card_id}",
                           before=before.as_dict(), after=after.as_dict())
    return after
