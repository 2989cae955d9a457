"""Card limits (spec 6): defaults from the configuration, per-card overrides in ``cards.limits``.

Withdrawals (spec 6) and transfers (spec 10) have a per-transaction and a daily maximum; the
withdrawal limits do not apply to transfers. The per-transaction checks are here; the daily
checks run inside the batch's ledger calls (``DailyLimit``) so that they are counted
atomically with the hold or transfer and given back on release or reversal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switch.authorization.outcomes import Decline, Outcome
from switch.config import AuthorizationConfig

LIMIT_KEYS = (
    "withdrawal_max",
    "daily_withdrawal_max",
    "daily_withdrawal_count",
    "transfer_max",
    "daily_transfer_max",
)


class LimitsError(ValueError):
    """A card's limits object is malformed."""


@dataclass(frozen=True, slots=True)
class CardLimits:
    withdrawal_max: int | None
    daily_withdrawal_max: int | None
    daily_withdrawal_count: int | None
    transfer_max: int | None
    daily_transfer_max: int | None


def _limit_value(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LimitsError(f"limit {key} must be a non-negative integer or null, not {value!r}")
    return value


def validate_limits(overrides: Mapping[str, Any]) -> dict[str, int | None]:
    """Check a ``limits`` object from fixtures or the CLI; unknown keys are errors."""
    unknown = set(overrides) - set(LIMIT_KEYS)
    if unknown:
        raise LimitsError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    return {key: _limit_value(key, value) for key, value in overrides.items()}


def effective_limits(config: AuthorizationConfig, overrides: Mapping[str, Any]) -> CardLimits:
    """Defaults of spec 6 (from config) with the card's overrides applied (null = no limit)."""
    values: dict[str, int | None] = {
        "withdrawal_max": config.withdrawal_max_minor,
        "daily_withdrawal_max": config.daily_withdrawal_max_minor,
        "daily_withdrawal_count": config.daily_withdrawal_count,
        "transfer_max": config.transfer_max_minor,
        "daily_transfer_max": config.daily_transfer_max_minor,
    }
    values.update(validate_limits(overrides))
    return CardLimits(**values)


def check_per_transaction(limits: CardLimits, amount_minor: int) -> None:
    """``61`` when one withdrawal is above the card's per-transaction maximum."""
    if limits.withdrawal_max is not None and amount_minor > limits.withdrawal_max:
        raise Decline(Outcome.AMOUNT_LIMIT_EXCEEDED, "per-transaction withdrawal limit")


def check_per_transfer(limits: CardLimits, amount_minor: int) -> None:
    """``61`` when one transfer is above the card's ``transfer_max`` (spec 10)."""
    if limits.transfer_max is not None and amount_minor > limits.transfer_max:
        raise Decline(Outcome.AMOUNT_LIMIT_EXCEEDED, "per-transaction transfer limit")


def limit_day(received_at: dt.datetime) -> dt.date:
    """Spec 6: the day is the UTC date on which the switch received the 0200."""
    return received_at.astimezone(dt.UTC).date()
