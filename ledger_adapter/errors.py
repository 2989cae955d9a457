"""Typed ledger errors. The authorization layer maps them to response codes in one table."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidRequest(LedgerError, ValueError):
    """The call's arguments are malformed (negative amount, unknown direction, ...).

    Raised before anything is recorded, so a corrected call with the same key works.
    """


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used with different arguments (spec 5.5: `94`)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used with different arguments")
        self.key = key


class LedgerUnavailable(LedgerError):
    """PostgreSQL is unreachable, restarting, overloaded or past the deadline (maps to `91`).

    The outcome of a money-moving call that raised this is unknown: release a hold by its
    key (:meth:`Ledger.release_by_key`) if the request is being answered `91`.
    """


class HoldNotFound(LedgerError):
    """No hold with that id exists."""

    def __init__(self, hold_id: int) -> None:
        super().__init__(f"hold {hold_id} not found")
        self.hold_id = hold_id


class AccountNotFound(LedgerError):
    """No account with that id exists (non-money calls: balance, statement, status)."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} not found")
        self.account_id = account_id


class AccountConflict(LedgerError):
    """``open_account`` for an existing id with another currency or kind."""


class InvariantViolation(LedgerError):
    """A money invariant is broken (a bug or corruption): stop, never paper over it."""
