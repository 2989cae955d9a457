"""Measure one target: start the generator processes, run the phases, sample the target."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from loadtest.mix import Mix
from loadtest.pool import GeneratorPool, PoolPlan
from loadtest.report import RunResult, summarize
from loadtest.step import StepCriteria, StepOutcome, find_peak
from loadtest.targets import Target


@dataclass(frozen=True, slots=True)
class RunOptions:
    terminals: int
    duration_s: float
    warmup_s: float
    rate_per_s: float | None
    arrival: str
    processes: int
    seed: str
    response_timeout_s: float
    mix: Mix
    step: bool = False
    criteria: StepCriteria = field(default_factory=StepCriteria)
    step_duration_s: float = 10.0
    step_warmup_s: float = 3.0
    peak_fraction: float = 0.7


@dataclass(slots=True)
class TargetMeasurement:
    main: RunResult
    ready_terminals: int
    setup_failures: dict[str, int]
    peak_rate: float | None = None
    steps: list[StepOutcome] = field(default_factory=list)
    at_fraction: RunResult | None = None

    def extra_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ready_terminals": self.ready_terminals,
            "setup_failures": self.setup_failures,
        }
        if self.steps:
            data["peak_rate"] = round(self.peak_rate, 1) if self.peak_rate else None
            data["steps"] = [s.to_json() for s in self.steps]
        if self.at_fraction is not None:
            data["at_fraction"] = summarize(self.at_fraction)
        return data


class TargetSampler:
    """Samples the target's CPU time over the measurement window (pool window hooks)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cpu = 0.0
        self._db_cpu = 0.0
        self._wait = 0.0
        self.runqueue_wait_seconds: float | None = None
        self.cpu_seconds: float | None = None
        self.database_cpu_seconds: float | None = None
        self.rss_bytes: int | None = None

    def opened(self) -> None:
        self._cpu = self.target.cpu_seconds()
        self._db_cpu = self.target.database_cpu_seconds()
        self._wait = self.target.runqueue_wait_seconds()

    def closed(self) -> None:
        if self.target.pids():
            self.cpu_seconds = self.target.cpu_seconds() - self._cpu
            self.rss_bytes = self.target.rss_bytes()
            self.runqueue_wait_seconds = self.target.runqueue_wait_seconds() - self._wait
        if self.target.database_pids():
            self.database_cpu_seconds = self.target.database_cpu_seconds() - self._db_cpu


def progress(message: str) -> None:
    print(f"[loadtest] {message}", file=sys.stderr, flush=True)


def measure(
    target: Target, options: RunOptions, *, key_exchange: bool, verify_mac: bool
) -> TargetMeasurement:
    """Run the closed-loop (or fixed-rate) measurement, then the step search if asked."""
    plan = PoolPlan(
        addresses=tuple(target.addresses()),
        terminals=options.terminals,
        processes=options.processes,
        seed=options.seed,
        key_exchange=key_exchange,
        verify_mac=verify_mac,
        response_timeout_s=options.response_timeout_s,
        mix=options.mix,
    )
    with GeneratorPool(plan) as pool:
        progress(
            f"{target.name}: {pool.ready_terminals}/{options.terminals} terminals ready"
            + (f", setup failures {pool.setup_failures}" if pool.setup_failures else "")
        )

        def run(rate: float | None, warmup_s: float, duration_s: float) -> RunResult:
            sampler = TargetSampler(target)
            stats = pool.run_phase(
                warmup_s=warmup_s,
                duration_s=duration_s,
                rate_per_s=rate,
                arrival=options.arrival,
                window=sampler,
            )
            result = RunResult(
                target.name,
                stats,
                sampler.cpu_seconds,
                sampler.database_cpu_seconds,
                sampler.rss_bytes,
                rate,
                sampler.runqueue_wait_seconds,
            )
            summary = summarize(result)
            progress(
                f"{target.name} rate={'closed' if rate is None else round(rate)}: "
                f"{summary['tps']} 0200/s p99={summary['p99_ms']} ms "
                f"errors={summary['errors']} approved={summary['approved_share']}"
            )
            return result

        main = run(options.rate_per_s, options.warmup_s, options.duration_s)
        measurement = TargetMeasurement(main, pool.ready_terminals, dict(pool.setup_failures))
        if options.step and key_exchange:
            _step_search(measurement, options, run)
    return measurement


def _step_search(measurement: TargetMeasurement, options: RunOptions, run: Any) -> None:
    criteria = options.criteria
    closed_tps = summarize(measurement.main)["tps"] if options.rate_per_s is None else None
    if closed_tps:
        # Start well under the closed-loop peak and never go far beyond it.
        criteria = StepCriteria(
            p99_ms_max=criteria.p99_ms_max,
            error_rate_max=criteria.error_rate_max,
            start_rate=max(10.0, closed_tps * 0.4),
            factor=criteria.factor,
            rate_max=closed_tps * 1.5,
            refinements=criteria.refinements,
        )
    peak, steps = find_peak(
        lambda rate: run(rate, options.step_warmup_s, options.step_duration_s), criteria
    )
    measurement.peak_rate, measurement.steps = peak, steps
    if peak:
        rate = peak * options.peak_fraction
        measurement.at_fraction = run(rate, options.warmup_s, options.duration_s)
