"""What travels through the engine's batches: the items each request puts in, the decision
each gets back, and the arrays a batch sends (one list per SQL parameter, in batch order).

Kept apart from :mod:`switch.authorization.batches` (which runs the calls) so the shapes can be
read, and built in tests and benchmarks, without the database side.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from switch.authorization.request import MessageKey, OriginalData


@dataclass(frozen=True, slots=True)
class FinancialItem:
    """Everything the 0200 batch needs about one request, decided before it goes."""

    key: MessageKey
    fingerprint: str
    processing_code: str
    amount_minor: int
    token: str
    card_id: int | None
    card_version: int
    presented_expiry: str | None
    month: int  # YYMM of the UTC day the request was received
    pin: str  # ok | bad | none | unchecked
    from_account: str | None
    to_account: str | None
    static_code: str | None  # 12 / 13 / 61 from the request alone, or None
    kind: str
    new_pin: str | None
    currency: str
    day: dt.date
    expires_at: dt.datetime
    daily_max: int | None
    daily_count: int | None
    ledger_key: str
    ledger_fingerprint: str
    description: str | None
    reference: str | None
    rrn: str | None
    chip: str = "none"  # none | fallback | fraud | passed (section 11, checked before the batch)
    atc: int | None = None  # the ATC to record when ``chip`` is passed


@dataclass(frozen=True, slots=True)
class AdviceItem:
    """One 0220/0420 (repeat digit dropped) and the original 0200 its field 90 names."""

    key: MessageKey
    fingerprint: str
    processing_code: str
    amount_minor: int
    token: str
    original: OriginalData
    actual_amount_minor: int | None
    rrn: str | None
    reason: str | None  # field 39 of a 0420


@dataclass(frozen=True, slots=True)
class RoutedItem:
    """A 0200 for a card not in the cache, to be claimed for a card network (routed.py)."""

    key: MessageKey
    fingerprint: str
    processing_code: str
    amount_minor: int
    token: str
    pan_hash: str
    rrn: str | None


@dataclass(frozen=True, slots=True)
class RoutedClaim:
    """``auth_network_claim``'s row: claimed | repeat | conflict | pending | on_file."""

    status: str
    response_code: str | None
    record_id: int | None
    created_at: dt.datetime | None
    fields: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class Decision:
    """A batch function's row for one request (see ``auth_result``)."""

    status: str  # new | repeat | conflict | stale | pending | network
    response_code: str | None
    record_id: int | None
    created_at: dt.datetime | None
    card_id: int | None
    hold_id: int | None
    ledger_balance: int | None
    available: int | None
    currency: str | None
    info: Any
    chip_passed: bool = False


def decision_from_row(row: asyncpg.Record) -> Decision:
    info = row["info"]
    return Decision(
        row["status"], row["response_code"], row["record_id"], row["created_at"],
        row["card_id"], row["hold_id"], row["ledger_balance"], row["available"],
        row["currency"], json.loads(info) if info is not None else None,
        bool(row["chip_passed"]),
    )  # fmt: skip


def financial_columns(batch: Sequence[FinancialItem]) -> list[list[Any]]:
    return [
        [i.key.terminal_id for i in batch],
        [i.key.stan for i in batch],
        [i.key.transmission_dt for i in batch],
        [i.key.acquirer_id for i in batch],
        [i.fingerprint for i in batch],
        [i.processing_code for i in batch],
        [i.amount_minor for i in batch],
        [i.token for i in batch],
        [i.card_id for i in batch],
        [i.card_version for i in batch],
        [i.presented_expiry for i in batch],
        [i.month for i in batch],
        [i.pin for i in batch],
        [i.from_account for i in batch],
        [i.to_account for i in batch],
        [i.static_code for i in batch],
        [i.kind for i in batch],
        [i.new_pin for i in batch],
        [i.currency for i in batch],
        [i.day for i in batch],
        [i.expires_at for i in batch],
        [i.daily_max for i in batch],
        [i.daily_count for i in batch],
        [i.ledger_key for i in batch],
        [i.ledger_fingerprint for i in batch],
        [i.description for i in batch],
        [i.reference for i in batch],
        [i.rrn for i in batch],
        [i.chip for i in batch],
        [i.atc for i in batch],
    ]


def advice_columns(batch: Sequence[AdviceItem]) -> list[list[Any]]:
    return [
        [i.key.message_class for i in batch],
        [i.key.terminal_id for i in batch],
        [i.key.stan for i in batch],
        [i.key.transmission_dt for i in batch],
        [i.key.acquirer_id for i in batch],
        [i.fingerprint for i in batch],
        [i.processing_code for i in batch],
        [i.amount_minor for i in batch],
        [i.token for i in batch],
        [i.original.stan for i in batch],
        [i.original.transmission_dt for i in batch],
        [i.original.acquirer_id for i in batch],
        [i.actual_amount_minor for i in batch],
        [i.rrn for i in batch],
        [i.reason for i in batch],
    ]
