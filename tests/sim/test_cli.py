"""`atm-sim` as a user runs it, in subprocesses against a real switch on this test's loop:
`run` with a TOML file (--json), `balance`, `interactive` driven through stdin, and the clear
errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio

from tests.sim.conftest import MAIN_PAN, TMK, SimSwitch, track2

SCENARIO = f"""
name = "cli"
[terminal]
id = "ATM00001"
tmk = "{TMK}"
[[sessions]]
card = "{track2(MAIN_PAN)}"
language = "zh"
transactions = [{{ type = "withdrawal", amount = 70000 }}, {{ type = "balance" }}]
"""
ATM_SIM = [sys.executable, "-m", "terminals.cli"]


async def atm_sim(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([*ATM_SIM, *args], stdin=stdin, capture_stdout=True,
                                  capture_stderr=True, check=False)


async def test_run_json_then_balance(switch: SimSwitch, tmp_path: Path) -> None:
    scenario = tmp_path / "cli.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    data = str(tmp_path / "atm")
    ran = await atm_sim("run", str(scenario), "--host", switch.host, "--port",
                        str(switch.port), "--data-dir", data, "--json")
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    result = json.loads(ran.stdout)
    assert [(t["type"], t["response_code"]) for t in result["transactions"]] == [
        ("withdrawal", "00"), ("balance", "00")]
    assert result["transactions"][1]["balances"]["ledger"] == 1_000_000 - 70_000
    report = await atm_sim("balance", "--data-dir", data, "--json")
    assert report.returncode == 0, report.stdout
    assert json.loads(report.stdout)["cash_paid_out"] == 70_000
    human = await atm_sim("balance", "--data-dir", data)
    assert b"BALANCED" in human.stdout


async def test_interactive_session_through_stdin(switch: SimSwitch, tmp_path: Path) -> None:
    keys = b"B\n1234\nD\nA\nB\n"  # 中文, PIN, [D] 查询余额, [A] OK, [B] no more service
    ran = await atm_sim("interactive", "--card", track2(MAIN_PAN), "--host", switch.host,
                        "--port", str(switch.port), "--data-dir", str(tmp_path / "atm"),
                        "--tmk", TMK, stdin=keys)
    out = ran.stdout.decode()
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    assert "请选择服务" in out and "可用余额 10,000.00元" in out and "请取走您的银行卡" in out


async def test_errors_are_one_line_and_non_zero(tmp_path: Path) -> None:
    missing = await atm_sim("run", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert missing.stderr.decode().startswith("atm-sim: error: cannot read scenario")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[sessions]]\ncard = 'x'\n")
    invalid = await atm_sim("run", str(bad))
    assert invalid.returncode == 2 and b"sessions[0].card" in invalid.stderr
    nothing = await atm_sim("balance", "--data-dir", str(tmp_path))
    assert nothing.returncode == 2 and b"no journal" in nothing.stderr


def test_bundled_scenarios_are_listed() -> None:
    listed = subprocess.run([*ATM_SIM, "scenarios"], capture_output=True, text=True, check=True)
    assert "demo" in listed.stdout.split()
