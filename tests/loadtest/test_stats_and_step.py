"""Results bookkeeping: windows, error classes, exact merging across processes via the
HDR encoding, and the step search's choice of peak against a synthetic target."""

from __future__ import annotations

import json

import pytest

from loadtest.flows import Recorder
from loadtest.report import RunResult, build_report, summarize
from loadtest.stats import ALL_FINANCIAL, PhaseStats, is_error
from loadtest.step import StepCriteria, find_peak


def test_recorder_keeps_only_requests_intended_inside_the_window() -> None:
    stats = PhaseStats(duration_s=10.0)
    recorder = Recorder()
    recorder.begin(stats, window_start=100.0, window_end=110.0)
    recorder.record("withdrawal", "00", intended=99.9, answered=100.1)  # warm-up
    recorder.record("withdrawal", "00", intended=100.0, answered=100.25)
    recorder.record("balance", "51", intended=109.9, answered=111.0)  # answered after: kept
    recorder.record("balance", "00", intended=110.0, answered=110.1)  # after the window
    recorder.end()
    recorder.record("balance", "00", intended=105.0, answered=105.1)  # no phase
    assert stats.requests_total() == 2
    assert stats.financial_answered() == 2 and stats.financial_approved() == 1
    assert stats.percentile_ms("withdrawal", 50) == pytest.approx(250.0, rel=1e-3)  # 3 digits
    assert stats.series_counts[0] == 1 and stats.series_counts[11] == 1


def test_errors_are_transport_failures_system_codes_and_declined_advices() -> None:
    assert is_error("withdrawal", "timeout") and is_error("balance", "bad_mac")
    assert is_error("withdrawal", "91") and is_error("transfer", "96")
    assert not is_error("withdrawal", "51") and not is_error("withdrawal", "00")
    assert is_error("completion", "05") and not is_error("reversal", "00")


def _filled(latencies_us: list[int], kind: str = "withdrawal") -> PhaseStats:
    stats = PhaseStats(duration_s=2.0)
    for i, latency in enumerate(latencies_us):
        stats.record(kind, "00", latency, answered_at_s=i % 2)
    stats.cpu_seconds, stats.wall_seconds = 1.5, 2.0
    return stats


def test_merge_through_json_equals_recording_everything_in_one_place() -> None:
    first = [1_000 + 37 * i for i in range(500)]
    second = [5_000 + 91 * i for i in range(300)]
    merged = PhaseStats.from_json(json.loads(json.dumps(_filled(first).to_json())))
    merged.merge(PhaseStats.from_json(json.loads(json.dumps(_filled(second).to_json()))))
    together = _filled(first + second)
    for percentile in (50.0, 90.0, 99.0, 99.9):
        assert merged.percentile_ms(ALL_FINANCIAL, percentile) == together.percentile_ms(
            ALL_FINANCIAL, percentile
        )
    assert merged.outcomes == together.outcomes
    assert merged.series_counts == together.series_counts
    assert merged.processes == 2 and merged.cpu_seconds == 3.0


def test_report_has_the_agreed_keys_and_ratio() -> None:
    switch = RunResult("switch", _filled([2_000] * 100))
    echo = RunResult("echo", _filled([1_000] * 400))
    report = build_report(switch=switch, echo=echo, settings={}, processes=2)
    for key in ("switch_tps", "echo_tps", "ratio", "p50_ms", "p99_ms", "p999_ms", "errors",
                "approved_share", "generator_cpu", "processes"):
        assert key in report
    assert report["switch_tps"] == 50.0 and report["echo_tps"] == 200.0
    assert report["ratio"] == 0.25 and report["approved_share"] == 1.0
    assert report["generator_cpu"]["switch_run_cores"] == 0.75


def _synthetic_target(capacity: float) -> object:
    """p99 stays low below ``capacity`` transactions/s and explodes above it."""

    def run_at(rate: float) -> RunResult:
        stats = PhaseStats(duration_s=1.0)
        latency = 5_000 if rate <= capacity else 400_000
        for _ in range(int(rate)):
            stats.record("balance", "00", latency, 0.0)
        return RunResult("switch", stats, rate_per_s=rate)

    return run_at


def test_step_search_brackets_the_capacity() -> None:
    criteria = StepCriteria(start_rate=100, factor=1.5, refinements=4)
    peak, steps = find_peak(_synthetic_target(1234.0), criteria)  # type: ignore[arg-type]
    assert peak is not None and 1234.0 * 0.9 <= peak <= 1234.0
    assert [s.rate for s in steps][:3] == [100, 150, 225]
    assert all(s.passed == (s.rate <= 1234.0) for s in steps)
    assert summarize(RunResult("x", PhaseStats(1.0)))["p99_ms"] is None


def test_step_search_looks_below_a_failing_first_step() -> None:
    criteria = StepCriteria(start_rate=50, refinements=3)
    peak, steps = find_peak(_synthetic_target(10.0), criteria)  # type: ignore[arg-type]
    assert [s.rate for s in steps] == [50, 25, 12.5, 6.25] and peak == 6.25
    peak, steps = find_peak(_synthetic_target(0.0), criteria)  # type: ignore[arg-type]
    assert peak is None and not any(s.passed for s in steps)
