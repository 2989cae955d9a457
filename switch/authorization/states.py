"""The message state machine, written once (docs/authorization.md, "Message states").

Every row of ``auth_messages`` is in one of these states. A 0200 row moves along the table
below; an advice row (0220/0420) is ``claimed`` and then ``recorded``; a ``marker`` is the
0200 key a reversal reserved before its original arrived (spec 5.4).

The SQL mirrors this table in ``auth_next_state(state, event)`` (migration 0320), and every
transition there is a compare-and-set ``UPDATE ... WHERE state = <expected>``, never a
decision from a row read earlier. ``tests/authorization/test_states.py`` checks that the two
tables agree entry for entry, so neither can drift.

Rules the table enforces (spec 5.4-5.6, 10):

* a repeat never changes a decided original (no event moves a decided state for a repeat);
* a void (the switch answered ``91``) applies to ``approved`` or ``declined``, and to a request
  something else moved while the void was owed (a reversal, a completion, the expiry sweep):
  a terminal told only ``91`` was given no decision to act on (spec 5.6, 10), so the void
  undoes whatever is left; only for the attempt that made the claim (the SQL checks the token)
  and only if no repeat was handed the decision (then the terminal may have acted on it);
* at most one effective reversal: ``reversed`` and ``partially_reversed`` accept no advice;
* a completion after a presumed capture moves ``presumed_captured`` to ``completed`` once, so a
  second completion finds nothing to correct.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class State(enum.StrEnum):
    CLAIMED = "claimed"  # key taken, no decision yet (card-network request being asked)
    APPROVED = "approved"  # 00; a withdrawal's or deposit's hold is open
    DECLINED = "declined"  # any code but 00 and 91
    VOIDED = "voided"  # 91: whatever the request moved went back in the same transaction
    COMPLETED = "completed"  # 0220 applied (captured, the rest released)
    PARTIALLY_REVERSED = "partially_reversed"  # 0420 kept field 95 of it
    REVERSED = "reversed"  # 0420 gave it all back
    PRESUMED_CAPTURED = "presumed_captured"  # withdrawal hold expired: captured, listed
    RELEASED = "released"  # deposit hold expired unposted, listed
    MARKER = "marker"  # reserved by a reversal of an unknown original (answers 94)
    RECORDED = "recorded"  # an advice row, answered 00


class Event(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    VOID = "void"
    COMPLETE = "complete"  # 0220
    REVERSE_FULL = "reverse_full"  # 0420 keeping nothing
    REVERSE_PARTIAL = "reverse_partial"  # 0420 keeping field 95 (> 0)
    EXPIRE_CAPTURE = "expire_capture"  # hold expiry of a withdrawal
    EXPIRE_RELEASE = "expire_release"  # hold expiry of a deposit
    RECORD = "record"  # an advice's own row


S, E = State, Event
TRANSITIONS: Mapping[tuple[State, Event], State] = MappingProxyType({
    (S.CLAIMED, E.APPROVE): S.APPROVED,
    (S.CLAIMED, E.DECLINE): S.DECLINED,
    (S.CLAIMED, E.VOID): S.VOIDED,
    (S.CLAIMED, E.RECORD): S.RECORDED,
    (S.APPROVED, E.VOID): S.VOIDED,
    (S.DECLINED, E.VOID): S.VOIDED,
    # Undone by something else before the switch's void arrived (migration 0321): the 91
    # is still recorded, and a presumed capture is given back (the terminal dispensed nothing).
    (S.REVERSED, E.VOID): S.VOIDED,
    (S.RELEASED, E.VOID): S.VOIDED,
    (S.PRESUMED_CAPTURED, E.VOID): S.VOIDED,
    # An advice posted it (all or part) while the void was owed (migration 0323): the terminal
    # was told only 91, so what the advice posted is reversed.
    (S.COMPLETED, E.VOID): S.VOIDED,
    (S.PARTIALLY_REVERSED, E.VOID): S.VOIDED,
    (S.APPROVED, E.COMPLETE): S.COMPLETED,
    (S.APPROVED, E.REVERSE_FULL): S.REVERSED,
    (S.APPROVED, E.REVERSE_PARTIAL): S.PARTIALLY_REVERSED,
    (S.APPROVED, E.EXPIRE_CAPTURE): S.PRESUMED_CAPTURED,
    (S.APPROVED, E.EXPIRE_RELEASE): S.RELEASED,
    (S.PRESUMED_CAPTURED, E.COMPLETE): S.COMPLETED,
    (S.PRESUMED_CAPTURED, E.REVERSE_FULL): S.REVERSED,
    (S.PRESUMED_CAPTURED, E.REVERSE_PARTIAL): S.PARTIALLY_REVERSED,
    (S.COMPLETED, E.REVERSE_FULL): S.REVERSED,
    (S.COMPLETED, E.REVERSE_PARTIAL): S.PARTIALLY_REVERSED,
})  # fmt: skip

# States whose answer is final and may be sent again to a repeat (spec 5.5).
DECIDED: frozenset[State] = frozenset(State) - {S.CLAIMED}
# States a void may still move (the switch's 91 after a decision it could not deliver).
VOIDABLE: frozenset[State] = frozenset(s for (s, e) in TRANSITIONS if e is E.VOID) - {S.CLAIMED}


class IllegalTransition(Exception):
    """An event that the table does not allow in this state (a broken invariant)."""


def next_state(state: State, event: Event) -> State:
    """The state after ``event``; raises :class:`IllegalTransition` when it is not allowed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{event.value} is not allowed in state {state.value}") from None


def state_for_code(response_code: str) -> State:
    """The state a freshly decided 0200 row takes for its field 39."""
    if response_code == "00":
        return S.APPROVED
    if response_code == "91":
        return S.VOIDED
    return S.DECLINED
