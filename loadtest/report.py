"""Turn merged phase results into the JSON report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from loadtest.stats import ADVICE_KINDS, ALL_FINANCIAL, PhaseStats

PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0, "p999_ms": 99.9}


@dataclass(slots=True)
class RunResult:
    """One phase against one target, with the target's resource use."""

    target: str
    stats: PhaseStats
    target_cpu_seconds: float | None = None
    database_cpu_seconds: float | None = None
    target_rss_bytes: int | None = None
    rate_per_s: float | None = None
    target_runqueue_wait_seconds: float | None = None


def financial_tps(stats: PhaseStats) -> float:
    """0200 requests answered per second of the measurement window."""
    return round(stats.financial_answered() / stats.duration_s, 1) if stats.duration_s else 0.0


def summarize(result: RunResult) -> dict[str, Any]:
    stats = result.stats
    answered = stats.financial_answered()
    requests = stats.requests_total()
    errors = stats.errors()
    summary: dict[str, Any] = {
        "tps": financial_tps(stats),
        "requests_per_s": round(stats.answered_total() / stats.duration_s, 1),
        "offered_rate_per_s": result.rate_per_s,
        "financial_answered": answered,
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 6) if requests else 0.0,
        "approved_share": round(stats.financial_approved() / answered, 6) if answered else 0.0,
    }
    for name, percentile in PERCENTILES.items():
        summary[name] = stats.percentile_ms(ALL_FINANCIAL, percentile)
    summary["max_ms"] = _max_ms(stats, ALL_FINANCIAL)
    summary["by_type"] = {
        kind: {
            "count": sum(counter.values()),
            "codes": dict(sorted(counter.items())),
            "p50_ms": stats.percentile_ms(kind, 50.0),
            "p99_ms": stats.percentile_ms(kind, 99.0),
            "p999_ms": stats.percentile_ms(kind, 99.9),
            "advice": kind in ADVICE_KINDS,
        }
        for kind, counter in sorted(stats.outcomes.items())
    }
    summary["generator_cpu_cores"] = _cores(stats.cpu_seconds, stats.wall_seconds)
    summary["target_cpu_cores"] = _cores(result.target_cpu_seconds, stats.duration_s)
    summary["database_cpu_cores"] = _cores(result.database_cpu_seconds, stats.duration_s)
    # Threads of the target runnable but without a CPU, on average: > ~0.1 means other
    # processes on the machine were taking the cores the target needed.
    waited = result.target_runqueue_wait_seconds
    summary["target_cpu_wait_threads"] = _cores(waited, stats.duration_s)
    if result.target_rss_bytes is not None:
        summary["target_rss_mb"] = round(result.target_rss_bytes / 2**20, 1)
    return summary


def _max_ms(stats: PhaseStats, kind: str) -> float | None:
    histogram = stats.histograms.get(kind)
    if histogram is None or histogram.get_total_count() == 0:
        return None
    return round(float(histogram.get_max_value()) / 1000.0, 3)


def _cores(cpu_seconds: float | None, wall_seconds: float) -> float | None:
    if cpu_seconds is None or not wall_seconds:
        return None
    return round(cpu_seconds / wall_seconds, 3)


def build_report(
    *,
    switch: RunResult | None,
    echo: RunResult | None,
    settings: dict[str, Any],
    processes: int,
) -> dict[str, Any]:
    """The one JSON object ``python -m loadtest --json`` prints."""
    switch_summary = summarize(switch) if switch else None
    echo_summary = summarize(echo) if echo else None
    main = switch_summary or echo_summary or {}
    report: dict[str, Any] = {
        "switch_tps": switch_summary["tps"] if switch_summary else None,
        "echo_tps": echo_summary["tps"] if echo_summary else None,
        "ratio": None,
        "p50_ms": main.get("p50_ms"),
        "p99_ms": main.get("p99_ms"),
        "p999_ms": main.get("p999_ms"),
        "errors": main.get("errors"),
        "error_rate": main.get("error_rate"),
        "approved_share": main.get("approved_share"),
        "processes": processes,
        "generator_cpu": {
            "processes": processes,
            "machine_cores": os.cpu_count(),
            "switch_run_cores": switch_summary["generator_cpu_cores"] if switch_summary else None,
            "echo_run_cores": echo_summary["generator_cpu_cores"] if echo_summary else None,
        },
        "settings": settings,
        "switch": switch_summary,
        "echo": echo_summary,
    }
    if switch_summary and echo_summary and echo_summary["tps"]:
        report["ratio"] = round(switch_summary["tps"] / echo_summary["tps"], 3)
    return report
