"""End-to-end: the simulated ATM (firmware, drivers, the four emulators on real ptys, host link
with EPP MACs) against a real switch over TCP and the real PostgreSQL ledger. Each test plays a
scenario and checks the money on the switch's ledger, the terminal's journal and its receipts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from terminals.atm.balancing import balancing_report
from terminals.journal import read_journal
from terminals.scenarios.loader import parse_scenario
from terminals.scenarios.runner import run_scenario
from tests.sim.conftest import (
    LOST_PAN,
    MAIN_PAN,
    PAYEE,
    WRONG_PIN_PAN,
    SimSwitch,
    scenario_document,
    track2,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")


async def play(switch: SimSwitch, tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    scenario = parse_scenario(document, "test")
    return await run_scenario(scenario, host=switch.host, port=switch.port,
                              data_dir=tmp_path / "atm", durable_journal=False)


def session(*transactions: dict[str, Any], pan: str = MAIN_PAN, **extra: Any) -> dict[str, Any]:
    return {"card": track2(pan), "language": "en", "pins": ["1234"],
            "transactions": list(transactions), **extra}


async def test_partial_dispense_debits_only_the_notes_dispensed(
    switch: SimSwitch, tmp_path: Path
) -> None:
    """The 3rd pick from the CNY 100 cassette fails: 2 of 5 notes go out, the ATM reverses with
    32 and field 95 = 200.00, and the ledger ends debited by exactly 200.00."""
    before = await switch.balance()
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "withdrawal", "amount": 50_000}),
        faults={"dispenser.pick_error": {"at": [3], "cassette": 1}}))
    [record] = result["transactions"]
    assert (record["response_code"], record["outcome"]) == ("00", "partial")
    assert (record["dispensed"], record["reversal_reason"]) == (20_000, "32")
    assert result["advices_pending"] == 0
    assert await switch.balance() == (before[0] - 20_000, before[1] - 20_000, 0)
    assert result["cash_paid_out"] == 20_000
    assert "DISPENSED 实际出钞: CNY 200.00" in result["receipts"][0]


@pytest.mark.parametrize("fault", ["host.timeout", "host.late_reply", "host.disconnect"])
async def test_no_response_ends_with_the_hold_released(
    switch: SimSwitch, tmp_path: Path, fault: str
) -> None:
    """The switch approves and holds, but its 0210 is lost / too late / the line drops: the ATM
    dispenses nothing, sends 0420 reason 68 (after reconnecting, for a disconnect), and the
    hold is released."""
    before = await switch.balance()
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "withdrawal", "amount": 30_000}),
        host_faults={fault: {"at": [1]}},
        terminal={"response_timeout_s": 1.0, "late_reply_delay_s": 1.5}))
    [record] = result["transactions"]
    assert (record.get("response_code"), record["outcome"]) == (None, "no_response")
    assert record["reversal_reason"] == "68"
    assert result["faults_fired"] == [f"{fault}#1"]
    assert result["advices_pending"] == 0 and result["cash_paid_out"] == 0
    assert await switch.balance() == before
    if fault == "host.late_reply":
        assert result["late_replies"] == 1


async def test_three_wrong_pins_block_and_retain_the_card(
    switch: SimSwitch, tmp_path: Path
) -> None:
    """Three wrong PINs: 55, 55, then 75; the ATM retains the card (configured), and the card is
    blocked on the switch: the right PIN afterwards still gets 75."""
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "balance"}, pan=WRONG_PIN_PAN, pins=["1111", "2222", "3333"]),
        session({"type": "balance"}, pan=WRONG_PIN_PAN)))
    first, second = result["sessions"]
    assert [t["response_code"] for t in first["transactions"]] == ["55", "55", "75"]
    assert first["card_outcome"] == "retained"
    assert [t["response_code"] for t in second["transactions"]] == ["75"]


async def test_lost_card_is_retained(switch: SimSwitch, tmp_path: Path) -> None:
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "withdrawal", "amount": 10_000}, pan=LOST_PAN)))
    assert result["transactions"][0]["response_code"] == "41"
    assert result["sessions"][0]["card_outcome"] == "retained"


async def test_receipt_read_back_shows_masked_pan_and_amounts(
    switch: SimSwitch, tmp_path: Path
) -> None:
    """Receipts are parsed back from the ESC/POS byte stream by the printer emulator: masked PAN,
    amounts and payee name; the full PAN is on no receipt and in no journal line."""
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "withdrawal", "amount": 80_000},
                {"type": "transfer", "amount": 12_345, "payee": PAYEE}, language="zh")))
    withdrawal, transfer = result["receipts"]
    assert "CARD 卡号: 622848*********0017" in withdrawal
    assert "AMOUNT 金额: CNY 800.00" in withdrawal and "APPROVED 成功" in withdrawal
    assert "AMOUNT 金额: CNY 123.45" in transfer and "NAME 收款人: S**********" in transfer
    journal_text = (tmp_path / "atm" / "journal.jsonl").read_text()
    for text in (*result["receipts"], journal_text):
        assert MAIN_PAN not in text
    assert not (tmp_path / "atm" / "store" / "advices.jsonl").read_text().count(MAIN_PAN)


async def test_journal_totals_match_the_switch(switch: SimSwitch, tmp_path: Path) -> None:
    """A session of withdrawals (one partial, one retracted), a deposit with a rejected note and
    an extra insertion: the balancing report from the journal and counters is balanced, and the
    host-confirmed withdrawals equal the ledger's debits for the session."""
    before = await switch.balance()
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "withdrawal", "amount": 60_000},
                {"type": "withdrawal", "amount": 30_000},
                {"type": "withdrawal", "amount": 20_000},
                {"type": "deposit", "notes": [[10_000, 10_000, 333], [5_000]]}),
        faults={"dispenser.pick_error": {"at": [8], "cassette": 1},
                "dispenser.notes_not_taken": {"at": [3]}}))
    outcomes = [(t["type"], t["outcome"], t.get("reversal_reason"))
                for t in result["transactions"]]
    assert outcomes == [("withdrawal", "approved", None), ("withdrawal", "partial", "32"),
                        ("withdrawal", "dispense_failed", "22"), ("deposit", "approved", None)]
    report = balancing_report(tmp_path / "atm")
    assert report.balanced, report
    assert report.cash_paid_out == 60_000 + 10_000
    ledger_after = await switch.balance()
    deposit = 25_000
    assert before[0] - ledger_after[0] + deposit == report.host_confirmed
    assert ledger_after[2] == 0
    events = [r["event"] for r in read_journal(tmp_path / "atm" / "journal.jsonl")]
    assert events.count("host.advice_acknowledged") == 4
    assert "cash_retracted" in events and "deposit_counted" in events


async def test_pin_change_needs_two_equal_entries_and_replaces_the_pin(
    switch: SimSwitch, tmp_path: Path
) -> None:
    """New PIN entered twice differently (twice): abandoned, no 0200. Then twice the same: 00;
    the next session's old PIN gets 55 and the new PIN is approved."""
    result = await play(switch, tmp_path, scenario_document(
        session({"type": "pin_change", "new_pin": "4321", "confirm_pin": "4322"},
                {"type": "pin_change", "new_pin": "4321"}),
        session({"type": "balance"}, pins=["1234", "4321"])))
    first, second = result["sessions"]
    assert [(t["type"], t["response_code"]) for t in first["transactions"]] == [
        ("pin_change", "00")]
    assert [t["response_code"] for t in second["transactions"]] == ["55", "00"]
    events = [r["event"] for r in read_journal(tmp_path / "atm" / "journal.jsonl")]
    assert events.count("pin_change_mismatch") == 2
