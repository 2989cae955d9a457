"""Database-backed gauges, read from a snapshot that a background task refreshes.

A scrape must never query PostgreSQL: a slow database would then stall Prometheus and a
scrape storm would load the database. ``DatabaseSnapshot.run`` refreshes the figures every
``refresh_interval_s``; the collector serves whatever the last refresh found, plus its age,
so a stale snapshot is visible (``atm_metrics_snapshot_age_seconds``) instead of silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ops.reports import sources
from switch.db.runtime import Database

log = logging.getLogger(__name__)

# Fresh enough for a 15 s scrape interval, cheap enough (three indexed queries) to never matter.
refresh_interval_s = 15.0
HOLD_TYPES = ("withdrawal", "deposit")


@dataclass
class SnapshotValues:
    holds_open: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HOLD_TYPES, 0))
    holds_open_amount: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(HOLD_TYPES, 0)
    )
    presumed_dispensed: int = 0
    deposits_expired: int = 0
    saf_queue_depth: dict[str, int] = field(default_factory=dict)
    refreshed_at: float | None = None  # time.monotonic() of the last good refresh


class DatabaseSnapshot(Collector):
    """A Prometheus collector over the last snapshot; ``run`` keeps it fresh."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.values = SnapshotValues()
        self.first_refresh = trio.Event()  # set once the figures are real (tests wait on it)
        if registry is not None:
            registry.register(self)

    async def refresh(self, db: Database) -> None:
        figures = await sources.operational_figures(db)
        values = SnapshotValues(saf_queue_depth=dict(figures.saf_queue_depth))
        for hold_type, (count, amount) in figures.holds_open.items():
            if hold_type in values.holds_open:
                values.holds_open[hold_type] = count
                values.holds_open_amount[hold_type] = amount
        values.presumed_dispensed = figures.presumed_dispensed
        values.deposits_expired = figures.deposits_expired
        values.refreshed_at = time.monotonic()
        self.values = values
        self.first_refresh.set()

    async def run(
        self, db: Database, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Refresh forever; a failed refresh keeps the old figures (their age shows it)."""
        task_status.started()
        while True:
            try:
                await self.refresh(db)
            except Exception as exc:  # any failure: keep serving the last values
                log.warning("metrics snapshot refresh failed", extra={"reason": str(exc)})
            await trio.sleep(refresh_interval_s)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        v = self.values
        holds = GaugeMetricFamily("atm_holds_open", "Open ledger holds, by type", labels=["type"])
        amount = GaugeMetricFamily(
            "atm_holds_open_amount",
            "Amount of open ledger holds in minor currency units, by type",
            labels=["type"],
        )
        for hold_type in HOLD_TYPES:
            holds.add_metric([hold_type], v.holds_open[hold_type])
            amount.add_metric([hold_type], v.holds_open_amount[hold_type])
        presumed = CounterMetricFamily(
            "atm_presumed_dispensed",
            "Withdrawal holds captured at expiry as presumed dispensed (spec 5.2)",
            value=v.presumed_dispensed,
        )
        expired = CounterMetricFamily(
            "atm_deposits_expired",
            "Deposit holds released at expiry (spec 5.2)",
            value=v.deposits_expired,
        )
        saf = GaugeMetricFamily(
            "atm_saf_queue_depth",
            "Store-and-forward advices queued for a card network",
            labels=["network"],
        )
        for network, depth in sorted(v.saf_queue_depth.items()):
            saf.add_metric([network], depth)
        age = GaugeMetricFamily(
            "atm_metrics_snapshot_age_seconds",
            "Seconds since the database-backed gauges were last refreshed",
            value=(time.monotonic() - v.refreshed_at) if v.refreshed_at is not None else -1,
        )
        yield from (holds, amount, presumed, expired, saf, age)
