"""Electronic journal: masking fails closed (golden masked record), append-only hash chain that
survives a restart and catches tampering; cassette counters keep the XFS invariant through a
real partial dispense with rejects, a jam and a retract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminals.drivers.dispenser import DispenserDriver, DispenserTiming
from terminals.emulators.dispenser import Cassette, DispenserEmulator, DispenserModel
from terminals.emulators.faults import Fault, FaultSchedule, at
from terminals.journal import (
    CashUnit,
    CassetteCounters,
    CounterInvariantViolation,
    Journal,
    JournalError,
    mask_pan,
    read_journal,
    verify_journal,
)

from .conftest import memory_link

PAN = "6217001234567890123"
TRACK2 = "6217001234567890123=27122201000000000"


def test_masked_record_golden(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "ej.jsonl", "ATM00001", durable=False)
    record = journal.record(
        "card_read",
        pan=PAN,
        track2=TRACK2,
        pin_block="0123456789ABCDEF",
        tpk="whatever",
        note=f"swiped {TRACK2} then typed {PAN}",
        rrn="123456789012",
        amount=100000,
    )
    assert record["pan"] == "621700*********0123"
    assert record["track2"] == "621700*********0123"
    assert record["pin_block"] == "[withheld]" and record["tpk"] == "[withheld]"
    assert record["note"] == "swiped 621700*********0123 then typed 621700*********0123"
    assert record["rrn"] == "123456789012" and record["amount"] == 100000
    written = (tmp_path / "ej.jsonl").read_text()
    assert "1234567890" not in written.replace("123456789012", "")
    assert "0123456789ABCDEF" not in written


def test_mask_pan_fails_closed() -> None:
    assert mask_pan("6217001234567890") == "621700******7890"
    assert mask_pan("62170012345") == "[withheld]"
    assert mask_pan("6217-0012-3456-7890") == "[withheld]"


def test_unknown_objects_are_withheld(tmp_path: Path) -> None:
    record = Journal(tmp_path / "ej.jsonl", "ATM1", durable=False).record("x", blob=object())
    assert record["blob"] == "[withheld]"


def test_chain_continues_after_restart_and_catches_tampering(tmp_path: Path) -> None:
    path = tmp_path / "ej.jsonl"
    first = Journal(path, "ATM1", durable=False)
    first.record("power_up")
    first.record("card_inserted")
    reopened = Journal(path, "ATM1", durable=False)
    assert reopened.record("card_returned")["seq"] == 3
    assert verify_journal(path) == 3
    lines = path.read_text().splitlines(keepends=True)
    edited = json.loads(lines[1])
    edited["event"] = "card_retained"
    path.write_text(lines[0] + json.dumps(edited, sort_keys=True) + "\n" + lines[2])
    with pytest.raises(JournalError):
        verify_journal(path)
    path.write_text(lines[0] + lines[2])  # a deleted line
    with pytest.raises(JournalError):
        read_journal(path)


@settings(max_examples=100)
@given(st.text(alphabet="0123456789 =;?abc", max_size=80))
def test_no_pan_like_run_survives_masking(text: str) -> None:
    from terminals.journal import mask_value

    masked = mask_value("note", text)
    # Whatever the text, no run of 12 or more digits is left whole.
    digit_runs = "".join(c if c.isdigit() else " " for c in masked).split()
    assert all(len(run) < 12 for run in digit_runs)


def counters() -> CassetteCounters:
    units = [CashUnit(n, "156", d) for n, d in enumerate((10000, 5000, 2000, 1000), start=1)]
    result = CassetteCounters(units)
    for number in range(1, 5):
        result.replenish(number, 100)
    return result


async def test_counters_follow_a_real_dispense_with_rejects_jam_and_retract() -> None:
    faults = FaultSchedule.of(
        at(Fault.DOUBLE_NOTE_REJECT, 2, cassette=1),
        at(Fault.NOTE_JAM, 3, cassette=2),
        at(Fault.NOTES_NOT_TAKEN, 2),
    )
    model = DispenserModel([Cassette(d, count=100) for d in (10000, 5000, 2000, 1000)], faults)
    cash = counters()
    timing = DispenserTiming(dispense_timeout_seconds=0.5, status_poll_seconds=0.01)
    async with memory_link(DispenserEmulator(model).serve) as host:
        driver = DispenserDriver(host, timing=timing)
        first = await driver.dispense([3, 4, 0, 0])  # 1 reject on 1; jam on the 3rd pick of 2
        cash.record_dispense(first.checked, first.exited, first.rejected)
        await driver.present(take_timeout_seconds=0.1)
        await driver.purge()
        second = await driver.dispense([1, 0, 0, 2])  # not taken: retracted
        cash.record_dispense(second.checked, second.exited, second.rejected)
        if await driver.present(take_timeout_seconds=0.1):
            cash.record_retract(second.exited)
    assert first.exited == (3, 2, 0, 0) and first.rejected == (1, 0, 0, 0)
    units = cash.units
    assert [u.count for u in units] == [c.count for c in model.cassettes]
    assert [u.rejected for u in units] == [1, 1, 0, 0]
    assert sum(u.rejected for u in units) == sum(model.reject_bin)
    assert [u.retracted for u in units] == [1, 0, 0, 2] and model.retract_bin == 3
    assert [u.paid_out for u in units] == model.notes_taken
    assert cash.amount_paid_out() == 3 * 10000 + 2 * 5000
    assert CassetteCounters.restore(cash.snapshot()) == cash


def test_counters_refuse_impossible_updates() -> None:
    cash = counters()
    with pytest.raises(CounterInvariantViolation):
        cash.record_dispense([1, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(CounterInvariantViolation):
        cash.record_retract([1, 0, 0, 0])
    broken = cash.snapshot()
    broken[0]["count"] = 99
    with pytest.raises(CounterInvariantViolation):
        CassetteCounters.restore(broken)
