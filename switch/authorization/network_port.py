"""How card networks join the engine: the one thing ``authorization`` knows of ``networks``.

A 0200 for a card not on file is claimed by the engine (``routed.py``), then handed to a
:class:`CardNetworks` implementation outside any transaction; what it answers is recorded by
the engine like any decision. The implementation (``switch/networks/acquiring.py``) routes by
BIN, translates the PIN, asks the network or stands in, and keeps its own table of network
transactions; the engine never imports it (docs/networks.md, "Writing a network").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from switch.authorization.outcomes import Outcome
from switch.authorization.request import FinancialRequest
from switch.authorization.security import TerminalKeys


@dataclass(frozen=True, slots=True)
class NetworkDecision:
    """What a network (or stand-in) decided for one 0200.

    ``fields``: response fields the network supplies on an approval (38, its authorization
    id; sometimes 54), sent to the terminal and stored for repeats. ``effect``: where the
    transaction went (``{"kind": "network", "network": ..., "transaction_id": ...}``), kept on
    the message row so its 0220/0420 reach the same network transaction.
    """

    outcome: Outcome
    fields: Mapping[str, str] = field(default_factory=dict)
    effect: Mapping[str, Any] | None = None


class CardNetworks(Protocol):
    """The card-network side as the engine uses it."""

    async def authorize(
        self, request: FinancialRequest, keys: TerminalKeys, received_at: dt.datetime
    ) -> NetworkDecision | None:
        """The decision for a claimed 0200, or None when no network's BIN range has the PAN
        (the engine then answers ``14``). Runs under the request's deadline."""
        ...

    async def reverse_unanswered(self) -> int:
        """Queue reversals for network approvals the terminal was not answered ``00`` for
        (after the engine voided a claim); returns how many were queued."""
        ...

    def wake_advices(self) -> None:
        """Advices were queued for the networks in the engine's transaction: send them now."""
        ...
