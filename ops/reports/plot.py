"""The PNG of ``reports daily --plot``: volume by hour and the response-code mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; set before pyplot is imported
    import matplotlib.pyplot as plt

    figure, (volume, mix) = plt.subplots(1, 2, figsize=(12, 4.5))
    volume.bar(range(24), report["hourly_volume"], color="#3b75af")
    volume.set_title(f"0200 volume by hour, {report['date']} (UTC)")
    volume.set_xlabel("hour (UTC)")
    volume.set_ylabel("requests")
    volume.set_xticks(range(0, 24, 2))
    codes = report["totals"]["response_codes"]
    labels = list(codes) or ["none"]
    counts = list(codes.values()) or [0]
    colours = ["#2e8b57" if code == "00" else "#c0504d" for code in labels]
    mix.bar(labels, counts, color=colours)
    mix.set_title("response-code mix (field 39)")
    mix.set_xlabel("response code")
    mix.set_ylabel("requests")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
