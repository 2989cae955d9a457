"""The reconciliation report against a real PostgreSQL ledger: holds resolved by expiry are
listed (spec 5.2), a correcting entry that overdrew is listed, and the day's totals add up to
what the test itself moved. Method: drive the real PostgresLedger, then read the report through
the function and through `atm-switch reports reconciliation --json` as a subprocess."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import trio

from ledger_adapter.postgres import PostgresLedger
from ops.reconciliation import reconciliation_report, render_text
from switch.db.runtime import Database

CNY = "156"


async def _day_of_activity(ledger: PostgresLedger) -> dict[str, int]:
    """Moves money in ways the report must see; returns the hold ids it expects listed."""
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    await ledger.open_account("A", name="Alice", currency=CNY, balance=100_000)
    await ledger.open_account("B", name="Bob", currency=CNY, balance=0)
    withdrawal = await ledger.hold(
        "w1", account_id="A", amount=30_000, direction="debit", expires_at=soon,
        expiry_action="capture",
    )  # fmt: skip
    deposit = await ledger.hold(
        "d1", account_id="B", amount=5_000, direction="credit", expires_at=soon,
        expiry_action="release",
    )  # fmt: skip
    await ledger.transfer("t1", from_account="A", to_account="B", amount=1_000)
    # B receives a deposit, spends it, then the deposit is reversed: B is overdrawn.
    credit = await ledger.hold(
        "d2", account_id="B", amount=2_000, direction="credit",
        expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC), expiry_action="release",
    )  # fmt: skip
    assert credit.hold_id is not None
    await ledger.capture("d2-capture", hold_id=credit.hold_id)
    await ledger.transfer("t2", from_account="B", to_account="A", amount=3_000)
    reversal = await ledger.reverse("d2-reverse", hold_id=credit.hold_id)
    assert reversal.reconciliation, "a correcting entry that overdraws must be flagged"
    swept = await ledger.sweep_expired(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert swept == 2
    assert withdrawal.hold_id is not None and deposit.hold_id is not None
    return {"withdrawal": withdrawal.hold_id, "deposit": deposit.hold_id, "credit": credit.hold_id}


async def test_report_lists_expired_holds_corrections_and_totals(db: Database) -> None:
    ids = await _day_of_activity(PostgresLedger(db))
    today = dt.datetime.now(dt.UTC).date()
    report = await reconciliation_report(db, today)

    [presumed] = report["presumed_dispensed"]
    assert (presumed["hold_id"], presumed["amount"], presumed["captured_amount"]) == (
        ids["withdrawal"], 30_000, 30_000,
    )  # fmt: skip
    assert presumed["presumed"] is True
    [expired] = report["expired_deposits"]
    assert (expired["hold_id"], expired["state"]) == (ids["deposit"], "released")
    [overdrawn] = report["overdrawn_by_correction"]
    assert (overdrawn["account_id"], overdrawn["amount"]) == ("B", 2_000)

    totals = {row["kind"]: row for row in report["totals"]}
    assert totals["expiry"]["customer_debits"] == 30_000
    assert totals["transfer"]["entries"] == 2
    assert totals["transfer"]["customer_debits"] == totals["transfer"]["customer_credits"] == 4_000
    assert totals["opening"]["customer_credits"] == 100_000
    assert totals["capture"]["customer_credits"] == 2_000
    assert totals["reversal"]["customer_debits"] == 2_000
    assert report["overdue_open_holds"] == {"holds": 0, "amount": 0}
    assert report["invariant_violations"] == []
    assert "presumed dispensed (withdrawal holds captured at expiry): 1" in render_text(report)

    # Another day has none of it.
    empty = await reconciliation_report(db, today - dt.timedelta(days=3))
    assert empty["totals"] == [] and empty["presumed_dispensed"] == []


async def test_cli_prints_the_same_report(db: Database, pg_dsn: str) -> None:
    await _day_of_activity(PostgresLedger(db))
    result = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "switch.cli", "reports", "reconciliation", "--json",
             "--dsn", pg_dsn],
            capture_output=True, text=True, timeout=120, check=False,
        )
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [hold["amount"] for hold in report["presumed_dispensed"]] == [30_000]
    assert report["invariant_violations"] == []
    bad = subprocess.run(
        [sys.executable, "-m", "switch.cli", "reports", "reconciliation", "--day", "yesterday",
         "--dsn", pg_dsn],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "--day" in bad.stderr
