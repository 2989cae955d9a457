"""Step mode: the highest open-loop rate the target sustains within the latency bar.

A step passes when p99 of the 0200s (from intended send time) is at most
``p99_ms_max`` and errors are below ``error_rate_max`` (issue 7: 50 ms, 0.1%).
Rates grow by ``factor`` from ``start_rate`` until a step fails, then the gap
between the last pass and the first failure is halved ``refinements`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadtest.report import RunResult, summarize

p99_ms_max_default = 50.0
error_rate_max_default = 0.001
steps_max = 40  # a hard stop for a target that never fails


@dataclass(frozen=True, slots=True)
class StepCriteria:
    p99_ms_max: float = p99_ms_max_default
    error_rate_max: float = error_rate_max_default
    start_rate: float = 200.0
    factor: float = 1.25
    rate_max: float = 1e6
    refinements: int = 3


@dataclass(frozen=True, slots=True)
class StepOutcome:
    rate: float
    passed: bool
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        keys = ("tps", "p50_ms", "p99_ms", "p999_ms", "errors", "error_rate", "approved_share")
        return {"rate": round(self.rate, 1), "passed": self.passed} | {
            k: self.summary.get(k) for k in keys
        }


def passes(summary: dict[str, Any], criteria: StepCriteria) -> bool:
    p99 = summary.get("p99_ms")
    if p99 is None:
        return False
    return bool(p99 <= criteria.p99_ms_max and summary["error_rate"] < criteria.error_rate_max)


def find_peak(
    run_at: Callable[[float], RunResult], criteria: StepCriteria
) -> tuple[float | None, list[StepOutcome]]:
    """Return (highest passing rate or None, every step in the order run)."""
    steps: list[StepOutcome] = []

    def step(rate: float) -> bool:
        summary = summarize(run_at(rate))
        outcome = StepOutcome(rate, passes(summary, criteria), summary)
        steps.append(outcome)
        return outcome.passed

    best: float | None = None
    failed: float | None = None
    rate = criteria.start_rate
    while len(steps) < steps_max and rate <= criteria.rate_max:
        if not step(rate):
            failed = rate
            break
        best = rate
        rate *= criteria.factor
    low = best if best is not None else 0.0
    high = failed
    for _ in range(criteria.refinements):
        if high is None or len(steps) >= steps_max or high - low < 1.0:
            break
        middle = (low + high) / 2
        if step(middle):
            low = best = middle
        else:
            high = middle
    return best, steps


# --- overload (issue 11 item 9) ----------------------------------------------------------------
overload_factor_default = 2.0  # DESIGN.md 5: "at 2x the peak rate"


def overload_summary(summary: dict[str, Any], peak_rate: float, baseline_rss_mb: float | None
                     ) -> dict[str, Any]:
    """What the overload run shows: the excess answered ``91`` (and how much), the p99 of
    the answered 0200s, errors (no answer at all) and memory against the run at the peak.

    ``p99_ms`` covers every answered 0200, the fast ``91`` answers included: the
    generator's histograms are per transaction type, not per response code.
    """
    codes: dict[str, int] = {}
    for kind in summary.get("by_type", {}).values():
        if kind.get("advice"):
            continue
        for code, count in kind.get("codes", {}).items():
            codes[code] = codes.get(code, 0) + int(count)
    answered = sum(count for code, count in codes.items() if len(code) == 2)
    rss = summary.get("target_rss_mb")
    return {
        "peak_rate": round(peak_rate, 1),
        "offered_rate_per_s": summary.get("offered_rate_per_s"),
        "tps": summary.get("tps"),
        "answered": answered,
        "share_answered_91": round(codes.get("91", 0) / answered, 6) if answered else None,
        "share_approved": round(codes.get("00", 0) / answered, 6) if answered else None,
        "p99_ms": summary.get("p99_ms"),
        "p999_ms": summary.get("p999_ms"),
        "errors": summary.get("errors"),
        "target_rss_mb": rss,
        "target_rss_growth_mb": None if rss is None or baseline_rss_mb is None
        else round(rss - baseline_rss_mb, 1),
    }
