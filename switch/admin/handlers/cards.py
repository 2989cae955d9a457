"""Cards: find (by the PAN typed into a form body, or last four digits + account), show, block,
unblock, reset tries, lost, stolen, close. Changes go through
:mod:`switch.authorization.issuing`, so the card table has one writer and the switch's cache is
invalidated by its own trigger. A PAN never appears in a URL or a response; cards are named by
``card_id`` and shown masked. Status rules are :mod:`switch.authorization.card_status`:
unblocking a lost or stolen card needs a second person (dual control), a closed one never.
"""

from __future__ import annotations

from typing import Any

from switch.admin import approvals
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError, Unchanged
from switch.admin.operations import Call, Changed
from switch.admin.roles import ADMIN, CARD_SERVICES
from switch.admin.sessions import Principal
from switch.authorization import card_status
from switch.authorization.cards import card_from_row
from switch.authorization.issuing import (
    CardAdminError,
    CardUnchanged,
    change_status,
    find_card,
    reactivate,
    reset_tries,
)

SEARCH_ROWS_MAX = 100


async def _card_row(ctx: AdminContext, card_id: int) -> Any:
    row = await ctx.db.fetchrow("SELECT * FROM cards WHERE card_id = $1", card_id)
    if row is None:
        raise ApiError("not_found", f"no card {card_id}")
    return row


async def _pan_of(ctx: AdminContext, card_id: int) -> str:
    """The PAN, decrypted by the HSM only to call the issuing functions (never returned)."""
    row = await _card_row(ctx, card_id)
    return await ctx.hsm.decrypt_pan(row["pan_encrypted"])


async def show(ctx: AdminContext, call: Call) -> Any:
    card = card_from_row(await _card_row(ctx, call.params["card_id"]))
    assert card is not None
    return card.as_dict()


async def history(ctx: AdminContext, call: Call) -> Any:
    """The audit trail of one card (back office and CLI), newest first."""
    from switch.admin import audit
    from switch.authorization import audit as card_audit

    card_id = call.params["card_id"]
    await _card_row(ctx, card_id)
    subject = f"card:{card_id}"
    rows = await audit.entries(ctx.db, subject=subject, actor=None, limit=100)
    rows += [row | {"role": None, "address": None}
             for row in await card_audit.entries(ctx.db, subject, 100)]
    return sorted(rows, key=lambda row: str(row["at"]), reverse=True)


async def search(ctx: AdminContext, call: Call) -> Any:
    assert call.body is not None
    body = call.body
    if "pan" in body:
        if set(body) != {"pan"}:
            raise ApiError("invalid_field", "body: give either pan, or last4 and account")
        try:
            return [(await find_card(ctx.db, ctx.hsm, body["pan"])).as_dict()]
        except CardAdminError:
            return []
    if "last4" not in body or "account" not in body:
        raise ApiError("invalid_field", "body: give either pan, or last4 and account")
    rows = await ctx.db.fetch(
        "SELECT * FROM cards WHERE account_id = $1 AND right(pan_masked, 4) = $2"
        " ORDER BY card_id LIMIT $3",
        body["account"], body["last4"], SEARCH_ROWS_MAX,
    )
    return [card.as_dict() for card in map(card_from_row, rows) if card is not None]


async def _status_change(ctx: AdminContext, principal: Principal, card_id: int,
                         operation: str, *, reset: bool) -> Changed:
    pan = await _pan_of(ctx, card_id)
    before = (await find_card(ctx.db, ctx.hsm, pan)).as_dict()
    try:
        after = (await change_status(ctx.db, ctx.hsm, pan, operation,
                                     reset_tries=reset)).as_dict()
    except CardUnchanged as exc:
        raise Unchanged("card", exc.status) from exc
    except CardAdminError as exc:
        raise ApiError("conflict", str(exc)) from exc
    return Changed(after, f"card.status.{after['status']}", f"card:{card_id}", before, after)


def _status_handler(operation: str, *, reset: bool = False) -> Any:
    async def handler(ctx: AdminContext, call: Call) -> Any:
        return await _status_change(ctx, call.principal, call.params["card_id"], operation,
                                    reset=reset)

    handler.__name__ = f"card_{operation}"
    return handler


block = _status_handler("block")
lost = _status_handler("lost")
stolen = _status_handler("stolen")
close = _status_handler("close")


async def unblock(ctx: AdminContext, call: Call) -> Any:
    """Back to active; a lost or stolen card only with a second person's approval (the state
    machine says which), a closed one never."""
    card_id = call.params["card_id"]
    row = await _card_row(ctx, card_id)
    try:
        decided = card_status.decide(row["status"], "unblock")
    except card_status.StatusChangeRefused as exc:
        raise ApiError("conflict", str(exc)) from exc
    if isinstance(decided, card_status.SecondPerson):
        pending = await approvals.request(ctx, call.principal, "card.reactivate",
                                          f"card:{card_id}", {"status": row["status"]})
        return Changed(pending, "approval.request", f"card:{card_id}", None, pending,
                       status=202)
    return await _status_change(ctx, call.principal, card_id, "unblock", reset=True)


async def _reactivate(ctx: AdminContext, approver: Principal, subject: str,
                      params: dict[str, Any]) -> Changed:
    card_id = int(subject.removeprefix("card:"))
    pan = await _pan_of(ctx, card_id)
    before = (await find_card(ctx.db, ctx.hsm, pan)).as_dict()
    expected = params.get("status")  # absent in requests made before issue 18
    if expected is not None and before["status"] != expected:
        raise ApiError("conflict", f"card {card_id} is {before['status']} now, not "
                                   f"{params.get('status')} as requested; ask again")
    try:
        after = (await reactivate(ctx.db, ctx.hsm, pan)).as_dict()
    except CardAdminError as exc:
        raise ApiError("conflict", str(exc)) from exc
    return Changed(after, "card.status.active", f"card:{card_id}", before, after)


async def reset_pin_tries(ctx: AdminContext, call: Call) -> Any:
    """Only the counter: a blocked card stays blocked (issue 18)."""
    card_id = call.params["card_id"]
    pan = await _pan_of(ctx, card_id)
    before = (await find_card(ctx.db, ctx.hsm, pan)).as_dict()
    after = (await reset_tries(ctx.db, ctx.hsm, pan)).as_dict()
    return Changed(after, "card.reset_tries", f"card:{card_id}", before, after)


approvals.register("card.reactivate", frozenset({CARD_SERVICES, ADMIN}), _reactivate)
# Requests made before issue 18 under the old name run the same checked executor.
approvals.register("card.unblock_stolen", frozenset({CARD_SERVICES, ADMIN}), _reactivate)
