"""The reference model: host specification sections 5, 6 and 10, one message at a time.

Written from the spec, not from the engine: a message is applied to a small book (accounts,
cards, daily counters, the originals' holds) and returns the field 39 the spec asks for.
Repeats and same-key duplicates never reach the model (the oracle checks them against the
recorded answer); the model sees each recorded message once, in the engine's commit order.

Where the spec is silent the model follows docs/authorization.md (what a real switch does):
a partial completion counts its final amount toward the day, a second completion of an original
changes nothing, a reversal after a completion posts the correcting entry, and a completion or
reversal of a declined, ``91`` or unknown original changes nothing (the unknown one reserves
the original's key: spec 5.4).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["withdrawal", "deposit", "transfer", "balance", "pin_change"]
# (terminal id, STAN, field 7, acquirer id): spec 5.5's key; the class is kept beside it.
Key = tuple[str, str, str, str]

dispense_unit_minor = 10_000  # spec 6 default
pin_tries_max = 3  # spec 6: the third consecutive wrong PIN blocks the card


@dataclass(frozen=True, slots=True)
class Limits:
    withdrawal_max: int | None = 250_000
    daily_withdrawal_max: int | None = 2_000_000
    daily_withdrawal_count: int | None = None
    transfer_max: int | None = 500_000
    daily_transfer_max: int | None = 5_000_000


@dataclass(frozen=True, slots=True)
class Financial:
    """A 0200 as the model needs it (the PINs in clear: the model is the customer too)."""

    key: Key
    card: str
    kind: Kind
    amount: int
    pin: str
    day: str  # UTC date the switch received it (spec 6: the limits' day)
    new_pin: str | None = None
    to_account: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    key: Key
    original: Key
    amount: int


@dataclass(frozen=True, slots=True)
class Reversal:
    key: Key
    original: Key
    reason: str
    dispensed: int | None = None  # field 95 (reason 32)


Message = Financial | Completion | Reversal


@dataclass(slots=True)
class Account:
    balance: int
    held: int = 0  # open withdrawal holds
    pending_credit: int = 0  # open deposit holds
    active: bool = True


@dataclass(slots=True)
class Card:
    account: str
    pin: str
    limits: Limits = Limits()
    tries: int = 0
    blocked: bool = False


@dataclass(slots=True)
class Original:
    """An approved 0200 with a money effect (withdrawal, deposit, transfer)."""

    kind: Kind
    card: str
    account: str
    amount: int
    day: str
    to_account: str | None = None
    open: bool = True  # a hold not yet captured or released (transfers are posted at once)
    posted: int = 0  # what the ledger moved so far (debit, credit or transfer), net
    completed: bool = False
    reversed: bool = False


@dataclass(slots=True)
class Book:
    accounts: dict[str, Account]
    cards: dict[str, Card]
    originals: dict[Key, Original] = field(default_factory=dict)
    markers: set[Key] = field(default_factory=set)  # originals named by a 0420 first
    decided: set[Key] = field(default_factory=set)  # every 0200 key recorded so far
    # (card, day) -> [amount, count] for withdrawals and for transfers (spec 6, 10).
    withdrawn: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    transferred: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def clone(self) -> Book:
        return copy.deepcopy(self)

    # -- 0200 ---------------------------------------------------------------------------------
    def request(self, message: Financial) -> str:
        """Decide a 0200 in spec 6's order of checks and apply its effect; return field 39."""
        self.decided.add(message.key)
        if message.key in self.markers:
            return "94"  # spec 5.4: the original after its reversal
        card = self.cards.get(message.card)
        if card is None:
            return "14"
        if card.blocked:
            return "75"
        if message.pin != card.pin:
            card.tries += 1
            if card.tries >= pin_tries_max:
                card.blocked = True
                return "75"
            return "55"
        card.tries = 0
        account = self.accounts[card.account]
        if not account.active:
            return "57"
        code = self._amount_code(message, card.limits)
        if code is not None:
            return code
        if message.kind == "balance":
            return "00"
        if message.kind == "pin_change":
            if message.new_pin is None or not 4 <= len(message.new_pin) <= 12:
                return "05"
            card.pin = message.new_pin
            return "00"
        if message.kind == "withdrawal":
            return self._withdraw(message, card, account)
        if message.kind == "deposit":
            account.pending_credit += message.amount
            self.originals[message.key] = Original("deposit", message.card, card.account,
                                                   message.amount, message.day)
            return "00"
        return self._transfer(message, card, account)

    @staticmethod
    def _amount_code(message: Financial, limits: Limits) -> str | None:
        """13 (amount) and 61 per transaction, from the request alone."""
        if message.kind in ("balance", "pin_change"):
            return None if message.amount == 0 else "13"
        if message.amount <= 0:
            return "13"
        if message.kind == "withdrawal":
            if message.amount % dispense_unit_minor:
                return "13"
            if limits.withdrawal_max is not None and message.amount > limits.withdrawal_max:
                return "61"
        if message.kind == "transfer" and limits.transfer_max is not None \
                and message.amount > limits.transfer_max:
            return "61"
        return None

    def _withdraw(self, message: Financial, card: Card, account: Account) -> str:
        counter = self.withdrawn.setdefault((message.card, message.day), [0, 0])
        limits = card.limits
        if limits.daily_withdrawal_max is not None \
                and counter[0] + message.amount > limits.daily_withdrawal_max:
            return "61"
        if limits.daily_withdrawal_count is not None \
                and counter[1] + 1 > limits.daily_withdrawal_count:
            return "65"
        if account.balance - account.held < message.amount:
            return "51"
        account.held += message.amount
        counter[0] += message.amount
        counter[1] += 1
        self.originals[message.key] = Original("withdrawal", message.card, card.account,
                                               message.amount, message.day)
        return "00"

    def _transfer(self, message: Financial, card: Card, account: Account) -> str:
        counter = self.transferred.setdefault((message.card, message.day), [0, 0])
        limit = card.limits.daily_transfer_max
        if limit is not None and counter[0] + message.amount > limit:
            return "61"
        payee = self.accounts.get(message.to_account or "")
        if payee is None or not payee.active:
            return "76"
        if message.to_account == card.account:
            return "05"
        if account.balance - account.held < message.amount:
            return "51"
        account.balance -= message.amount
        payee.balance += message.amount
        counter[0] += message.amount
        counter[1] += 1
        self.originals[message.key] = Original(
            "transfer", message.card, card.account, message.amount, message.day,
            to_account=message.to_account, open=False, posted=message.amount)
        return "00"

    # -- 0220 / 0420 --------------------------------------------------------------------------
    def advice(self, message: Completion | Reversal) -> str:
        """Apply an advice; an advice is always answered 00 once recorded (spec 5.3, 5.4)."""
        original = self.originals.get(message.original)
        if isinstance(message, Reversal) and original is None \
                and message.original not in self.decided:
            self.markers.add(message.original)
            return "00"
        if original is None or original.reversed:
            return "00"
        if isinstance(message, Completion):
            if not original.completed and original.kind != "transfer":
                original.completed = True
                self._settle(original, min(message.amount, original.amount))
            return "00"
        original.reversed = True
        kept = min(message.dispensed or 0, original.amount)
        self._settle(original, kept)
        return "00"

    def _settle(self, original: Original, target: int) -> None:
        """Leave ``target`` of the original posted: capture it from an open hold (releasing
        the rest), or post the correcting entry down to it (never up)."""
        account = self.accounts[original.account]
        if original.open:
            original.open = False
            if original.kind == "withdrawal":
                account.held -= original.amount
                account.balance -= target
            else:
                account.pending_credit -= original.amount
                account.balance += target
            original.posted = target
            self._uncount(original, original.amount - target)
            return
        give_back = original.posted - target
        if give_back <= 0:
            return
        original.posted = target
        if original.kind == "withdrawal":
            account.balance += give_back
        elif original.kind == "deposit":
            account.balance -= give_back
        else:
            account.balance += give_back
            self.accounts[original.to_account or ""].balance -= give_back
        self._uncount(original, give_back)

    def _uncount(self, original: Original, amount: int) -> None:
        """Spec 6: reversed or released amounts count toward nothing; the count goes once
        the withdrawal counts nothing."""
        if original.kind == "deposit" or amount <= 0:
            return
        counters = self.withdrawn if original.kind == "withdrawal" else self.transferred
        counter = counters[(original.card, original.day)]
        counter[0] -= amount
        if original.posted == 0 and not original.open:
            counter[1] -= 1

    # -- time and the switch's own undo -------------------------------------------------------
    def expire(self, key: Key) -> None:
        """Spec 5.2: a withdrawal hold is captured (presumed dispensed), a deposit released."""
        original = self.originals.get(key)
        if original is None or not original.open:
            return
        account = self.accounts[original.account]
        original.open = False
        if original.kind == "withdrawal":
            account.held -= original.amount
            account.balance -= original.amount
            original.posted = original.amount
        else:
            account.pending_credit -= original.amount

    def expire_withdrawals(self) -> None:
        """Presumed dispensed: with spec 10's late completion, a withdrawal's expiry commutes
        with its advices, so the model may apply it at the end."""
        for key, original in self.originals.items():
            if original.kind == "withdrawal":
                self.expire(key)

    def undo(self, key: Key, old_pin: tuple[str, str] | None = None) -> None:
        """Spec 5.6 / 10: the switch answered 91, so whatever the request did goes back."""
        original = self.originals.get(key)
        if original is not None:
            self._settle(original, 0)
            original.reversed = True
        if old_pin is not None:
            card, pin = old_pin
            self.cards[card].pin = pin


def opening_book(accounts: dict[str, int], inactive: set[str],
                 cards: dict[str, tuple[str, str, Limits]]) -> Book:
    """``cards``: name -> (account, PIN, limits)."""
    return Book(
        accounts={name: Account(balance, active=name not in inactive)
                  for name, balance in accounts.items()},
        cards={name: Card(account, pin, limits) for name, (account, pin, limits) in cards.items()},
    )
