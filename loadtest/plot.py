"""PNG plot of a run: 0200 throughput and latency percentiles, second by second.

Made for a person reading it: linear axes (a log axis only when the runs differ by more than
``log_scale_ratio_min``, e.g. the echo baseline beside the switch), the offered rate drawn as a
target line on the throughput panel and the p99 goal on the latency panel, and only the
**complete** seconds of the measurement window: answers counted after the window closed fill
a last, partial second that would look like a collapse.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.report import RunResult

SERIES_PERCENTILES = (50.0, 99.0, 99.9)
LINE_STYLES = ("-", "--", ":")
# Above this ratio between the largest and smallest positive value, a panel is drawn on a log
# axis (the echo baseline runs 10-50x the switch); below it a linear axis reads better.
log_scale_ratio_min = 20.0


def complete_seconds(run: RunResult) -> int:
    """How many whole seconds the measurement window had (the partial last one dropped)."""
    window = int(run.stats.duration_s) if run.stats.duration_s else len(run.stats.series_counts)
    return min(window, len(run.stats.series_counts))


def _latency_points(run: RunResult, percentile: float) -> list[tuple[int, float]]:
    stats, seconds = run.stats, complete_seconds(run)
    return [(second, histogram.get_value_at_percentile(percentile) / 1000.0)
            for second, histogram in enumerate(stats.series_histograms[:seconds])
            if histogram.get_total_count()]


def _wants_log(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > log_scale_ratio_min


def build_figure(runs: list[RunResult], title: str, *, p99_goal_ms: float | None = None) -> Any:
    """The two panels as a matplotlib Figure (returned so tests can read its axes)."""
    import matplotlib

    matplotlib.use("Agg")  # no display here: render straight to a file
    import matplotlib.pyplot as plt

    figure, (throughput, latency) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    counts_seen: list[float] = []
    latencies_seen: list[float] = []
    for index, run in enumerate(runs):
        color = colors[index % len(colors)]  # one color per run, one line style per percentile
        seconds = complete_seconds(run)
        counts = run.stats.series_counts[:seconds]
        counts_seen += counts
        throughput.plot(range(seconds), counts, color=color, marker="o", markersize=3,
                        label=f"{run.target}: 0200 answered per second")
        if run.rate_per_s:
            throughput.axhline(run.rate_per_s, color=color, linestyle="--", linewidth=1,
                               label=f"target {run.rate_per_s:g}/s offered")
            counts_seen.append(run.rate_per_s)
        for percentile, style in zip(SERIES_PERCENTILES, LINE_STYLES, strict=True):
            points = _latency_points(run, percentile)
            if points:
                xs, ys = zip(*points, strict=True)
                latencies_seen += ys
                latency.plot(xs, ys, color=color, linestyle=style,
                             label=f"{run.target} p{percentile:g}")
    if p99_goal_ms is not None:
        latency.axhline(p99_goal_ms, color="tab:red", linestyle="--", linewidth=1,
                        label=f"p99 goal {p99_goal_ms:g} ms")
        latencies_seen.append(p99_goal_ms)
    throughput.set_ylabel("0200 answered per second")
    latency.set_ylabel("latency, ms (from intended send)")
    for axis, values in ((throughput, counts_seen), (latency, latencies_seen)):
        if _wants_log(values):
            axis.set_yscale("log")
        else:
            axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        axis.legend(loc="best", fontsize="small")
    latency.set_xlabel("second of the measurement window (complete seconds only)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_runs(runs: list[RunResult], path: Path, title: str, *,
              p99_goal_ms: float | None = None) -> None:
    """Write the PNG (see the module docstring for what it shows)."""
    import matplotlib.pyplot as plt

    figure = build_figure(runs, title, p99_goal_ms=p99_goal_ms)
    figure.savefig(path, dpi=100)
    plt.close(figure)
