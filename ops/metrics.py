"""Prometheus metrics of the switch, on a registry of their own (one per app).

Label values are always from closed sets (known MTIs, processing codes, response
codes, error kinds), never copied from the wire unchecked: junk cannot blow up
the number of series.
"""

from __future__ import annotations

import re
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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


class SwitchMetrics:
    """Every metric the switch core exports; other parts may add theirs to ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "atm_requests",
            "Requests answered (or dropped), by request MTI, processing code and response code",
            ["mti", "processing_code", "response_code"],
            registry=r,
        )
        self.latency = Histogram(
            "atm_request_duration_seconds",
            "Time from a request's arrival to its response being written",
            ["message_class"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.connections_open = Gauge(
            "atm_connections_open", "Open terminal connections", registry=r
        )
        self.connections = Counter("atm_connections", "Terminal connections accepted", registry=r)
        self.connections_rejected = Counter(
            "atm_connections_rejected",
            "Connections closed at once because the maximum was reached",
            registry=r,
        )
        self.in_flight = Gauge(
            "atm_requests_in_flight", "Requests received and not yet answered", registry=r
        )
        self.shed = Counter(
            "atm_requests_shed",
            "Requests answered 91 at once because the switch was full",
            registry=r,
        )
        self.protocol_errors = Counter(
            "atm_protocol_errors",
            "Framing and message format errors, by kind",
            ["kind"],
            registry=r,
        )
        self.signed_on = Gauge("atm_terminals_signed_on", "Terminals signed on now", registry=r)
        for kind in ERROR_KINDS:
            self.protocol_errors.labels(kind=kind)

    def observe_request(
        self,
        mti: str,
        processing_code: str | None,
        response_code: str | None,
        message_class: str,
        seconds: float,
    ) -> None:
        self.requests.labels(
            mti=mti_label(mti),
            processing_code=processing_code_label(processing_code),
            response_code=response_code_label(response_code),
        ).inc()
        self.latency.labels(
            message_class=message_class if mti_label(mti) != OTHER else OTHER
        ).observe(seconds)

    def protocol_error(self, kind: str) -> None:
        self.protocol_errors.labels(kind=kind if kind in ERROR_KINDS else OTHER).inc()

    def exposition(self) -> bytes:
        """The text exposition format served on ``/metrics``."""
        return generate_latest(self.registry)
