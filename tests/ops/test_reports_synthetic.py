"""The reports over a generated day (``ops.reports.synthetic``, the generator behind the
1,000,000-message figure in docs/operations.md): the daily totals and the reconciliation's
anomalies equal what the generator wrote, counted from its shape; plus the progress bar on a
real pty (drawn) and on a pipe (silent), and the simulator's EJ export."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pytest

from ops.reports.daily import daily_report
from ops.reports.daily import render_text as render_daily
from ops.reports.progress import Progress
from ops.reports.reconcile import reconcile
from ops.reports.reconcile import render_text as render_reconcile
from ops.reports.synthetic import AMOUNT, expected, generate
from switch.db.runtime import Database
from terminals.journal import Journal, JournalError, export_day

DAY = dt.date(2026, 11, 28)


async def test_reports_match_the_generated_day(db: Database) -> None:
    shape = await generate(db, DAY, 9_000)
    assert shape == expected(9_000) and shape["presumed"] >= 2 and shape["partial"] >= 10
    progress = Progress(24, "daily", stream=io.StringIO(), enabled=True)
    report = await daily_report(db, DAY, progress)
    assert progress.done == 24
    totals = report["totals"]
    assert totals["count"] == shape["requests"]
    assert totals["approved"] == shape["approved"]
    assert totals["requested_amount"] == shape["requests"] * AMOUNT
    assert totals["settled_amount"] == (
        (shape["completions"] + shape["presumed"]) * AMOUNT + shape["partial"] * AMOUNT // 2)
    assert totals["response_codes"] == {"00": shape["approved"], "51": shape["requests"] // 5}
    assert totals["reversals"] == {"32": shape["partial"],
                                   "unrecorded": shape["reversals"] - shape["partial"]}
    assert sum(report["hourly_volume"]) == shape["requests"]
    assert max(report["hourly_volume"]) - min(report["hourly_volume"]) <= 1  # evenly spread
    assert report["settlement_date"]["consistent"]
    assert len({row["terminal"] for row in report["rows"]}) == 2_000
    result = await reconcile(db, DAY)
    assert result["totals"]["anomalies"] == {"presumed_dispensed": shape["presumed"],
                                             "partial_dispense": shape["partial"]}
    assert result["totals"]["switch"]["settled_amount"] == totals["settled_amount"]
    text = render_daily(report)
    assert "TOTAL" in text and str(shape["requests"]) in text and "the day itself" in text
    assert "51 insufficient funds" in text and "32 partial dispense" in text
    assert not any(raw in text for raw in ("{", "}", "None")), text  # no Python reprs
    text = render_reconcile(result)
    assert f"{shape['presumed'] + shape['partial']} anomalies" in text
    assert not any(raw in text for raw in ("{", "}", "None")), text
    # The day before and after are empty: the day boundary is UTC midnight.
    assert (await daily_report(db, DAY - dt.timedelta(days=1)))["totals"]["count"] == 0
    assert (await reconcile(db, DAY + dt.timedelta(days=1)))["balanced"]


def test_progress_bar_draws_on_a_tty_only() -> None:
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            bar = Progress(4, "daily 2026-11-28", stream=tty)
            assert bar.enabled
            for _ in range(4):
                bar.advance()
            bar.close()
        drawn = ""
        while "\n" not in drawn:  # a pty may hand the redraws over in several reads
            drawn += os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert "\r" in drawn and "4/4" in drawn and "#" * 30 in drawn
    piped = io.StringIO()
    quiet = Progress(4, "daily", stream=piped)
    quiet.advance(4)
    quiet.close()
    assert not quiet.enabled and piped.getvalue() == ""


def test_ej_export_keeps_one_day_and_refuses_a_tampered_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, "ATM00001", durable=False)
    journal.record("transaction_request", type="withdrawal", amount=10_000, stan="000001",
                   rrn="000000000001", pan="6228480000000000017")
    journal.record("transaction_response", type="withdrawal", stan="000001", response_code="00")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    records = export_day(path, today)
    assert [r["event"] for r in records] == ["transaction_request", "transaction_response"]
    assert records[0]["pan"] == "622848*********0017"
    assert export_day(path, "2001-01-01") == []
    lines = path.read_text().splitlines()
    edited = json.loads(lines[0]) | {"amount": 1}
    path.write_text(json.dumps(edited, sort_keys=True) + "\n" + lines[1] + "\n")
    with pytest.raises(JournalError):
        export_day(path, today)


def test_reconciliation_metrics_file_passes_promtool() -> None:
    """The textfile the alert AtmReconciliationImbalance reads is valid exposition format."""
    import shutil
    import subprocess

    from ops.reports.reconcile import anomaly, metrics_text

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI: .ci/run must apt-get install prometheus")
        pytest.skip("promtool not installed")
    report = {"date": "2026-11-28", "balanced": False,
              "anomalies": [anomaly("partial_dispense", "T1", "000001", None, 5_000, "x")]}
    text = metrics_text(report, 1_800_000_000)
    assert 'atm_reconciliation_balanced{date="2026-11-28"} 0' in text
    assert 'atm_reconciliation_anomalies{date="2026-11-28",kind="partial_dispense"} 1' in text
    result = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    with pytest.raises(ValueError):
        anomaly("cash_vanished", None, None, None, None, "not a kind")
