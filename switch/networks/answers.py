"""What the switch makes of a card network's answer: the terminal's outcome, and the
identifiers the acquirer assigns.

Apart from ``acquiring.py`` because the acquirer and stand-in (``stand_in.py``) both answer
in these terms: one table from the network's code to the terminal's outcome, one form of
field 37 and one shape of the remembered effect."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from switch.authorization.outcomes import Outcome
from switch.networks.base import NetworkAuthorization
from switch.networks.registry import RegisteredNetwork

# The network's code -> the terminal's outcome. Codes about the switch-to-network link itself
# (30 format, 58, 63 MAC, 94 duplicate) are the switch's fault, not the cardholder's: 96.
# Any other code the terminal's spec does not know is a plain decline (05).
NETWORK_OUTCOMES: Final[Mapping[str, Outcome]] = MappingProxyType({
    "00": Outcome.APPROVED,
    "05": Outcome.DO_NOT_HONOUR,
    "12": Outcome.TRANSACTION_NOT_SUPPORTED,
    "13": Outcome.INVALID_AMOUNT,
    "14": Outcome.CARD_NOT_ON_FILE,
    "30": Outcome.SYSTEM_ERROR,
    "41": Outcome.CARD_LOST,
    "43": Outcome.CARD_STOLEN,
    "51": Outcome.INSUFFICIENT_FUNDS,
    "54": Outcome.CARD_EXPIRED,
    "55": Outcome.WRONG_PIN,
    "57": Outcome.CARD_CLOSED,
    "58": Outcome.SYSTEM_ERROR,
    "61": Outcome.AMOUNT_LIMIT_EXCEEDED,
    "63": Outcome.SYSTEM_ERROR,
    "65": Outcome.DAILY_COUNT_EXCEEDED,
    "75": Outcome.PIN_TRIES_EXCEEDED,
    "76": Outcome.PAYEE_NOT_FOUND,
    "91": Outcome.UNAVAILABLE,
    "92": Outcome.UNABLE_TO_ROUTE,
    "94": Outcome.SYSTEM_ERROR,
    "96": Outcome.SYSTEM_ERROR,
})


def outcome_for(network_code: str) -> Outcome:
    return NETWORK_OUTCOMES.get(network_code, Outcome.DO_NOT_HONOUR)


def network_rrn(transaction_id: int) -> str:
    """Field 37 toward the network: the acquirer assigns it, unique per transaction."""
    return f"{transaction_id % 10**12:012d}"


def network_effect(registered: RegisteredNetwork, auth: NetworkAuthorization) -> dict[str, Any]:
    """What the stored answer remembers: where the transaction went (no local ledger effect)."""
    return {"kind": "network", "network": registered.name,
            "transaction_id": auth.transaction_id}


__all__ = ["NETWORK_OUTCOMES", "network_effect", "network_rrn", "outcome_for"]
