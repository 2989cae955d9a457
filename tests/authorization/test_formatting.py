"""Field values built by the switch, compared with strings written by hand from spec 2 and 3."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.authorization import formatting
from switch.authorization.formatting import StatementLine


def test_field54_two_blocks_ledger_then_available() -> None:
    # Spec 2 field 54: acct type (pos 3-4 of field 3) + amount type + currency + C/D + n12.
    value = formatting.additional_amounts(
        processing_code="011000", currency="156", ledger_minor=1_370_000, available_minor=1_320_000
    )
    assert value == "1001156C000001370000" + "1002156C000001320000"
    assert len(value) == 40


def test_field54_negative_balance_is_debit() -> None:
    value = formatting.additional_amounts(
        processing_code="310000", currency="156", ledger_minor=-500, available_minor=-2500
    )
    assert value == "0001156D000000000500" "0002156D000000002500"


def test_field54_rejects_amounts_beyond_12_digits() -> None:
    with pytest.raises(formatting.FieldValueError):
        formatting.additional_amounts(
            processing_code="310000", currency="156", ledger_minor=10**12, available_minor=0
        )


@pytest.mark.parametrize(
    ("name", "masked"),
    [("王小明", "王**"), ("Smith", "S****"), ("Li Lei", "L*****"), ("A", "A"), ("", "")],
)
def test_payee_name_mask(name: str, masked: str) -> None:
    # Spec 3 48/PN: first character, then '*' for every further character, spaces included.
    assert formatting.mask_payee_name(name) == masked


@given(st.text(min_size=1, max_size=40))
@settings(max_examples=200)
def test_payee_mask_keeps_length_and_first_character(name: str) -> None:
    masked = formatting.mask_payee_name(name)
    assert len(masked) == len(name)
    assert masked[0] == name[0]
    assert set(masked[1:]) <= {"*"}


def test_mini_statement_layout() -> None:
    lines = [
        StatementLine(dt.date(2026, 11, 21), "D", 50_000, "ATM withdrawal"),
        StatementLine(dt.date(2026, 11, 20), "C", 1_234_567, "工资 salary | Nov 2026 bonus"),
    ]
    assert formatting.mini_statement(lines) == (
        "261121D000000050000ATM withdrawal"
        "|"
        "261120C000001234567工资 salary / Nov 2026"
    )


def test_mini_statement_at_most_ten_lines() -> None:
    lines = [StatementLine(dt.date(2026, 1, 1), "C", 1, "x")] * 12
    assert formatting.mini_statement(lines).count("|") == 9


def test_settlement_date_is_utc_date_of_receipt() -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert formatting.settlement_date(dt.datetime(2026, 1, 1, 3, 0, tzinfo=shanghai)) == "1231"


def test_authorization_id_six_digits_never_zero() -> None:
    assert formatting.authorization_id(1) == "000002"
    assert formatting.authorization_id(999_998) == "999999"
    assert formatting.authorization_id(999_999) == "000001"
    assert all(formatting.authorization_id(i) != "000000" for i in range(0, 3_000_000, 999_999))
