"""Field values the switch builds for responses: 54, 48/PN, 48/MS, 15 and 38.

Pure functions with the layouts of spec 2 and 3, tested against strings written by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

amount_digits = 12
# Spec 2 field 54: n12 amount; larger magnitudes cannot be expressed.
amount_minor_max = 10**amount_digits - 1
# Spec 3 48/MS: up to 10 lines, description at most 20 characters.
statement_lines_max = 10
statement_description_chars_max = 20
auth_id_modulus = 999_999


class FieldValueError(ValueError):
    """A value cannot be expressed in the field's layout."""


def _amount12(amount_minor: int) -> str:
    magnitude = abs(amount_minor)
    if magnitude > amount_minor_max:
        raise FieldValueError(f"amount {amount_minor} does not fit in 12 digits")
    return f"{magnitude:012d}"


def _sign(amount_minor: int) -> str:
    return "D" if amount_minor < 0 else "C"


def additional_amounts(
    *, processing_code: str, currency: str, ledger_minor: int, available_minor: int
) -> str:
    """Field 54: two 20-character blocks, ledger (type 01) then available (type 02).

    Each block: account type (positions 3-4 of field 3) + amount type + currency + C/D + n12.
    """
    account_type = processing_code[2:4]
    blocks = []
    for amount_type, amount in (("01", ledger_minor), ("02", available_minor)):
        blocks.append(f"{account_type}{amount_type}{currency}{_sign(amount)}{_amount12(amount)}")
    return "".join(blocks)


def mask_payee_name(name: str) -> str:
    """48/PN: the first character, then ``*`` for every further character, spaces included."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


@dataclass(frozen=True, slots=True)
class StatementLine:
    posted_on: dt.date
    direction: str  # "C" or "D"
    amount_minor: int
    description: str


def mini_statement(lines: Sequence[StatementLine]) -> str:
    """48/MS: up to 10 lines newest first, ``YYMMDD`` + C/D + n12 + description, joined by ``|``.

    The caller passes lines newest first. A ``|`` inside a description would split the line,
    so it becomes ``/``; descriptions are cut to 20 characters.
    """
    rendered = []
    for line in lines[:statement_lines_max]:
        if line.direction not in ("C", "D"):
            raise FieldValueError(f"statement direction must be C or D, not {line.direction!r}")
        description = line.description.replace("|", "/")[:statement_description_chars_max]
        rendered.append(
            f"{line.posted_on:%y%m%d}{line.direction}{_amount12(line.amount_minor)}{description}"
        )
    return "|".join(rendered)


def settlement_date(received_at: dt.datetime) -> str:
    """Field 15 (MMDD): the UTC day the switch received the request is its business day."""
    day = received_at.astimezone(dt.UTC)
    return f"{day.month:02d}{day.day:02d}"


def authorization_id(record_id: int) -> str:
    """Field 38: six digits from the message's database id; never ``000000``, stable on repeats."""
    return f"{(record_id % auth_id_modulus) + 1:06d}"
