"""Histories: what the terminals send, when the database misbehaves and when things crash.

A history is a tuple of steps; a step sends its messages concurrently (so they can share a
batch), optionally inside a database fault window, optionally with a crash (the switch killed,
or PostgreSQL restarted) ``crash_after_s`` into the step, and may pause afterwards (so holds
expire and later advices are late, spec 10). Messages name earlier ones by ``ref`` (taken
modulo what exists when the step runs), so any drawn history is runnable and shrinks well.

One generator, two sources of choices: Hypothesis (``histories()``, shrinking in pytest) and
``random.Random(seed)`` (``random_history``, for ``python -m tests.simulate``), so a seed
replays the same history exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from hypothesis import strategies as st

from tests.simulate.pg_proxy import DbFault
from tests.simulate.world import CARD_NAMES, NEW_PINS, PAYEES, TERMINALS

Action = Literal["request", "complete", "reverse", "repeat", "conflict", "reverse_unknown",
                 "late_original", "late_repeat", "cut"]
Crash = Literal["kill", "pg_restart"]
T = TypeVar("T")

REASONS = ("68", "22", "17", "32")


@dataclass(frozen=True, slots=True)
class Send:
    action: Action
    terminal: int = 0
    card: int = 0
    kind: str = "withdrawal"
    amount: int = 0
    pin_right: bool = True
    ref: int = 0
    reason: str = "68"
    # complete: 0 full, 1 less by one unit, 2 zero; reverse 32: units kept (field 95);
    # cut: 0 at once, 1 after 50 ms, 2 after half the deadline
    part: int = 0
    new_pin: int = 0
    payee: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """``fault`` while the step runs; with ``fault_then``, the fault changes to it
    ``then_after_s`` into the step (a commit's reply delayed, then the database unreachable
    for the void that follows). A crash closes the window: the database is back afterwards."""

    sends: tuple[Send, ...]
    fault: DbFault | None = None
    fault_p: float = 0.0
    fault_then: DbFault | None = None
    then_after_s: float = 0.0
    crash: Crash | None = None
    crash_after_s: float = 0.0
    crash_after_answers: bool = False  # crash once every send of the step was answered
    pause_s: float = 0.0
    stagger_s: float | None = None  # between the step's sends; None: the runner's default


History = tuple[Step, ...]


class Chooser:
    """Where choices come from: ``integer(lo, hi)`` inclusive, like Hypothesis."""

    def __init__(self, integer: Callable[[int, int], int]) -> None:
        self.integer = integer

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(0, 99) < percent


_AMOUNTS = {  # minor units; a few break the rules on purpose (13, 61)
    "withdrawal": (10_000, 20_000, 50_000, 100_000, 150_000, 200_000, 300_000, 12_345),
    "deposit": (5_000, 30_000, 100_000),
    "transfer": (10_000, 40_000, 120_000),
    "balance": (0,),
    "pin_change": (0,),
}
_KINDS = ("withdrawal",) * 5 + ("deposit",) * 2 + ("transfer", "balance", "pin_change")


def draw_send(c: Chooser) -> Send:
    action: Action = c.pick(("request",) * 6 + ("complete",) * 3 + ("reverse",) * 2
                            + ("repeat",) * 3 + ("conflict", "reverse_unknown",
                                                 "late_original", "late_repeat", "cut"))
    kind = c.pick(_KINDS)
    return Send(
        action=action,
        terminal=c.integer(0, len(TERMINALS) - 1),
        card=c.integer(0, len(CARD_NAMES) - 1),
        kind=kind,
        amount=c.pick(_AMOUNTS[kind]),
        pin_right=c.chance(90),
        ref=c.integer(0, 7),
        reason=c.pick(REASONS),
        part=c.integer(0, 2),
        new_pin=c.integer(0, len(NEW_PINS) - 1),
        payee=c.integer(0, len(PAYEES) - 1),
    )


def draw_step(c: Chooser, *, deadline_s: float, faults: bool) -> Step:
    sends = tuple(draw_send(c) for _ in range(c.integer(1, 5)))
    fault: DbFault | None = None
    fault_p = 0.0
    crash: Crash | None = None
    if faults and c.chance(35):
        fault = c.pick((DbFault.SLOW, DbFault.SLOW, DbFault.DELAY, DbFault.CUT_BEFORE,
                        DbFault.CUT_AFTER))
        fault_p = c.pick((0.3, 0.6, 1.0)) if fault is not DbFault.SLOW else 1.0
    fault_then: DbFault | None = None
    if fault is DbFault.DELAY and c.chance(40):
        fault_then = DbFault.CUT_BEFORE
    if faults and c.chance(12):
        crash = c.pick(("kill", "kill", "pg_restart"))
    return Step(
        sends=sends, fault=fault, fault_p=fault_p, fault_then=fault_then,
        then_after_s=c.pick((0.1, 0.3, deadline_s * 0.6)), crash=crash,
        crash_after_s=c.pick((0.0, 0.05, 0.2, deadline_s * 0.8, deadline_s * 1.3)),
        pause_s=c.pick((0.0,) * 8 + (0.5, 4.0)),
    )


def draw_history(c: Chooser, *, steps_max: int, deadline_s: float, faults: bool = True
                 ) -> History:
    return tuple(draw_step(c, deadline_s=deadline_s, faults=faults)
                 for _ in range(c.integer(2, steps_max)))


def random_history(seed: int, *, steps_max: int, deadline_s: float) -> History:
    generator = random.Random(seed)
    return draw_history(Chooser(generator.randint), steps_max=steps_max, deadline_s=deadline_s)


@st.composite
def histories(draw: st.DrawFn, steps_max: int = 8, deadline_s: float = 1.0) -> History:
    return draw_history(Chooser(lambda lo, hi: draw(st.integers(lo, hi))),
                        steps_max=steps_max, deadline_s=deadline_s)
