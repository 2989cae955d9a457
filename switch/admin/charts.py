"""Inline SVG charts for the console (no script, nothing fetched): bars from numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CHART_WIDTH: Final = 720
CHART_HEIGHT: Final = 160


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


def vertical_bars(values: list[int], labels: list[str]) -> list[Bar]:
    """One bar per value, scaled to the chart height (the tallest bar fills it)."""
    top = max(values, default=0) or 1
    slot = CHART_WIDTH / max(len(values), 1)
    bars = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = (CHART_HEIGHT - 20) * value / top
        bars.append(Bar(index * slot + 2, CHART_HEIGHT - 16 - height, slot - 4, height, label,
                        value))
    return bars


def horizontal_bars(counts: dict[str, int]) -> list[Bar]:
    top = max(counts.values(), default=0) or 1
    return [Bar(60, index * 22, (CHART_WIDTH - 320) * value / top, 18, label, value)
            for index, (label, value) in enumerate(sorted(counts.items()))]
