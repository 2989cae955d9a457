"""Processing codes of spec 4, amount rule (13) and card limits of spec 6."""

from __future__ import annotations

import datetime as dt

import pytest

from switch.authorization.limits import (
    LimitsError,
    check_per_transaction,
    effective_limits,
    limit_day,
)
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.transactions import (
    Kind,
    check_amount,
    check_supported,
    parse_processing_code,
)
from switch.config import AuthorizationConfig


@pytest.mark.parametrize(
    ("code", "kind"),
    [("010000", Kind.WITHDRAWAL), ("012000", Kind.WITHDRAWAL), ("210010", Kind.DEPOSIT),
     ("311000", Kind.BALANCE_INQUIRY), ("380000", Kind.MINI_STATEMENT),
     ("390020", Kind.PAYEE_INQUIRY), ("401020", Kind.TRANSFER), ("900000", Kind.PIN_CHANGE)],
)
def test_supported_codes(code: str, kind: Kind) -> None:
    assert check_supported(parse_processing_code(code)) is kind


@pytest.mark.parametrize("code", ["500000", "010010", "211000", "013000", "390100", "311010"])
def test_unsupported_codes_are_12(code: str) -> None:
    with pytest.raises(Decline) as caught:
        check_supported(parse_processing_code(code))
    assert caught.value.outcome is Outcome.TRANSACTION_NOT_SUPPORTED


@pytest.mark.parametrize(
    ("kind", "amount", "ok"),
    [(Kind.WITHDRAWAL, 10_000, True), (Kind.WITHDRAWAL, 15_000, False),
     (Kind.WITHDRAWAL, 0, False), (Kind.DEPOSIT, 1, True), (Kind.DEPOSIT, 0, False),
     (Kind.BALANCE_INQUIRY, 0, True), (Kind.BALANCE_INQUIRY, 100, False),
     (Kind.TRANSFER, 5, True), (Kind.PIN_CHANGE, 1, False)],
)
def test_amount_rule(kind: Kind, amount: int, ok: bool) -> None:
    if ok:
        check_amount(kind, amount, dispense_unit_minor=10_000)
    else:
        with pytest.raises(Decline) as caught:
            check_amount(kind, amount, dispense_unit_minor=10_000)
        assert caught.value.outcome is Outcome.INVALID_AMOUNT


def test_default_limits_are_spec6() -> None:
    limits = effective_limits(AuthorizationConfig(), {})
    assert (limits.withdrawal_max, limits.daily_withdrawal_max, limits.daily_withdrawal_count) == (
        250_000, 2_000_000, None)
    check_per_transaction(limits, 250_000)
    with pytest.raises(Decline):
        check_per_transaction(limits, 260_000)


def test_overrides_and_null_means_unlimited() -> None:
    limits = effective_limits(AuthorizationConfig(),
                              {"withdrawal_max": None, "daily_withdrawal_count": 2})
    check_per_transaction(limits, 10**9)
    assert limits.daily_withdrawal_count == 2


@pytest.mark.parametrize("bad", [{"withdrawal_max": -1}, {"foo": 1}, {"withdrawal_max": "5"}])
def test_bad_limits_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(LimitsError):
        effective_limits(AuthorizationConfig(), bad)


def test_limit_day_is_utc() -> None:
    local = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert limit_day(local) == dt.date(2026, 3, 1)
