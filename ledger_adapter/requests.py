"""Argument checks and request fingerprints shared by both ledger implementations.

A fingerprint covers what moves money (operation, accounts, amount, direction, expiry
action, limit counter); two calls under one key must agree on it. Checks raise
``InvalidRequest`` before anything is recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from ledger_adapter.errors import InvalidRequest
from ledger_adapter.model import (
    ACCOUNT_KINDS,
    ACCOUNT_STATUSES,
    DIRECTIONS,
    EXPIRY_ACTIONS,
    DailyLimit,
)

# Idempotency keys are stored and indexed; the switch's keys are ~40 characters.
key_length_max = 200
# bigint range; amounts are minor units.
amount_max = 2**62
# Statements are for a screen or a receipt: a handful of lines.
statement_limit_max = 1000


def check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > key_length_max:
        raise InvalidRequest(f"idempotency key must be 1-{key_length_max} characters")


def check_amount(amount: object, *, allow_zero: bool = False) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(f"amount must be an integer number of minor units, got {amount!r}")
    low = 0 if allow_zero else 1
    if not low <= amount <= amount_max:
        raise InvalidRequest(f"amount {amount} out of range")
    return amount


def check_optional_amount(amount: object) -> int | None:
    return None if amount is None else check_amount(amount, allow_zero=True)


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise InvalidRequest(f"direction must be debit or credit, got {direction!r}")


def check_expiry(expires_at: dt.datetime, expiry_action: str) -> None:
    if not isinstance(expires_at, dt.datetime) or expires_at.tzinfo is None:
        raise InvalidRequest("expires_at must be a timezone-aware datetime")
    if expiry_action not in EXPIRY_ACTIONS:
        raise InvalidRequest(f"expiry_action must be capture or release, got {expiry_action!r}")


def check_daily_limit(limit: DailyLimit | None) -> None:
    if limit is None:
        return
    if not limit.counter_id:
        raise InvalidRequest("daily limit needs a counter id")
    for value in (limit.amount_max, limit.count_max):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequest(f"daily limit maximum must be a non-negative integer: {value!r}")


def check_account_fields(currency: str, balance: int, status: str, kind: str) -> None:
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isdigit()):
        raise InvalidRequest(f"currency must be an ISO 4217 numeric code, got {currency!r}")
    check_amount(balance, allow_zero=True)
    check_status(status)
    if kind not in ACCOUNT_KINDS:
        raise InvalidRequest(f"unknown account kind {kind!r}")


def check_status(status: str) -> None:
    if status not in ACCOUNT_STATUSES:
        raise InvalidRequest(f"unknown account status {status!r}")


def check_statement_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidRequest("statement limit must be an integer")
    if not 1 <= limit <= statement_limit_max:
        raise InvalidRequest(f"statement limit must be 1-{statement_limit_max}")


def fingerprint(operation: str, *parts: object) -> str:
    """A short stable digest of an operation and its money-defining arguments.

    Shaped ``operation:digest`` so the operation can be read back from a stored record.
    """
    text = "\x1f".join([operation, *("" if part is None else str(part) for part in parts)])
    return operation + ":" + hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def fingerprint_operation(value: str) -> str:
    return value.partition(":")[0]


# Stored under a key by release_by_key when no hold was placed under it.
VOID_FINGERPRINT = "void:"


def check_transfer_accounts(from_account: str, to_account: str) -> None:
    if from_account == to_account:
        raise InvalidRequest("a transfer needs two different accounts")


def hold_fingerprint(
    account_id: str,
    amount: int,
    direction: str,
    expiry_action: str,
    daily_limit: DailyLimit | None,
    counterparty: str | None,
) -> str:
    return fingerprint(
        "hold", account_id, amount, direction, expiry_action, _counter(daily_limit), counterparty
    )


def transfer_fingerprint(
    from_account: str, to_account: str, amount: int, daily_limit: DailyLimit | None
) -> str:
    return fingerprint("transfer", from_account, to_account, amount, _counter(daily_limit))


def _counter(limit: DailyLimit | None) -> str | None:
    return None if limit is None else f"{limit.counter_id}@{limit.day.isoformat()}"
