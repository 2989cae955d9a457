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
