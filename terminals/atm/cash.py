"""Cash decisions the ATM makes before it asks the host: can it pay this amount, with which notes.

Pure functions over what the terminal knows of its cassettes (denomination, notes believed
inside, usable or not). The mix prefers large notes, the way ATMs save small notes for small
amounts, and searches (bounded) when the greedy choice cannot make the amount (e.g. 60.00 from
50s and 20s: three 20s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The presenter holds at most this many notes per dispense (one bundle).
notes_per_dispense_max = 40
# The dispenser protocol allows at most this many notes per cassette per command.
notes_per_cassette_max = 60
# Withdrawal amounts are multiples of this (spec 6: the dispense unit, 100.00 in minor units).
dispense_unit_minor = 10_000


@dataclass(frozen=True, slots=True)
class CassetteView:
    """One cassette as the firmware sees it."""

    denomination: int  # minor units
    notes: int  # believed inside (the counters' `count`)
    usable: bool = True  # present and not reported empty or missing


def plan_dispense(amount: int, cassettes: Sequence[CassetteView]) -> tuple[int, ...] | None:
    """Notes per cassette adding up to ``amount``, or None when these cassettes cannot pay it."""
    if amount <= 0:
        return None
    order = sorted(range(len(cassettes)), key=lambda i: -cassettes[i].denomination)
    counts = [0] * len(cassettes)
    if _fill(amount, order, 0, cassettes, counts, notes_per_dispense_max):
        return tuple(counts)
    return None


def _fill(
    remaining: int,
    order: Sequence[int],
    position: int,
    cassettes: Sequence[CassetteView],
    counts: list[int],
    notes_left: int,
) -> bool:
    """Depth-first over cassettes, largest note first, most notes of it first."""
    if remaining == 0:
        return True
    if position == len(order):
        return False
    index = order[position]
    cassette = cassettes[index]
    available = 0
    if cassette.usable and cassette.denomination > 0:
        available = min(cassette.notes, notes_per_cassette_max, notes_left)
    most = min(available, remaining // cassette.denomination) if available else 0
    for take in range(most, -1, -1):
        counts[index] = take
        if _fill(remaining - take * cassette.denomination, order, position + 1, cassettes,
                 counts, notes_left - take):
            return True
    counts[index] = 0
    return False


def amount_is_dispensable(amount: int) -> bool:
    """Spec 6: a withdrawal is a positive multiple of the dispense unit."""
    return amount > 0 and amount % dispense_unit_minor == 0


def cash_available(cassettes: Sequence[CassetteView]) -> int:
    """Value of the notes in the usable cassettes, minor units."""
    return sum(c.denomination * c.notes for c in cassettes if c.usable)
