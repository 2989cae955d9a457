"""The plain-number tables expose exactly what prometheus-client's own Counter and Histogram
of the same name would: the oracle is prometheus-client itself, fed the same observations,
so a bucket off by one (``le`` is <=), a missing ``_total`` or a non-cumulative bucket fails."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ops.metric_tables import CounterTable, GaugeFunction, HistogramTable, TableCollector

BUCKETS = (0.001, 0.005, 0.01, 0.1, 1.0)
# Values on the bounds themselves, between them and past the last one.
VALUES = st.one_of(
    st.sampled_from([0.0, *BUCKETS, 2.0]),
    st.floats(min_value=0.0, max_value=5.0, allow_nan=False),
)
LABELS = st.sampled_from(["0200", "0220", "other"])


def _samples(registry: CollectorRegistry) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every sample but the ``_created`` timestamps prometheus-client adds to its own."""
    found = []
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                found.append((sample.name, tuple(sorted(sample.labels.items())), sample.value))
    return sorted(found)


@given(st.lists(st.tuples(LABELS, VALUES), max_size=40))
def test_a_histogram_table_exposes_what_prometheus_client_does(
    observations: list[tuple[str, float]],
) -> None:
    ours = CollectorRegistry()
    table = HistogramTable("atm_x_seconds", "x", ["message_class"], BUCKETS)
    ours.register(TableCollector([table]))
    theirs = CollectorRegistry()
    reference = Histogram("atm_x_seconds", "x", ["message_class"], buckets=BUCKETS,
                          registry=theirs)
    for label, value in observations:
        table.child((label,)).observe(value)
        reference.labels(message_class=label).observe(value)
    assert _samples(ours) == _samples(theirs)


@given(st.lists(LABELS, max_size=40))
def test_a_counter_table_exposes_what_prometheus_client_does(labels: list[str]) -> None:
    ours = CollectorRegistry()
    table = CounterTable("atm_y", "y", ["kind"])
    ours.register(TableCollector([table]))
    theirs = CollectorRegistry()
    reference = Counter("atm_y", "y", ["kind"], registry=theirs)
    for label in labels:
        table.inc(label)
        reference.labels(kind=label).inc()
    assert _samples(ours) == _samples(theirs)


def test_the_text_exposition_is_the_hand_written_one() -> None:
    """Golden text: bucket bounds as Go prints floats, cumulative counts, +Inf == count."""
    registry = CollectorRegistry()
    histogram = HistogramTable("atm_z_seconds", "Z.", ["stage"], (0.01, 1.0))
    counter = CounterTable("atm_w", "W.")
    registry.register(TableCollector([histogram, counter,
                                      GaugeFunction("atm_v", "V.", lambda: 3)]))
    child = histogram.child(("hsm",))
    for value in (0.01, 0.5, 7.0):
        child.observe(value)
    counter.inc()
    assert generate_latest(registry).decode() == (
        "# HELP atm_z_seconds Z.\n"
        "# TYPE atm_z_seconds histogram\n"
        'atm_z_seconds_bucket{le="0.01",stage="hsm"} 1.0\n'
        'atm_z_seconds_bucket{le="1.0",stage="hsm"} 2.0\n'
        'atm_z_seconds_bucket{le="+Inf",stage="hsm"} 3.0\n'
        'atm_z_seconds_count{stage="hsm"} 3.0\n'
        'atm_z_seconds_sum{stage="hsm"} 7.51\n'
        "# HELP atm_w_total W.\n"
        "# TYPE atm_w_total counter\n"
        "atm_w_total 1.0\n"
        "# HELP atm_v V.\n"
        "# TYPE atm_v gauge\n"
        "atm_v 3.0\n"
    )


def test_a_second_metric_of_the_same_name_is_refused() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(TableCollector([CounterTable("atm_dup", "d")]))
    try:
        Counter("atm_dup", "d", registry=registry)
    except ValueError as exc:
        assert "Duplicated" in str(exc)
    else:
        raise AssertionError("the registry accepted a duplicate name")
