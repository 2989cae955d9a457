"""The message state machine is written once: states.py's table and the SQL's
auth_next_state (migrations 0320, 0321, 0323) must agree on every (state, event) pair."""

from __future__ import annotations

import itertools

import pytest

from switch.authorization.states import (
    DECIDED,
    TRANSITIONS,
    VOIDABLE,
    Event,
    IllegalTransition,
    State,
    next_state,
    state_for_code,
)
from switch.db.runtime import open_database


def test_illegal_transitions_raise() -> None:
    """A repeat's or a second reversal's event on a settled row is refused, not ignored."""
    with pytest.raises(IllegalTransition):
        next_state(State.REVERSED, Event.REVERSE_FULL)
    with pytest.raises(IllegalTransition):
        next_state(State.VOIDED, Event.COMPLETE)  # a 0220 after the void finds nothing
    with pytest.raises(IllegalTransition):
        next_state(State.PARTIALLY_REVERSED, Event.REVERSE_FULL)  # at most one reversal
    assert next_state(State.PRESUMED_CAPTURED, Event.COMPLETE) is State.COMPLETED


def test_a_void_applies_to_every_decided_state_it_can_undo() -> None:
    """First decisions, and requests something else moved while the void was owed (a reversal,
    the expiry sweep: migration 0321; a completion or a partial reversal: migration 0323, spec
    5.6 "a 91 never leaves a ledger effect"); never a voided row, a marker or an advice row."""
    assert VOIDABLE == {State.APPROVED, State.DECLINED, State.REVERSED, State.RELEASED,
                        State.PRESUMED_CAPTURED, State.COMPLETED, State.PARTIALLY_REVERSED}
    assert State.CLAIMED not in DECIDED
    assert [state_for_code(c) for c in ("00", "91", "51")] == [
        State.APPROVED, State.VOIDED, State.DECLINED]


def test_every_state_is_reachable_from_a_claim() -> None:
    reached = {State.CLAIMED}
    frontier = [State.CLAIMED]
    while frontier:
        state = frontier.pop()
        for (origin, _), target in TRANSITIONS.items():
            if origin is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(State) - {State.MARKER}  # a marker is inserted as such


async def test_the_sql_table_is_the_python_table(pg_dsn: str) -> None:
    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=2) as db:
        pairs = list(itertools.product(State, Event))
        rows = await db.fetch(
            "SELECT s, e, auth_next_state(s, e) AS target"
            " FROM unnest($1::text[], $2::text[]) AS t (s, e)",
            [s.value for s, _ in pairs], [e.value for _, e in pairs],
        )
        sql = {(State(r["s"]), Event(r["e"])): r["target"] for r in rows}
        python = {pair: (TRANSITIONS[pair].value if pair in TRANSITIONS else None)
                  for pair in pairs}
        assert sql == python
        check = await db.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'auth_messages_state_check'")
        assert all(f"'{state.value}'" in check for state in State)
