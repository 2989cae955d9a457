"""Seeded fault schedules, so every device failure scenario is reproducible.

A schedule holds rules. An emulator asks `schedule.check(fault)` at each *opportunity* for that
fault (each note picked, each card read, each receipt printed...). A rule fires on chosen
occurrences ("the 2nd pick") and/or with a probability drawn from a generator seeded by
(seed, fault name): adding a rule for one fault never changes when another fires.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """Every fault an emulator can inject, named `device.fault`."""

    CARD_JAM = "card_reader.card_jam"
    UNREADABLE_TRACK = "card_reader.unreadable_track"
    CARD_NOT_TAKEN = "card_reader.card_not_taken"
    CARD_READER_SILENT = "card_reader.no_answer"
    CHIP_MUTE = "card_reader.chip_mute"  # opportunity: each chip power-on
    CHIP_NO_ANSWER = "card_reader.chip_no_answer"  # opportunity: each GENERATE AC
    PICK_ERROR = "dispenser.pick_error"
    NOTE_JAM = "dispenser.note_jam"
    DOUBLE_NOTE_REJECT = "dispenser.double_note_reject"
    CASSETTE_LOW = "dispenser.cassette_low"
    CASSETTE_EMPTY = "dispenser.cassette_empty"
    CASSETTE_MISSING = "dispenser.cassette_missing"
    NOTES_NOT_TAKEN = "dispenser.notes_not_taken"
    DISPENSER_SILENT = "dispenser.no_answer"
    PAPER_NEAR_END = "printer.paper_near_end"
    PAPER_OUT = "printer.paper_out"
    PRINTER_SILENT = "printer.no_answer"
    PIN_TIMEOUT = "pinpad.timeout"
    PIN_CANCEL = "pinpad.cancel"
    PINPAD_SILENT = "pinpad.no_answer"


@dataclass(frozen=True, slots=True)
class FaultRule:
    """When one fault fires. `occurrences` are 1-based opportunity numbers; `cassette` (1-4)
    says which cassette a cassette fault applies to (None: the cassette being used)."""

    fault: Fault
    occurrences: frozenset[int] = frozenset()
    probability: float = 0.0
    cassette: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"{self.fault}: probability must be within 0..1")
        if any(n < 1 for n in self.occurrences):
            raise ValueError(f"{self.fault}: occurrences count from 1")
        if self.cassette is not None and not 1 <= self.cassette <= 4:
            raise ValueError(f"{self.fault}: cassette must be 1..4")


@dataclass(frozen=True, slots=True)
class FiredFault:
    """One entry of the schedule's log: which fault fired at which opportunity."""

    fault: Fault
    opportunity: int
    cassette: int | None


@dataclass
class FaultSchedule:
    """The faults of one scenario. `FaultSchedule()` injects nothing."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0
    fired: list[FiredFault] = field(default_factory=list)
    _opportunities: Counter[tuple[Fault, int | None]] = field(default_factory=Counter)
    _generators: dict[Fault, random.Random] = field(default_factory=dict)

    def check(self, fault: Fault, *, cassette: int | None = None) -> FaultRule | None:
        """Count one opportunity for `fault` and return the rule that fires now, if any.

        `cassette` restricts the check to rules for that cassette (or for any cassette), and
        opportunities are then counted per cassette ("the 4th pick from cassette 1").
        """
        rules = [
            rule
            for rule in self.rules
            if rule.fault is fault and (rule.cassette is None or rule.cassette == cassette)
        ]
        self._opportunities[fault, cassette] += 1
        opportunity = self._opportunities[fault, cassette]
        for rule in rules:
            if opportunity in rule.occurrences or self._draw(fault) < rule.probability:
                self.fired.append(FiredFault(fault, opportunity, cassette))
                return rule
        return None

    def _draw(self, fault: Fault) -> float:
        generator = self._generators.get(fault)
        if generator is None:
            generator = self._generators[fault] = random.Random(f"{self.seed}:{fault.value}")
        return generator.random()

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any], *, seed: int = 0) -> FaultSchedule:
        """Build from scenario data: {"dispenser.pick_error": {"at": [2], "probability": 0.1,
        "cassette": 1}, ...}. Raises ValueError naming the bad entry."""
        return cls(tuple(_rule_from_mapping(name, value) for name, value in spec.items()), seed)

    @classmethod
    def of(cls, *rules: FaultRule, seed: int = 0) -> FaultSchedule:
        """A schedule from rules (tests)."""
        return cls(tuple(rules), seed)


def at(fault: Fault, *occurrences: int, cassette: int | None = None) -> FaultRule:
    """Shorthand: `fault` fires on these opportunity numbers."""
    return FaultRule(fault, frozenset(occurrences), cassette=cassette)


def _rule_from_mapping(name: str, value: Any) -> FaultRule:
    try:
        fault = Fault(name)
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {name!r}; known faults: {known}") from None
    if not isinstance(value, Mapping) or set(value) - {"at", "probability", "cassette"}:
        raise ValueError(f"{name}: expected a table with 'at', 'probability', 'cassette'")
    occurrences: Iterable[int] = value.get("at", ())
    return FaultRule(
        fault,
        frozenset(int(n) for n in occurrences),
        float(value.get("probability", 0.0)),
        value.get("cassette"),
    )
