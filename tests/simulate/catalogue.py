"""Named histories: the failures issue 21 lists, written as histories of the simulation, so the
same runner, faults and oracle that judge the random histories show each of them (they fail
on engine v2 and pass on v3; docs/testing.md, "Simulation"). Deterministic: no choice is
drawn, only the machine's timing varies.

``ref`` names an earlier message as the runner does (the first that fits is 0).
"""

from __future__ import annotations

from tests.simulate.history import History, Send, Step
from tests.simulate.pg_proxy import DbFault

_WITHDRAW = Send("request", terminal=0, card=0, kind="withdrawal", amount=100_000)


def late_repeat_after_completion(deadline_s: float) -> History:
    """Failure 1: 00, completed, then an exact repeat while PostgreSQL answers late. The repeat
    must get 00 and the customer stay debited (spec 5.5)."""
    return (
        Step((_WITHDRAW,)),
        Step((Send("complete", ref=0, part=0),)),
        Step((Send("late_repeat", ref=0),), fault=DbFault.DELAY, fault_p=1.0),
    )


def void_lost_in_a_crash(deadline_s: float) -> History:
    """Failure 2: the commit's reply is late (91), the void cannot reach PostgreSQL, the switch
    is killed before it retries: the hold must not be captured at expiry (spec 5.6, 10)."""
    return (
        Step((_WITHDRAW,), fault=DbFault.DELAY, fault_p=1.0, fault_then=DbFault.CUT_BEFORE,
             then_after_s=0.3, crash="kill", crash_after_answers=True),
    )


def repeat_of_a_91_before_its_void(deadline_s: float) -> History:
    """Failure 2: a repeat of a 91 that arrives before the switch's clean-up must get 91
    again, and the clean-up must still happen (spec 5.6)."""
    return (
        Step((_WITHDRAW,), fault=DbFault.DELAY, fault_p=1.0, fault_then=DbFault.CUT_BEFORE,
             then_after_s=0.3),
        Step((Send("repeat", ref=0),)),
    )


def repeat_of_a_91_from_the_terminal_gate(deadline_s: float) -> History:
    """Seed 20261347 of the 30-minute run: the terminal's status had aged out of its cache and
    PostgreSQL was unreachable for the re-read, so the 91 came from the terminal gate, where
    nothing recorded it; the repeat was then approved. A repeat of a 91 gets 91 (spec 5.6)."""
    return (
        Step((), pause_s=2.5),  # past the registry cache's TTL (switch/netmgmt.py)
        Step((_WITHDRAW,), fault=DbFault.CUT_AFTER, fault_p=1.0),
        Step((Send("repeat", ref=0),)),
    )


def voided_pin_change(deadline_s: float) -> History:
    """Failure 2: a PIN change answered 91 (its commit's reply late, its void cut off, the
    switch killed) must leave the old PIN working (the PIN probe after the history)."""
    return (
        Step((Send("request", card=2, kind="pin_change", new_pin=0),), fault=DbFault.DELAY,
             fault_p=1.0, fault_then=DbFault.CUT_BEFORE, then_after_s=0.3, crash="kill",
             crash_after_answers=True),
    )


def two_reversals_in_one_batch(deadline_s: float) -> History:
    """Failure 3: a 0420 reason 32 (95 = 50.00 kept) and a 0420 reason 22 of one original in
    one batch: only the first the engine records applies."""
    return (
        Step((_WITHDRAW,)),
        Step((Send("reverse", ref=0, reason="32", part=5),
              Send("reverse", ref=0, reason="22")), fault=DbFault.SLOW, fault_p=1.0,
             stagger_s=0.0),
    )


def second_completion_after_presumed_capture(deadline_s: float) -> History:
    """Failure 6: the hold expires (captured in full), a full 0220 arrives late, then a smaller
    one: the second completion changes nothing (spec 10's correction is made once)."""
    return (
        Step((_WITHDRAW,), pause_s=4.5),
        Step((Send("complete", ref=0, part=0),)),
        Step((Send("complete", ref=0, part=1),)),
    )


def both_batch_classes_on_one_key(deadline_s: float) -> History:
    """Failure 6: 0200 repeats and 0420s of the same originals in batches at once (the lock
    orders of the two classes once crossed: 40P01 answered 96)."""
    burst = tuple(s for ref in (0, 1) for s in (
        Send("repeat", ref=ref), Send("reverse", ref=ref, reason="17"),
        Send("reverse_unknown", terminal=ref)))
    return (
        Step((_WITHDRAW, Send("request", terminal=1, card=2, kind="withdrawal",
                              amount=50_000))),
        Step(burst, fault=DbFault.SLOW, fault_p=1.0),
    )


CATALOGUE = {
    "late_repeat_after_completion": late_repeat_after_completion,
    "void_lost_in_a_crash": void_lost_in_a_crash,
    "repeat_of_a_91_before_its_void": repeat_of_a_91_before_its_void,
    "voided_pin_change": voided_pin_change,
    "repeat_of_a_91_from_the_terminal_gate": repeat_of_a_91_from_the_terminal_gate,
    "two_reversals_in_one_batch": two_reversals_in_one_batch,
    "second_completion_after_presumed_capture": second_completion_after_presumed_capture,
    "both_batch_classes_on_one_key": both_batch_classes_on_one_key,
}
