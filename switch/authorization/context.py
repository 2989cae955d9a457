"""What every handler of the package needs: configuration, database, HSM, ledger, clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ledger_adapter import Ledger
from switch.config import AuthorizationConfig
from switch.db.runtime import Database
from switch.hsm import Hsm

if TYPE_CHECKING:
    from ops.metrics import SwitchMetrics
    from switch.networks.acquiring import NetworkAcquirer


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class AuthContext:
    config: AuthorizationConfig
    db: Database
    hsm: Hsm
    ledger: Ledger
    # Spec 5.6: every 0200 is answered within this many seconds of its arrival.
    request_deadline_s: float = 5.0
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    # -- card-network hook: set by switch.networks.install when networks are configured.
    networks: NetworkAcquirer | None = None
    # Operator metrics (docs/operations.md); None in tests that build the service alone.
    metrics: SwitchMetrics | None = None
    # Where voids PostgreSQL could not take in time wait (void_journal.py); None: memory only.
    void_journal_path: Path | None = None

    @property
    def answer_reserve_s(self) -> float:
        """Time kept back from the deadline to undo a hold and record ``91`` before answering."""
        return min(1.0, self.request_deadline_s / 4)

    @property
    def stale_after_s(self) -> float:
        """A pending claim older than this belongs to a request that was never answered
        (its process died or its deadline passed without cleanup): it is resolved as ``91``."""
        return 2 * self.request_deadline_s + 5.0

    def hold_key(self, terminal_id: str, stan: str, transmission_dt: str, acquirer_id: str) -> str:
        """Ledger idempotency key of the effect of one 0200 (also used by ``release_by_key``)."""
        return f"atm:0200:{terminal_id}:{stan}:{transmission_dt}:{acquirer_id}"
