"""What one measurement phase saw: HDR latency histograms, outcomes, a time series.

Latency is recorded in microseconds from the request's *intended* send time, so
a stalled target or a late generator shows up as latency instead of silently
lowering the offered load (coordinated omission). Only requests intended inside
the measurement window are recorded. Every generator process fills one
``PhaseStats``; ``to_json``/``merge`` carry them across processes (HDR histograms
travel in their compressed encoding and add up exactly).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

latency_us_min = 1
latency_us_max = 120_000_000  # 2 minutes: any answer slower than this is a timeout anyway
latency_significant_digits = 3
# The per-second series only feeds the plot: 2 digits keep it small.
series_significant_digits = 2
ALL_FINANCIAL = "all_0200"  # the histogram of every 0200 together

# Outcomes that are failures of the system, not business declines: no answer, a
# broken answer, or a response code that means the switch could not do its job.
TRANSPORT_ERRORS = frozenset({"timeout", "disconnected", "bad_mac", "malformed", "mismatch"})
SYSTEM_ERROR_CODES = frozenset({"30", "58", "63", "91", "94", "96"})
ADVICE_KINDS = frozenset({"completion", "reversal"})


def new_histogram(digits: int = latency_significant_digits) -> HdrHistogram:
    return HdrHistogram(latency_us_min, latency_us_max, digits)


def is_error(kind: str, outcome: str) -> bool:
    """An advice is never declined (spec 5.3/5.4), so any non-00 answer to one is an error."""
    if outcome in TRANSPORT_ERRORS or outcome in SYSTEM_ERROR_CODES:
        return True
    return kind in ADVICE_KINDS and outcome != "00"


class PhaseStats:
    """Results of one phase in one process (mergeable)."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.histograms: dict[str, HdrHistogram] = {}
        self.outcomes: dict[str, Counter[str]] = {}
        # Per whole second since the window opened (by answer time): 0200s answered
        # and their latency; the plot's throughput and percentile lines.
        self.series_counts: list[int] = []
        self.series_histograms: list[HdrHistogram] = []
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.processes = 1

    def record(self, kind: str, outcome: str, latency_us: int, answered_at_s: float) -> None:
        """One request intended in the window ended with ``outcome`` (code or error)."""
        counter = self.outcomes.get(kind)
        if counter is None:
            counter = self.outcomes[kind] = Counter()
        counter[outcome] += 1
        if outcome in TRANSPORT_ERRORS:
            return  # no answer, no latency (timeouts show in the error count)
        latency_us = max(latency_us_min, min(latency_us, latency_us_max))
        histogram = self.histograms.get(kind)
        if histogram is None:
            histogram = self.histograms[kind] = new_histogram()
        histogram.record_value(latency_us)
        if kind in ADVICE_KINDS:
            return
        total = self.histograms.get(ALL_FINANCIAL)
        if total is None:
            total = self.histograms[ALL_FINANCIAL] = new_histogram()
        total.record_value(latency_us)
        self._record_series(max(0, int(answered_at_s)), latency_us)

    def _record_series(self, second: int, latency_us: int) -> None:
        while len(self.series_counts) <= second:
            self.series_counts.append(0)
            self.series_histograms.append(new_histogram(series_significant_digits))
        self.series_counts[second] += 1
        self.series_histograms[second].record_value(latency_us)

    # -- summaries -----------------------------------------------------------------

    def financial_answered(self) -> int:
        return sum(
            count
            for kind, counter in self.outcomes.items()
            if kind not in ADVICE_KINDS
            for outcome, count in counter.items()
            if outcome not in TRANSPORT_ERRORS
        )

    def financial_approved(self) -> int:
        return sum(c["00"] for kind, c in self.outcomes.items() if kind not in ADVICE_KINDS)

    def requests_total(self) -> int:
        return sum(sum(counter.values()) for counter in self.outcomes.values())

    def answered_total(self) -> int:
        return sum(
            count
            for counter in self.outcomes.values()
            for outcome, count in counter.items()
            if outcome not in TRANSPORT_ERRORS
        )

    def errors(self) -> int:
        return sum(
            count
            for kind, counter in self.outcomes.items()
            for outcome, count in counter.items()
            if is_error(kind, outcome)
        )

    def percentile_ms(self, kind: str, percentile: float) -> float | None:
        histogram = self.histograms.get(kind)
        if histogram is None or histogram.get_total_count() == 0:
            return None
        return round(float(histogram.get_value_at_percentile(percentile)) / 1000.0, 3)

    # -- transport -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "histograms": {k: _encode(h) for k, h in self.histograms.items()},
            "outcomes": {k: dict(c) for k, c in self.outcomes.items()},
            "series_counts": self.series_counts,
            "series_histograms": [_encode(h) for h in self.series_histograms],
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "processes": self.processes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseStats:
        stats = cls(float(data["duration_s"]))
        stats.histograms = {k: HdrHistogram.decode(v) for k, v in data["histograms"].items()}
        stats.outcomes = {k: Counter(v) for k, v in data["outcomes"].items()}
        stats.series_counts = list(data["series_counts"])
        stats.series_histograms = [HdrHistogram.decode(v) for v in data["series_histograms"]]
        stats.cpu_seconds = float(data["cpu_seconds"])
        stats.wall_seconds = float(data["wall_seconds"])
        stats.processes = int(data["processes"])
        return stats

    def merge(self, other: PhaseStats) -> None:
        """Add another process's results of the same phase into this one."""
        for kind, histogram in other.histograms.items():
            mine = self.histograms.get(kind)
            if mine is None:
                mine = self.histograms[kind] = new_histogram()
            mine.add(histogram)
        for kind, counter in other.outcomes.items():
            self.outcomes.setdefault(kind, Counter()).update(counter)
        for second, count in enumerate(other.series_counts):
            while len(self.series_counts) <= second:
                self.series_counts.append(0)
                self.series_histograms.append(new_histogram(series_significant_digits))
            self.series_counts[second] += count
            self.series_histograms[second].add(other.series_histograms[second])
        self.cpu_seconds += other.cpu_seconds
        self.wall_seconds = max(self.wall_seconds, other.wall_seconds)
        self.processes += other.processes


def _encode(histogram: HdrHistogram) -> str:
    encoded = histogram.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)
