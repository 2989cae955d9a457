"""Reading what the host answered (spec 2, 3): balances in field 54, 48/PN, 48/MS, 48/TX.

Pure functions; a malformed value raises :class:`ReplyFormatError` so the firmware can show a
neutral screen instead of a wrong figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.protocol.errors import ProtocolError
from switch.protocol.field48 import decode_tags
from switch.protocol.message import Message

balance_block_chars = 20
statement_fixed_chars = 19  # YYMMDD + C/D + amount 12


class ReplyFormatError(ValueError):
    """A response field is not in the format of the specification."""


@dataclass(frozen=True, slots=True)
class Balances:
    ledger: int  # minor units, negative when overdrawn
    available: int


@dataclass(frozen=True, slots=True)
class StatementLine:
    date: str  # YYMMDD
    direction: str  # C or D
    amount: int
    description: str


def balances(message: Message) -> Balances | None:
    """Field 54: ledger (amount type 01) and available (02); None when absent."""
    value = message.fields.get("54")
    if not value:
        return None
    if len(value) % balance_block_chars:
        raise ReplyFormatError("field 54 is not a sequence of 20-character blocks")
    found: dict[str, int] = {}
    for start in range(0, len(value), balance_block_chars):
        block = value[start:start + balance_block_chars]
        kind, sign, digits = block[2:4], block[7], block[8:]
        if sign not in "CD" or not digits.isdigit():
            raise ReplyFormatError("field 54 block has a bad sign or amount")
        found[kind] = int(digits) if sign == "C" else -int(digits)
    if "01" not in found or "02" not in found:
        raise ReplyFormatError("field 54 lacks the ledger or available amount")
    return Balances(found["01"], found["02"])


def tags(message: Message) -> dict[str, str]:
    try:
        return decode_tags(message.fields.get("48", ""))
    except (ValueError, ProtocolError) as exc:
        raise ReplyFormatError(f"field 48: {exc}") from exc


def payee_name(message: Message) -> str:
    name = tags(message).get("PN")
    if not name:
        raise ReplyFormatError("approved name inquiry without 48/PN")
    return name


def statement(message: Message) -> list[StatementLine]:
    """48/MS: up to 10 lines, newest first, separated by '|'."""
    value = tags(message).get("MS", "")
    lines = []
    for entry in filter(None, value.split("|")):
        head = entry[:statement_fixed_chars]
        if len(head) < statement_fixed_chars or head[6] not in "CD" or not (
            head[:6].isdigit() and head[7:].isdigit()
        ):
            raise ReplyFormatError("48/MS line is malformed")
        lines.append(StatementLine(head[:6], head[6], int(head[7:]),
                                   entry[statement_fixed_chars:]))
    return lines


def screen_text(message: Message) -> str:
    """48/TX, the host's text for the screen in the customer's language (may be empty)."""
    try:
        return tags(message).get("TX", "")
    except ReplyFormatError:
        return ""
