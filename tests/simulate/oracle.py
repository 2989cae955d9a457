"""The oracle: what every terminal was told agrees with the final state, and the final state is
the reference model run in the engine's commit order.

Answers (per message key and class, spec 5.5, 5.6, 10):

* ``answer.changed``: a decided answer (not ``91``) the terminal received differs from the
  recorded one (a repeat changed a decided original, or the record was rewritten);
* ``answer.91_recorded_otherwise``: every answer delivered was ``91``, yet the key holds
  another decision: a ``91`` that left an effect (spec 5.6, 10);
* ``answer.91_then_decided``: the first answer delivered was ``91`` and a repeat got another
  (spec 5.6: a repeat of a ``91`` gets ``91`` again);
* ``answer.unrecorded``: a decided answer was received but nothing is recorded;
* ``answer.duplicate``: the same key with other content was not answered ``94`` (or ``91``);
* ``answer.advice``: an advice was answered other than ``00``/``91``, or ``00`` unrecorded.

State: the recorded messages are replayed through :class:`~tests.simulate.model.Book` in
commit order (``commit_seq``; with only ``id`` the search may move a message past others it
overlapped with in real time). Each replayed 0200 must get the recorded code. Where the model
allows several outcomes the search tries each: a 0200 recorded ``91`` had no effect, or had
its effect and the switch undid it later (any point before a message it conflicts with); a
deposit hold expired before or after each of its advices that came late enough. The final
book must equal the database's balances, daily counters and cards for some branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.simulate import model
from tests.simulate.journal import Journal, Sent
from tests.simulate.observe import FinalState, Row

search_nodes_max = 50_000
reorder_window = 6  # with only ``id``, how far ahead a message may be taken


@dataclass(frozen=True, slots=True)
class Item:
    sent: Sent
    code: str | None


@dataclass(frozen=True, slots=True)
class Pending:
    """An event the model may place later: the switch's undo of a 91, a deposit's expiry."""

    kind: str  # "undo" or "expire"
    key: model.Key
    account: str
    card: str
    old_pin: tuple[str, str] | None = None
    not_before: frozenset[model.Key] = frozenset()  # advices it cannot precede


@dataclass(slots=True)
class Verdict:
    violations: list[str] = field(default_factory=list)
    book: model.Book | None = None  # the branch that matched
    nodes: int = 0


def is_marker(row: Row) -> bool:
    """A 0200 key a reversal reserved before its original arrived (spec 5.4): it records no
    decision of the original (v3 names the state; v2 records only the code 94)."""
    return row.message_class == "0200" and (row.state == "marker" or row.code == "94")


def check_answers(journal: Journal, rows: list[Row]) -> list[str]:
    recorded = {(row.message_class, row.key): row for row in rows if not is_marker(row)}
    violations = []
    for (message_class, key), sent in journal.sent.items():
        row = recorded.get((message_class, key))
        stored = row.code if row is not None else None
        codes = sent.codes()
        decided = [c for c in codes if c not in (None, "91")]
        where = f"{message_class} {key} answers {codes} recorded {stored}"
        if message_class == "0200":
            if row is None and decided and all(c == "94" for c in decided):
                continue  # the original after its reversal: answered 94 from the marker
            for code in decided:
                if row is None:
                    violations.append(f"answer.unrecorded: {where}")
                    break
                if code != stored:
                    violations.append(f"answer.changed: {where}")
                    break
            delivered = [c for c in codes if c is not None]
            if delivered and all(c == "91" for c in delivered) and stored not in (None, "91"):
                violations.append(f"answer.91_recorded_otherwise: {where}")
            if delivered and delivered[0] == "91" and any(c != "91" for c in delivered):
                violations.append(f"answer.91_then_decided: {where}")
            for other in sent.codes(same_content=False):
                if other not in (None, "91", "94"):
                    violations.append(f"answer.duplicate: {where}, other content got {other}")
        else:
            if any(c not in (None, "91", "00") for c in codes):
                violations.append(f"answer.advice: {where}")
            if "00" in codes and row is None:
                violations.append(f"answer.unrecorded: {where}")
    return violations


def _items(journal: Journal, rows: list[Row], violations: list[str]) -> list[Item]:
    reversed_originals = {s.model.original for s in journal.of_class("0420")
                          if isinstance(s.model, model.Reversal)}
    items = []
    for row in rows:
        sent = journal.sent.get((row.message_class, row.key))
        if is_marker(row):
            if row.key not in reversed_originals:
                violations.append(f"state.marker_without_reversal: {row}")
            continue  # the model makes its own marker from the reversal
        if sent is None:
            violations.append(f"state.unknown_row: {row}")
            continue
        if row.state in ("pending", "claimed"):
            violations.append(f"state.claim_left_pending: {row}")
        items.append(Item(sent, row.code))
    return items


class _Search:
    def __init__(self, items: list[Item], final: FinalState, strict: bool, expiry_s: float
                 ) -> None:
        self.items = items
        self.final = final
        self.strict = strict
        self.expiry_s = expiry_s
        self.nodes = 0
        self.deepest = -1
        self.reason = ""
        self.found: model.Book | None = None

    def fail(self, depth: int, reason: str) -> None:
        if depth > self.deepest:
            self.deepest, self.reason = depth, reason

    def run(self, book: model.Book) -> None:
        self._walk(book, frozenset(), (), 0)

    def _candidates(self, done: frozenset[int]) -> Iterator[int]:
        todo = [i for i in range(len(self.items)) if i not in done]
        if not todo:
            return
        if self.strict:
            yield todo[0]
            return
        window = todo[:reorder_window]
        for j in window:
            start = self.items[j].sent.start
            if all(self.items[k].sent.end >= start for k in todo if k != j and k < j):
                yield j

    def _walk(self, book: model.Book, done: frozenset[int], pending: tuple[Pending, ...],
              depth: int) -> bool:
        self.nodes += 1
        if self.nodes > search_nodes_max or self.found is not None:
            return self.found is not None
        if len(done) == len(self.items):
            return self._finish(book, pending, depth)
        for index in self._candidates(done):
            item = self.items[index]
            for fire in _conflicting(pending, item.sent):
                trial = book.clone()
                for event in fire:
                    _fire(trial, event)
                rest = tuple(p for p in pending if p not in fire)
                for branch, extra in self._apply(trial, item, depth):
                    if self._walk(branch, done | {index}, rest + extra, depth + 1):
                        return True
        return False

    def _apply(self, book: model.Book, item: Item, depth: int
               ) -> Iterator[tuple[model.Book, tuple[Pending, ...]]]:
        message = item.sent.model
        if not isinstance(message, model.Financial):
            if item.code != "00":
                self.fail(depth, f"advice {item.sent.key} recorded {item.code}")
            book.advice(message)
            yield book, ()
            return
        card = book.cards.get(message.card)
        if item.code == "91":
            untouched = book.clone()
            untouched.decided.add(message.key)
            yield untouched, ()
            old_pin = (message.card, card.pin) if card is not None else None
            # Or it was decided first and voided later: the ledger effect of a 00 goes back,
            # but what deciding did to the card stays (a wrong PIN counted, a right one
            # resetting the count, whatever the code: seed 20266031, a 61 with the right PIN).
            book.request(message)
            yield book, (Pending("undo", message.key, card.account if card else "",
                                 message.card, old_pin if message.kind == "pin_change"
                                 else None),)
            return
        code = book.request(message)
        if code != item.code:
            self.fail(depth, f"0200 {message.key} ({message.kind} {message.amount} card "
                             f"{message.card}): model {code}, recorded {item.code}")
            return
        extra: tuple[Pending, ...] = ()
        if code == "00" and message.kind == "deposit":
            early = frozenset(s.sent.key for s in self.items
                              if isinstance(s.sent.model, model.Completion | model.Reversal)
                              and s.sent.model.original == message.key
                              and s.sent.end < item.sent.start + self.expiry_s)
            extra = (Pending("expire", message.key, book.cards[message.card].account,
                             message.card, not_before=early),)
        yield book, extra

    def _finish(self, book: model.Book, pending: tuple[Pending, ...], depth: int) -> bool:
        final = book.clone()
        for event in pending:
            _fire(final, event)
        final.expire_withdrawals()
        for key, original in final.originals.items():
            if original.open:
                final.expire(key)
        difference = compare(final, self.final)
        if difference:
            self.fail(depth, "final state differs: " + "; ".join(difference))
            return False
        self.found = final
        return True


def _conflicting(pending: tuple[Pending, ...], sent: Sent) -> Iterator[tuple[Pending, ...]]:
    """Which pending events to fire before ``sent``: none, or each conflicting one alone
    (enough for the histories here: rarely two pending events touch one message)."""
    yield ()
    message = sent.model
    for event in pending:
        if event.kind == "expire":
            if isinstance(message, model.Completion | model.Reversal) \
                    and message.original == event.key and sent.key not in event.not_before:
                yield (event,)
        elif isinstance(message, model.Financial):
            if message.card == event.card or message.to_account == event.account or \
                    _account_of(message) == event.account:
                yield (event,)
        elif message.original == event.key:
            yield (event,)


def _account_of(message: model.Financial) -> str | None:
    from tests.simulate.world import CARDS

    return CARDS[message.card][1] if message.card in CARDS else None


def _fire(book: model.Book, event: Pending) -> None:
    if event.kind == "expire":
        book.expire(event.key)
    else:
        book.undo(event.key, event.old_pin)


def compare(book: model.Book, final: FinalState) -> list[str]:
    differences = []
    for name, account in book.accounts.items():
        expected = (account.balance, account.held, account.pending_credit)
        if final.balances.get(name) != expected:
            differences.append(f"account {name}: model {expected}, database "
                               f"{final.balances.get(name)} (ledger, held, pending credit)")
    if final.counters is not None:
        expected_counters = {}
        for kind, counters in (("withdrawal", book.withdrawn), ("transfer", book.transferred)):
            for (card, day), (amount, count) in counters.items():
                if amount or count:
                    expected_counters[(card, kind, day)] = (amount, count)
        if expected_counters != final.counters:
            differences.append(f"daily counters: model {expected_counters}, "
                               f"database {final.counters}")
    for name, model_card in book.cards.items():
        status, tries = final.cards.get(name, ("missing", -1))
        if (status == "blocked") != model_card.blocked \
                or (not model_card.blocked and tries != model_card.tries):
            differences.append(f"card {name}: model blocked={model_card.blocked} "
                               f"tries={model_card.tries}, database {status} tries={tries}")
    return differences


def check(journal: Journal, final: FinalState, opening: model.Book, *, expiry_s: float
          ) -> Verdict:
    verdict = Verdict()
    verdict.violations += journal.violations
    verdict.violations += check_answers(journal, final.rows)
    items = _items(journal, final.rows, verdict.violations)
    search = _Search(items, final, final.ordered_by == "commit_seq", expiry_s)
    search.run(opening.clone())
    verdict.nodes = search.nodes
    if search.found is None:
        budget = " (search budget exhausted)" if search.nodes > search_nodes_max else ""
        verdict.violations.append(f"state.model_differs{budget}: {search.reason}")
    verdict.book = search.found
    for row in final.invariant_rows:
        verdict.violations.append(f"state.invariant: {row}")
    for name, (_ledger, held, pending) in final.balances.items():
        if held or pending:
            verdict.violations.append(
                f"state.held_after_expiry: {name} held {held} pending credit {pending}")
    return verdict
