"""Hot-path metrics as plain numbers, turned into Prometheus families only at scrape time.

prometheus-client's ``Counter.inc`` and ``Histogram.observe`` take a lock and walk the
buckets in Python on every call, and ``labels()`` builds a key per call: ~10 us per request
on this machine (docs/performance.md). The switch answers each request on one Trio thread,
so its counters need no lock: a child here is an object with a number (or a list of bucket
counts) that the request path bumps in place, and :class:`TableCollector` reads them when
``/metrics`` is scraped. The exposition is the same as prometheus-client's own metrics of the
same name and type (``_total``, ``_bucket`` with cumulative ``le``, ``_sum``, ``_count``), so
the recording rules, alerts and dashboards do not change.

A scrape may run in another thread while the request path writes: it reads each number once,
and a histogram's ``_count`` is the sum of the buckets it read, so a sample is never
inconsistent with itself (at worst it is one request behind).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class CounterChild:
    """One label set's count: ``child.value += 1`` on the hot path (``inc`` for readability)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class HistogramChild:
    """One label set's buckets: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound counts in that bound's bucket (le means <=).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class CounterTable:
    """A counter family: label values -> :class:`CounterChild`."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], CounterChild] = {}
        if not self.labelnames:
            self.child(())

    def child(self, labels: tuple[str, ...]) -> CounterChild:
        """The child of ``labels`` (created on first use; resolve it once, then keep it)."""
        found = self.children.get(labels)
        if found is None:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
            found = self.children[labels] = CounterChild()
        return found

    def inc(self, *labels: str) -> None:
        self.child(labels).value += 1

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, child in list(self.children.items()):
            family.add_metric(list(labels), child.value)
        return family


class HistogramTable:
    """A histogram family with fixed bucket bounds: label values -> :class:`HistogramChild`."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: bucket bounds must be increasing and distinct")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = bounds
        self._le = [floatToGoString(b) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self.children: dict[tuple[str, ...], HistogramChild] = {}

    def child(self, labels: tuple[str, ...]) -> HistogramChild:
        found = self.children.get(labels)
        if found is None:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
            found = self.children[labels] = HistogramChild(self.bounds)
        return found

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, child in list(self.children.items()):
            counts = list(child.counts)  # one read of the buckets; _count is their total
            cumulative, buckets = 0, []
            for le, count in zip(self._le, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(list(labels), buckets, child.sum)
        return family


class GaugeFunction:
    """A gauge without labels whose value is read from ``read()`` at scrape time."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, value=float(self.read()))


Table = CounterTable | HistogramTable | GaugeFunction


class TableCollector(Collector):
    """Exposes a set of tables through a prometheus-client registry."""

    def __init__(self, tables: Iterable[Table]) -> None:
        self.tables = list(tables)

    def collect(self) -> Iterator[Metric]:
        for table in self.tables:
            yield table.family()

    def describe(self) -> Iterator[Metric]:
        """The names only (no values), so the registry can refuse a second metric of a name."""
        for table in self.tables:
            if isinstance(table, CounterTable):
                yield CounterMetricFamily(table.name, table.documentation, labels=table.labelnames)
            elif isinstance(table, HistogramTable):
                yield HistogramMetricFamily(
                    table.name, table.documentation, labels=table.labelnames
                )
            else:
                yield GaugeMetricFamily(table.name, table.documentation)
