"""Prometheus metrics of the switch, on a registry of their own (one per app).

Label values are always from closed sets (known MTIs, processing codes, response
codes, error kinds, pipeline stages, terminal *groups*), never copied from the wire
unchecked: junk cannot blow up the number of series. Terminal ids never become
labels; ``terminal_group`` maps them onto a bounded set of groups.

Gauges that come from the database (holds open, store-and-forward queue depth) are
read from a snapshot refreshed in the background (``ops.metrics_snapshot``), never
by a query per scrape.

The metrics touched on every request (requests, latencies, stages, batch sizes, protocol
errors, connections, in flight, shed) are plain numbers in :mod:`ops.metric_tables`, read at
scrape time; the rest are prometheus-client's own objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from ops.metric_tables import (
    CounterChild,
    CounterTable,
    GaugeFunction,
    HistogramChild,
    HistogramTable,
    TableCollector,
)
from switch.protocol.codes import Mti, ResponseCode

# Request latencies on one connection are milliseconds; the deadline is 5 s.
LATENCY_BUCKETS_S: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_PROCESSING_CODE: Final = re.compile(r"(01|21|31|38|39|40|90)(00|10|20)(00|10|20)")
_KNOWN_MTIS: Final = frozenset(m.value for m in Mti)
_KNOWN_RESPONSE_CODES: Final = frozenset(c.value for c in ResponseCode)
OTHER: Final = "other"
NONE: Final = "none"

# Stages of one request whose latency is observed on their own (atm_stage_duration_seconds):
# the HSM's MAC and PIN work, the wait for a ledger batch to start and its commit, and
# writing the answer. A closed set: the dashboard and the recording rules name each one.
STAGES: Final = (
    "hsm_mac",
    "hsm_pin",
    "ledger_batch_wait",
    "ledger_commit",
    "answer",
)
# Group commits hold at most a few hundred requests; buckets in powers of two.
BATCH_SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Reasons of a 0420 (spec 5.4); anything else counts as "other".
REVERSAL_REASONS: Final = ("17", "22", "32", "68")
KEY_EXCHANGE_RESULTS: Final = ("ok", "failed")
MESSAGE_CLASSES: Final = ("0200", "0220", "0420", "advice")  # advice: a 0220/0420 batch
# At most this many terminal groups get a label value of their own (the rest are "other"):
# a typo in the configuration cannot create thousands of series.
terminal_groups_max: Final = 64
DEFAULT_GROUP: Final = "default"

# Kinds of protocol error counted in atm_protocol_errors_total.
ERROR_KINDS: Final = (
    "frame_too_large",
    "framing",
    "format",
    "format_unanswerable",
    "unexpected_response",
    "idle_timeout",
    "write_timeout",
    # Admission (spec 10): see switch/server.py.
    "sign_on_deadline",
    "not_signed_on_evicted",
    "tls_handshake",
    "before_sign_on",
)


def mti_label(mti: str | None) -> str:
    return mti if mti in _KNOWN_MTIS else OTHER


def processing_code_label(code: str | None) -> str:
    if code is None:
        return NONE
    return code if _PROCESSING_CODE.fullmatch(code) else OTHER


def response_code_label(code: str | None) -> str:
    if code is None:
        return NONE
    return code if code in _KNOWN_RESPONSE_CODES else OTHER


def terminal_group(terminal_id: str, prefixes: Mapping[str, str]) -> str:
    """The group of a terminal: the value of the longest matching id prefix in ``prefixes``
    (e.g. ``{"ATMBJ": "beijing"}``), else ``default``. Bounded by the configuration."""
    best = ""
    for prefix in prefixes:
        if terminal_id.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return prefixes[best] if best else DEFAULT_GROUP


def _bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


def _pool_reader(stats: Callable[[], tuple[int, int, int]], index: int) -> Callable[[], float]:
    def read() -> float:
        return float(stats()[index])

    return read


# Label combinations of the request counters kept resolved (a junk processing code maps to
# "other" but is a new key here, so the cache is bounded apart from the label sets).
request_children_cached_max: Final = 4096


class SwitchMetrics:
    """Every metric the switch core exports; other parts may add theirs to ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._request_children: dict[tuple[Any, ...], tuple[CounterChild, HistogramChild]] = {}
        self._stage_children: dict[str, HistogramChild] = {}
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = CounterTable(
            "atm_requests",
            "Requests answered (or dropped), by request MTI, processing code and response code",
            ["mti", "processing_code", "response_code"],
        )
        self.latency = HistogramTable(
            "atm_request_duration_seconds",
            "Time from a request's arrival to its response being written",
            ["message_class"],
            LATENCY_BUCKETS_S,
        )
        # Plain numbers kept by the server (one Trio thread), read at scrape time.
        self.connections_open_now = 0
        self.in_flight_now = 0
        self.connections = CounterTable("atm_connections", "Terminal connections accepted")
        self.connections_rejected = CounterTable(
            "atm_connections_rejected",
            "Connections closed at once because the maximum was reached",
        )
        self.shed = CounterTable(
            "atm_requests_shed", "Requests answered 91 at once because the switch was full"
        )
        self.protocol_errors = CounterTable(
            "atm_protocol_errors", "Framing and message format errors, by kind", ["kind"]
        )
        for kind in (*ERROR_KINDS, OTHER):
            self.protocol_errors.child((kind,))
        self._error_children = {kind: self.protocol_errors.child((kind,)) for kind in ERROR_KINDS}
        self._other_errors = self.protocol_errors.child((OTHER,))
        self.signed_on = Gauge("atm_terminals_signed_on", "Terminals signed on now", registry=r)
        self._add_operations_metrics(r)
        r.register(TableCollector([
            self.requests, self.latency, self.connections, self.connections_rejected,
            self.shed, self.protocol_errors, self.stage_latency, self.batch_size,
            GaugeFunction("atm_connections_open", "Open terminal connections",
                          lambda: self.connections_open_now),
            GaugeFunction("atm_requests_in_flight", "Requests received and not yet answered",
                          lambda: self.in_flight_now),
        ]))  # fmt: skip

    def _add_operations_metrics(self, r: CollectorRegistry) -> None:
        """What an operator watches beyond requests (issue 12): stages, batches, pool, links."""
        self.stage_latency = HistogramTable(
            "atm_stage_duration_seconds",
            "Time spent in one stage of a request (HSM MAC/PIN, ledger batch wait/commit, answer)",
            ["stage"],
            LATENCY_BUCKETS_S,
        )
        self.batch_size = HistogramTable(
            "atm_ledger_batch_size",
            "Requests per ledger group commit, by message class",
            ["message_class"],
            BATCH_SIZE_BUCKETS,
        )
        self.pool_connections = Gauge(
            "atm_db_pool_connections",
            "Database pool connections, by state (in_use, idle, max)",
            ["state"],
            registry=r,
        )
        self.reversals = Counter(
            "atm_reversals", "Reversal advices (0420) recorded, by reason (field 39)", ["reason"],
            registry=r,
        )
        self.key_exchanges = Counter(
            "atm_key_exchanges",
            "Key exchanges (0800/161), by terminal group and result",
            ["terminal_group", "result"],
            registry=r,
        )
        self.mac_failures = Counter(
            "atm_mac_failures",
            "Requests answered 63 because their MAC did not verify, by terminal group",
            ["terminal_group"],
            registry=r,
        )
        self.network_link_up = Gauge(
            "atm_network_link_up",
            "1 while the link to a card network is signed on, else 0",
            ["network"],
            registry=r,
        )
        # Created on first use: without TLS the series is absent, so the expiry alert is quiet.
        self.tls_certificate_expiry: Gauge | None = None
        for stage in STAGES:
            self._stage_children[stage] = self.stage_latency.child((stage,))
        self._batch_children = {
            message_class: self.batch_size.child((message_class,))
            for message_class in (*MESSAGE_CLASSES, OTHER)
        }
        for reason in (*REVERSAL_REASONS, OTHER):
            self.reversals.labels(reason=reason)
        self.mac_failures.labels(terminal_group=DEFAULT_GROUP)
        for result in KEY_EXCHANGE_RESULTS:
            self.key_exchanges.labels(terminal_group=DEFAULT_GROUP, result=result)
        self._groups_seen: set[str] = {DEFAULT_GROUP}

    # -- typed helpers for the hot path (the lead wires them into switch/authorization) --------
    def observe_stage(self, stage: str, seconds: float) -> None:
        """One stage's duration; an unknown stage is a programming error, so it raises."""
        child = self._stage_children.get(stage)
        if child is None:
            raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
        child.observe(seconds)

    def observe_batch(self, message_class: str, size: int) -> None:
        """The number of requests one ledger group commit carried."""
        child = self._batch_children.get(message_class) or self._batch_children[OTHER]
        child.observe(size)

    def set_pool_stats(self, stats: Callable[[], tuple[int, int, int]]) -> None:
        """``stats()`` returns (in use, idle, max); read at scrape time, no I/O allowed."""
        for index, state in enumerate(("in_use", "idle", "max")):
            self.pool_connections.labels(state=state).set_function(_pool_reader(stats, index))

    def reversal(self, reason: str | None) -> None:
        self.reversals.labels(reason=_bounded(reason or "", REVERSAL_REASONS)).inc()

    def _group(self, group: str) -> str:
        if group not in self._groups_seen and len(self._groups_seen) >= terminal_groups_max:
            return OTHER
        self._groups_seen.add(group)
        return group

    def key_exchange(self, group: str, ok: bool) -> None:
        """``group`` comes from :func:`terminal_group`, never a raw terminal id."""
        self.key_exchanges.labels(
            terminal_group=self._group(group), result="ok" if ok else "failed"
        ).inc()

    def mac_failure(self, group: str) -> None:
        self.mac_failures.labels(terminal_group=self._group(group)).inc()

    def set_link_state(self, network: str, up: bool) -> None:
        """Networks are configured, so their names are a bounded set."""
        self.network_link_up.labels(network=network).set(1 if up else 0)

    def set_tls_certificate_expiry(self, not_after_unix_s: float) -> None:
        if self.tls_certificate_expiry is None:
            self.tls_certificate_expiry = Gauge(
                "atm_tls_certificate_expiry_timestamp_seconds",
                "When the terminal listener's TLS certificate expires (Unix time)",
                registry=self.registry,
            )
        self.tls_certificate_expiry.set(not_after_unix_s)

    def observe_request(
        self,
        mti: str,
        processing_code: str | None,
        response_code: str | None,
        message_class: str,
        seconds: float,
    ) -> None:
        # The labelled children are looked up once per label combination (bounded: every
        # label is from a fixed set), not through prometheus-client's labels() per request.
        children = self._request_children.get((mti, processing_code, response_code, message_class))
        if children is None:
            children = self._request_children_for(mti, processing_code, response_code,
                                                  message_class)
        children[0].value += 1
        children[1].observe(seconds)

    def _request_children_for(
        self, mti: str, processing_code: str | None, response_code: str | None,
        message_class: str,
    ) -> tuple[CounterChild, HistogramChild]:
        children = (
            self.requests.child((
                mti_label(mti),
                processing_code_label(processing_code),
                response_code_label(response_code),
            )),
            self.latency.child((message_class if mti_label(mti) != OTHER else OTHER,)),
        )  # fmt: skip
        if len(self._request_children) < request_children_cached_max:
            self._request_children[(mti, processing_code, response_code, message_class)] = children
        return children

    def protocol_error(self, kind: str) -> None:
        (self._error_children.get(kind) or self._other_errors).value += 1

    def sample(self, name: str, **labels: str) -> float | None:
        """One sample's value as scraped now (tests and the CLI read metrics through this)."""
        return self.registry.get_sample_value(name, labels)

    def exposition(self) -> bytes:
        """The text exposition format served on ``/metrics``."""
        return generate_latest(self.registry)
