"""The load-test plot as a person reads it: a 5-second window whose answers spill into a 6th,
partial second (the answers to the last requests) must show 5 points, on linear axes from 0,
with the offered rate as a target line and the p99 goal on the latency panel; a log axis is kept
only when the runs differ by far (the echo baseline beside the switch). Method: build the
figure from synthetic stats and read its axes back."""

from __future__ import annotations

from pathlib import Path

from loadtest.plot import build_figure, complete_seconds, plot_runs
from loadtest.report import RunResult
from loadtest.stats import PhaseStats


def _run(target: str, per_second: int, *, seconds: int = 5, rate: float | None = 100.0
         ) -> RunResult:
    stats = PhaseStats(duration_s=float(seconds))
    for second in range(seconds):
        for n in range(per_second):
            stats.record("withdrawal", "00", 10_000 + 100 * n, second + n / per_second)
    for n in range(3):  # the last requests' answers land after the window closed
        stats.record("withdrawal", "00", 12_000, seconds + 0.01 * n)
    return RunResult(target, stats, rate_per_s=rate)


def test_the_partial_last_second_is_dropped_and_axes_are_linear_with_targets(
    tmp_path: Path
) -> None:
    run = _run("switch", 100)
    assert len(run.stats.series_counts) == 6 and complete_seconds(run) == 5
    figure = build_figure([run], "t", p99_goal_ms=50.0)
    throughput, latency = figure.axes
    assert (throughput.get_yscale(), latency.get_yscale()) == ("linear", "linear")
    assert throughput.get_ylim()[0] == 0 and latency.get_ylim()[0] == 0
    lines = {line.get_label(): line for line in throughput.get_lines()}
    assert list(lines["switch: 0200 answered per second"].get_xdata()) == [0, 1, 2, 3, 4]
    assert "target 100/s offered" in lines
    assert "p99 goal 50 ms" in {line.get_label() for line in latency.get_lines()}
    assert throughput.get_ylabel() and latency.get_ylabel() and latency.get_xlabel()
    plot_runs([run], tmp_path / "run.png", "t", p99_goal_ms=50.0)
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"


def test_a_log_axis_only_when_runs_differ_by_far() -> None:
    figure = build_figure([_run("switch", 10, rate=None), _run("echo", 2000, rate=None)], "t")
    assert figure.axes[0].get_yscale() == "log"
