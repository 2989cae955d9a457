"""Mandatory fields per message class (spec 5), as data.

The core checks the network-management set itself; the authorization layer may
use :func:`missing_fields` for the financial classes. A missing field is a
format error (``30``).
"""

from __future__ import annotations

from typing import Final

from switch.protocol.codes import MessageClass
from switch.protocol.message import Message

REQUIRED_FIELDS: Final[dict[MessageClass, frozenset[str]]] = {
    MessageClass.NETWORK: frozenset({"7", "11", "41", "70"}),
    MessageClass.FINANCIAL: frozenset(
        {"3", "4", "7", "11", "12", "13", "22", "32", "37", "41", "42", "43", "49"}
    ),
    MessageClass.COMPLETION: frozenset({"2", "3", "4", "7", "11", "32", "37", "41", "49", "90"}),
    MessageClass.REVERSAL: frozenset(
        {"2", "3", "4", "7", "11", "32", "37", "39", "41", "49", "90"}
    ),
}


def missing_fields(message: Message) -> list[str]:
    """Mandatory fields absent from ``message`` (a 0200 needs 2 or 35), sorted by number."""
    klass = message.message_class
    if klass is None:
        return []
    missing = set(REQUIRED_FIELDS[klass] - message.fields.keys())
    if klass is MessageClass.FINANCIAL and "2" not in message.fields and "35" not in message.fields:
        missing.add("35")
    return sorted(missing, key=int)
