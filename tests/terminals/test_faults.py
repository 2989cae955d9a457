"""Fault schedules are reproducible: same seed, same firing; rules for one fault do not shift
another; scenario data is validated with a clear message."""

from __future__ import annotations

import pytest

from terminals.emulators.faults import Fault, FaultRule, FaultSchedule, at


def firing(schedule: FaultSchedule, fault: Fault, opportunities: int) -> list[int]:
    return [n for n in range(1, opportunities + 1) if schedule.check(fault)]


def test_occurrences_fire_exactly_there() -> None:
    schedule = FaultSchedule.of(at(Fault.PICK_ERROR, 2, 5))
    assert firing(schedule, Fault.PICK_ERROR, 6) == [2, 5]
    assert [f.opportunity for f in schedule.fired] == [2, 5]


def test_probability_is_reproducible_from_the_seed() -> None:
    rule = FaultRule(Fault.UNREADABLE_TRACK, probability=0.3)
    first = firing(FaultSchedule.of(rule, seed=42), Fault.UNREADABLE_TRACK, 200)
    again = firing(FaultSchedule.of(rule, seed=42), Fault.UNREADABLE_TRACK, 200)
    other = firing(FaultSchedule.of(rule, seed=43), Fault.UNREADABLE_TRACK, 200)
    assert first == again and first != other
    assert 30 < len(first) < 90  # about 30% of 200


def test_adding_a_rule_for_another_fault_changes_nothing() -> None:
    rule = FaultRule(Fault.UNREADABLE_TRACK, probability=0.3)
    alone = FaultSchedule.of(rule, seed=7)
    crowded = FaultSchedule.of(rule, FaultRule(Fault.CARD_JAM, probability=0.5), seed=7)
    results_alone, results_crowded = [], []
    for _ in range(100):
        crowded.check(Fault.CARD_JAM)
        results_alone.append(bool(alone.check(Fault.UNREADABLE_TRACK)))
        results_crowded.append(bool(crowded.check(Fault.UNREADABLE_TRACK)))
    assert results_alone == results_crowded


def test_cassette_rules_count_per_cassette() -> None:
    schedule = FaultSchedule.of(at(Fault.PICK_ERROR, 2, cassette=3))
    assert schedule.check(Fault.PICK_ERROR, cassette=1) is None
    assert schedule.check(Fault.PICK_ERROR, cassette=3) is None
    assert schedule.check(Fault.PICK_ERROR, cassette=1) is None
    assert schedule.check(Fault.PICK_ERROR, cassette=3) is not None


def test_from_mapping_and_its_errors() -> None:
    schedule = FaultSchedule.from_mapping(
        {"dispenser.pick_error": {"at": [1], "cassette": 2}, "pinpad.cancel": {"probability": 1}},
        seed=3,
    )
    assert schedule.check(Fault.PICK_ERROR, cassette=2) is not None
    assert schedule.check(Fault.PIN_CANCEL) is not None
    with pytest.raises(ValueError, match=r"unknown fault 'dispenser\.on_fire'"):
        FaultSchedule.from_mapping({"dispenser.on_fire": {"at": [1]}})
    with pytest.raises(ValueError, match="expected a table"):
        FaultSchedule.from_mapping({"pinpad.cancel": {"when": 1}})
    with pytest.raises(ValueError, match="probability"):
        FaultRule(Fault.PIN_CANCEL, probability=1.5)
    with pytest.raises(ValueError, match="cassette"):
        at(Fault.PICK_ERROR, 1, cassette=5)
