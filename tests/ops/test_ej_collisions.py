"""Journals of different runs given to one reconciliation: two runs of one terminal reuse its
STANs, so two different withdrawals claim one (terminal, STAN) key. The reader must report each
such key (``ej_key_collision``) so totals that differ have an anomaly to explain them, and must
not report a transaction journaled twice (a repeat). Journal lines are written by hand in the
format of ``atm-sim export-ej`` (docs/simulator.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from ops.reports.ej import read_journals
from ops.reports.reconcile import reconcile, render_text
from switch.db.runtime import Database

DAY = dt.date(2026, 12, 1)


def withdrawal(stan: str, rrn: str, amount: int, *, at: str = "2026-12-01T10:00:00Z") -> list[str]:
    """The journal lines of one approved withdrawal on terminal ATM00001."""
    records = [
        {"at": at, "terminal_id": "ATM00001", "event": "transaction_request",
         "type": "withdrawal", "amount": amount, "stan": stan, "rrn": rrn},
        {"at": at, "terminal_id": "ATM00001", "event": "transaction_response",
         "stan": stan, "response_code": "00"},
        {"at": at, "terminal_id": "ATM00001", "event": "host.advice_queued", "mti": "0220",
         "original_stan": stan, "settled": amount},
    ]  # fmt: skip
    return [json.dumps(record) for record in records]


def write(path: Path, *transactions: list[str]) -> Path:
    path.write_text("\n".join(line for lines in transactions for line in lines) + "\n")
    return path


def test_two_runs_reusing_a_stan_collide_and_a_repeat_does_not(tmp_path: Path) -> None:
    first = write(tmp_path / "run1.jsonl", withdrawal("000001", "000000000001", 50_000),
                  withdrawal("000002", "000000000002", 10_000))
    second = write(tmp_path / "run2.jsonl", withdrawal("000001", "000000000077", 20_000),
                   withdrawal("000002", "000000000002", 10_000))  # the same one again
    read = read_journals([first, second], DAY)
    assert [(c.terminal, c.stan) for c in read.collisions] == [("ATM00001", "000001")]
    [collision] = read.collisions
    assert collision.first == f"{first}:1" and collision.second == f"{second}:1"
    assert "50000" in collision.detail and "20000" in collision.detail
    # The later journal's transaction is the one compared (as before the warning existed).
    assert read.transactions[("ATM00001", "000001")].amount == 20_000
    assert len(read.transactions) == 2


def test_records_of_another_day_never_collide(tmp_path: Path) -> None:
    first = write(tmp_path / "a.jsonl", withdrawal("000001", "000000000001", 50_000))
    other_day = write(tmp_path / "b.jsonl",
                      withdrawal("000001", "000000000009", 9_000, at="2026-12-02T00:00:01Z"))
    assert read_journals([first, other_day], DAY).collisions == []


async def test_the_reconciliation_lists_each_collision(db: Database, tmp_path: Path) -> None:
    first = write(tmp_path / "run1.jsonl", withdrawal("000001", "000000000001", 50_000))
    second = write(tmp_path / "run2.jsonl", withdrawal("000001", "000000000077", 20_000))
    read = read_journals([first, second], DAY)
    report = await reconcile(db, DAY, read.transactions, None, read.collisions)
    kinds = [a["kind"] for a in report["anomalies"]]
    assert "ej_key_collision" in kinds and not report["balanced"]
    text = render_text(report)
    assert "ej_key_collision" in text and "journals of different runs?" in text


def test_the_cli_warns_on_stderr_and_lists_the_anomaly(pg_dsn: str, tmp_path: Path) -> None:
    first = write(tmp_path / "run1.jsonl", withdrawal("000001", "000000000001", 50_000))
    second = write(tmp_path / "run2.jsonl", withdrawal("000001", "000000000077", 20_000))
    result = subprocess.run(
        [sys.executable, "-m", "switch.cli", "reports", "reconcile", "--date", DAY.isoformat(),
         "--ej", str(first), "--ej", str(second), "--json",
         "--data-dir", str(tmp_path / "switch-data"), "--dsn", pg_dsn],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # not balanced
    assert "1 (terminal, STAN) keys are claimed by different transactions" in result.stderr
    report = json.loads(result.stdout)
    assert report["totals"]["anomalies"].get("ej_key_collision") == 1
