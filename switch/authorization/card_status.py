"""The card status state machine: every legal status change, in one table (issue 18).

The CLI (``atm-switch cards ...``), the admin API and the console all change a card's status
through :func:`decide`, so they refuse the same things with the same words. The rules:

- ``lost``, ``stolen`` and ``closed`` are final for one person: from lost a card may still be
  reported stolen or closed, from stolen only closed, from closed nothing.
- Reactivating a lost or stolen card (``unblock``) is a dual-control operation: :func:`decide`
  answers :data:`SECOND_PERSON`, and only the approval's executor applies ``reactivate``.
- A closed card never becomes active again, not even with a second person.
- ``reset_tries`` changes only the PIN try counter, never the status.

Besides the status, the database keeps ``cards.reported`` (migration 0610): the worst of lost,
stolen and closed the card was ever reported. A trigger refuses an active or blocked status
while it is set, and only ``reactivate`` clears it (never for a closed card), so no sequence of
block / unblock / lost / reset-tries, nor re-issuing the same PAN, makes such a card usable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ACTIVE: Final = "active"
BLOCKED: Final = "blocked"
LOST: Final = "lost"
STOLEN: Final = "stolen"
CLOSED: Final = "closed"

# What one operator may do: (status now, operation) -> status after.
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    (ACTIVE, "block"): BLOCKED,
    (ACTIVE, "unblock"): ACTIVE,  # idempotent: resets the try counter as an unblock does
    (ACTIVE, "lost"): LOST,
    (ACTIVE, "stolen"): STOLEN,
    (ACTIVE, "close"): CLOSED,
    (BLOCKED, "block"): BLOCKED,
    (BLOCKED, "unblock"): ACTIVE,
    (BLOCKED, "lost"): LOST,
    (BLOCKED, "stolen"): STOLEN,
    (BLOCKED, "close"): CLOSED,
    (LOST, "stolen"): STOLEN,
    (LOST, "close"): CLOSED,
    (STOLEN, "close"): CLOSED,
}
# What needs a second person: the approval's executor applies ``reactivate``.
DUAL_CONTROLLED: Final[dict[tuple[str, str], str]] = {
    (LOST, "unblock"): "reactivate",
    (STOLEN, "unblock"): "reactivate",
}
REACTIVATION: Final[dict[str, str]] = {LOST: ACTIVE, STOLEN: ACTIVE}
OPERATIONS: Final = ("block", "unblock", "lost", "stolen", "close")
# The status each CLI verb asks for (``cards lost`` ...), for the old status-named calls.
OPERATION_FOR_STATUS: Final = {BLOCKED: "block", ACTIVE: "unblock", LOST: "lost",
                               STOLEN: "stolen", CLOSED: "close"}


class StatusChangeRefused(ValueError):
    """The change is not allowed from the card's status; the message says why."""


@dataclass(frozen=True, slots=True)
class SecondPerson:
    """The change is legal only as a dual-control request; ``operation`` is what runs then."""

    operation: str


def decide(status: str, operation: str) -> str | SecondPerson:
    """The status after ``operation`` by one person, or :class:`SecondPerson`; else refused."""
    if operation not in OPERATIONS:
        raise StatusChangeRefused(f"unknown card operation {operation!r}")
    after = TRANSITIONS.get((status, operation))
    if after is not None:
        return after
    second = DUAL_CONTROLLED.get((status, operation))
    if second is not None:
        return SecondPerson(second)
    raise StatusChangeRefused(_refusal(status, operation))


def reactivated(status: str) -> str:
    """The status a second person's approval gives a lost or stolen card; refused otherwise."""
    after = REACTIVATION.get(status)
    if after is None:
        raise StatusChangeRefused(
            "a closed card is never reactivated" if status == CLOSED
            else f"only a lost or stolen card is reactivated (this one is {status})")
    return after


def _refusal(status: str, operation: str) -> str:
    if status == CLOSED:
        return "a closed card stays closed"
    if status in (LOST, STOLEN):
        return (f"a {status} card cannot be set to {operation}: reported {status} is final "
                "(reactivation needs a second person: unblock in the back office)")
    return f"a card that is {status} cannot be set to {operation}"


def check_table() -> None:
    """Every target is a status; no operation is both single- and dual-controlled."""
    statuses = {ACTIVE, BLOCKED, LOST, STOLEN, CLOSED}
    if not set(TRANSITIONS.values()) <= statuses or set(TRANSITIONS) & set(DUAL_CONTROLLED):
        raise RuntimeError("the card status table is inconsistent")
    if any(to == ACTIVE for (frm, _), to in TRANSITIONS.items() if frm not in (ACTIVE, BLOCKED)):
        raise RuntimeError("only a blocked card becomes active without a second person")


check_table()
