"""PNG plot of a run: 0200 throughput and latency percentiles, second by second."""

from __future__ import annotations

from pathlib import Path

from loadtest.report import RunResult

SERIES_PERCENTILES = (50.0, 99.0, 99.9)
LINE_STYLES = ("-", "--", ":")


def plot_runs(runs: list[RunResult], path: Path, title: str) -> None:
    """Two panels (throughput; latency on a log axis), one line set per target."""
    import matplotlib

    matplotlib.use("Agg")  # no display here: render straight to a file
    import matplotlib.pyplot as plt

    figure, (throughput, latency) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, run in enumerate(runs):
        stats = run.stats
        color = colors[index % len(colors)]  # one color per run, one line style per percentile
        seconds = list(range(len(stats.series_counts)))
        throughput.plot(seconds, stats.series_counts, color=color, label=f"{run.target} 0200/s")
        for percentile, style in zip(SERIES_PERCENTILES, LINE_STYLES, strict=True):
            values = [
                h.get_value_at_percentile(percentile) / 1000.0 if h.get_total_count() else None
                for h in stats.series_histograms
            ]
            points = [(s, v) for s, v in zip(seconds, values, strict=True) if v is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                latency.plot(
                    xs, ys, color=color, linestyle=style, label=f"{run.target} p{percentile:g}"
                )
    throughput.set_ylabel("0200 answered per second")
    throughput.set_yscale("log")  # the echo baseline runs 10-50x the switch
    throughput.legend(loc="lower right")
    throughput.grid(True, alpha=0.3)
    latency.set_ylabel("latency ms (from intended send)")
    latency.set_yscale("log")
    latency.set_xlabel("seconds since the measurement window opened")
    latency.legend(loc="upper right", fontsize="small")
    latency.grid(True, which="both", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
