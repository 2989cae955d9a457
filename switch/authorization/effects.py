"""The last steps of a 0200: per transaction type, the ledger call (or HSM call for a PIN
change) and the fields it adds to an approval (54, 48/PN, 48/MS).

Each function either returns an :class:`Approval` or raises :class:`Decline`; ledger statuses
become outcomes through :data:`LEDGER_OUTCOMES`, the only translation of ledger results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger_adapter import AccountNotFound, Balance, DailyLimit
from ledger_adapter.model import Account
from switch.authorization import formatting
from switch.authorization.cards import CardRecord, replace_pin_verification
from switch.authorization.context import AuthContext
from switch.authorization.limits import check_per_transaction, effective_limits, limit_day
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.request import FinancialRequest
from switch.authorization.transactions import Kind
from switch.hsm.errors import PinPolicyError, PinVerificationFailed
from switch.hsm.verification_data import PinVerificationData
from switch.protocol.field48 import encode_tags

LEDGER_OUTCOMES: Mapping[str, Outcome] = {
    "insufficient_funds": Outcome.INSUFFICIENT_FUNDS,
    "daily_amount_exceeded": Outcome.DAILY_AMOUNT_EXCEEDED,
    "daily_count_exceeded": Outcome.DAILY_COUNT_EXCEEDED,
    "account_not_active": Outcome.ACCOUNT_NOT_ACTIVE,
    "account_not_found": Outcome.SYSTEM_ERROR,
    "currency_mismatch": Outcome.TRANSACTION_NOT_SUPPORTED,
}


@dataclass(slots=True)
class Approval:
    extra: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    effect: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EffectInput:
    ctx: AuthContext
    request: FinancialRequest
    card: CardRecord
    account: Account
    tpk: str | None
    hold_key: str
    received_at: dt.datetime


def _declined_by_ledger(status: str) -> Decline:
    return Decline(LEDGER_OUTCOMES.get(status, Outcome.SYSTEM_ERROR), f"ledger: {status}")


def _balances(inp: EffectInput, balance: Balance | None) -> dict[str, str]:
    if balance is None:
        return {}
    return {
        "54": formatting.additional_amounts(
            processing_code=inp.request.processing_code,
            currency=inp.account.currency,
            ledger_minor=balance.ledger,
            available_minor=balance.available,
        )
    }


async def _fresh_balances(inp: EffectInput) -> dict[str, str]:
    return _balances(inp, await inp.ctx.ledger.balance(inp.account.account_id))


def _reference(inp: EffectInput) -> dict[str, Any]:
    return {
        "terminal": inp.request.key.terminal_id,
        "stan": inp.request.key.stan,
        "card": inp.card.card_id,
        "pc": inp.request.processing_code,
    }


async def withdrawal(inp: EffectInput) -> Approval:
    config = inp.ctx.config
    limits = effective_limits(config, inp.card.limits)
    check_per_transaction(limits, inp.request.amount_minor)
    daily = DailyLimit(
        counter_id=f"card:{inp.card.card_id}",
        day=limit_day(inp.received_at),
        amount_max=limits.daily_withdrawal_max,
        count_max=limits.daily_withdrawal_count,
    )
    result = await inp.ctx.ledger.hold(
        inp.hold_key,
        account_id=inp.account.account_id,
        amount=inp.request.amount_minor,
        direction="debit",
        expires_at=inp.received_at + dt.timedelta(seconds=config.hold_expiry_s),
        expiry_action="capture",
        daily_limit=daily,
        reference=_reference(inp) | {"description": "ATM withdrawal"},
    )
    if not result.approved:
        raise _declined_by_ledger(result.status)
    effect = {"kind": "withdrawal", "hold_id": result.hold_id, "amount": inp.request.amount_minor}
    return Approval(extra=_balances(inp, result.balance), effect=effect)


async def deposit(inp: EffectInput) -> Approval:
    result = await inp.ctx.ledger.hold(
        inp.hold_key,
        account_id=inp.account.account_id,
        amount=inp.request.amount_minor,
        direction="credit",
        expires_at=inp.received_at + dt.timedelta(seconds=inp.ctx.config.hold_expiry_s),
        expiry_action="release",
        reference=_reference(inp) | {"description": "ATM deposit"},
    )
    if not result.approved:
        raise _declined_by_ledger(result.status)
    effect = {"kind": "deposit", "hold_id": result.hold_id, "amount": inp.request.amount_minor}
    return Approval(extra=_balances(inp, result.balance), effect=effect)


async def _payee(inp: EffectInput) -> Account:
    """``76`` unless field 103 names an active customer account."""
    payee_id = (inp.request.to_account or "").strip()
    try:
        payee = await inp.ctx.ledger.get_account(payee_id)
    except AccountNotFound as exc:
        raise Decline(Outcome.PAYEE_NOT_FOUND) from exc
    if payee.kind != "customer" or payee.status != "active":
        raise Decline(Outcome.PAYEE_NOT_FOUND, f"payee account is {payee.status}")
    return payee


async def transfer(inp: EffectInput) -> Approval:
    payee = await _payee(inp)
    if payee.account_id == inp.account.account_id:
        raise Decline(Outcome.DO_NOT_HONOUR, "transfer to the card's own account")
    if payee.currency != inp.account.currency:
        raise Decline(Outcome.TRANSACTION_NOT_SUPPORTED, "payee account in another currency")
    result = await inp.ctx.ledger.transfer(
        inp.hold_key,
        from_account=inp.account.account_id,
        to_account=payee.account_id,
        amount=inp.request.amount_minor,
        reference=_reference(inp) | {"description": "ATM transfer"},
    )
    if not result.approved:
        raise _declined_by_ledger(result.status)
    effect = {"kind": "transfer", "hold_id": result.hold_id, "amount": inp.request.amount_minor}
    return Approval(extra=_balances(inp, result.balance), effect=effect)


async def balance_inquiry(inp: EffectInput) -> Approval:
    return Approval(extra=await _fresh_balances(inp))


async def mini_statement(inp: EffectInput) -> Approval:
    entries = await inp.ctx.ledger.statement(
        inp.account.account_id, limit=formatting.statement_lines_max
    )
    lines = [
        formatting.StatementLine(
            posted_on=entry.posted_at.astimezone(dt.UTC).date(),
            direction=entry.direction,
            amount_minor=entry.amount,
            description=entry.description,
        )
        for entry in entries
    ]
    return Approval(extra=await _fresh_balances(inp), tags={"MS": formatting.mini_statement(lines)})


async def payee_inquiry(inp: EffectInput) -> Approval:
    payee = await _payee(inp)
    return Approval(
        extra=await _fresh_balances(inp), tags={"PN": formatting.mask_payee_name(payee.name)}
    )


async def pin_change(inp: EffectInput) -> Approval:
    """The PIN step verified the old PIN; the HSM checks it again and forms the new data."""
    if inp.tpk is None or inp.request.pin_block is None:
        raise Decline(Outcome.SYSTEM_ERROR, "no TPK")
    try:
        new_data = await inp.ctx.hsm.change_pin(
            tpk=inp.tpk,
            old_pin_block=inp.request.pin_block,
            new_pin_block=inp.request.tags["NP"],
            pan=inp.request.pan,
            verification=PinVerificationData.from_json(inp.card.pin_verification),
            pin_block_format=inp.request.pin_block_format,
        )
    except PinVerificationFailed as exc:
        raise Decline(Outcome.WRONG_PIN, "old PIN no longer verifies") from exc
    except PinPolicyError as exc:
        raise Decline(Outcome.DO_NOT_HONOUR, "new PIN rejected") from exc
    await replace_pin_verification(inp.ctx.db, inp.card.card_id, new_data.to_json())
    return Approval()


EFFECTS: Mapping[Kind, Callable[[EffectInput], Awaitable[Approval]]] = {
    Kind.WITHDRAWAL: withdrawal,
    Kind.DEPOSIT: deposit,
    Kind.BALANCE_INQUIRY: balance_inquiry,
    Kind.MINI_STATEMENT: mini_statement,
    Kind.PAYEE_INQUIRY: payee_inquiry,
    Kind.TRANSFER: transfer,
    Kind.PIN_CHANGE: pin_change,
}


def approval_tags(approval: Approval) -> str | None:
    return encode_tags(approval.tags) if approval.tags else None
