"""`atm-switch demo --json` as a user runs it: a subprocess that starts its own embedded
PostgreSQL, switch and ATM; the JSON must show all four transaction types approved with the
right amounts, served by the PostgreSQL ledger, and the account moved by withdrawals + transfer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from switch.commands.demo import switch_supports_chip


def test_demo_json(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "switch.cli", "demo", "--json", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    transactions = result["transactions"]
    assert {"balance", "withdrawal", "transfer", "mini_statement"} <= {
        t["type"] for t in transactions}
    assert all(t["response_code"] == "00" for t in transactions)
    assert all(t["ledger"] == "postgres" for t in transactions) and result["ledger"] == "postgres"
    assert {t["language"] for t in transactions} == {"en", "zh"}
    moved = [t["amount"] for t in transactions if t["type"] in ("withdrawal", "transfer")]
    # With chip cards supported (spec 11) the demo ends with one chip withdrawal of 200.00.
    assert moved == [50_000, 20_000, 30_000] + ([20_000] if switch_supports_chip() else [])
    account = result["account"]
    assert account["before"]["ledger"] - account["after"]["ledger"] == sum(moved)
    assert account["after"]["held"] == 0 and result["advices_pending"] == 0
    statements = [t for t in transactions if t["type"] == "mini_statement"]
    assert statements[-1]["statement"][0] == {
        "date": statements[-1]["statement"][0]["date"], "direction": "D", "amount": 30_000,
        "description": "ATM withdrawal"}


def test_demo_human_output_names_what_happened(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "switch.cli", "demo", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = completed.stdout
    assert "ledger postgres" in out and "customer 2 (zh)" in out
    assert "withdrawal" in out and "500.00" in out and "300.00元" in out
    # A balance inquiry shows the balance returned, not its request's amount (CNY 0.00).
    assert "balance CNY 10,000.00, available CNY 10,000.00" in out and "CNY 0.00" not in out
    after = "CNY 8,800.00" if switch_supports_chip() else "CNY 9,000.00"
    assert f"CNY 10,000.00 -> {after}" in out
