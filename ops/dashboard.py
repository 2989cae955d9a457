"""The Grafana dashboard ``deploy/grafana/atm-switch.json``, built from code.

Built with Grafana's own typed builders (``grafana-foundation-sdk``) so a wrong field name is a
type error, not a dashboard that silently fails to import. Every panel queries a recording rule
of ``deploy/prometheus/recording.rules.yml`` or an expression that ``deploy/prometheus/tests.yml``
evaluates, so ``promtool test rules`` fails on a typo in a panel's query
(``tests/ops/test_dashboard.py`` checks that link).

Regenerate after a change: ``python -m ops.dashboard deploy/grafana/atm-switch.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef

UID = "atm-switch"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class PanelSpec:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    stacked: bool = False


# (row title, panels): the layout top to bottom; two panels per line.
LAYOUT: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    ("Traffic", (
        PanelSpec("Throughput by transaction type",
                  "0200s per second by positions 1-2 of field 3 (01 withdrawal, 21 deposit, "
                  "31 balance, 38 mini statement, 39 name inquiry, 40 transfer, 90 PIN change)",
                  (Query("atm:financial_requests_by_type:rate5m", "{{type}}"),), "reqps", True),
        PanelSpec("Response-code mix", "Answers to 0200/0220/0420 per second by field 39",
                  (Query("atm:responses_by_code:rate5m", "{{response_code}}"),), "reqps", True),
        PanelSpec("Requests by MTI", "All requests per second by request MTI",
                  (Query("atm:requests:rate5m", "{{mti}}"),), "reqps"),
        PanelSpec("Error and decline ratios",
                  "Share of 0200s answered 91/96 (errors) and declined (any other non-00 code)",
                  (Query("atm:error_ratio:rate5m", "errors"),
                   Query("atm:decline_ratio:rate5m", "declines")), "percentunit"),
    )),
    ("Latency", (
        PanelSpec("Request latency percentiles", "Arrival to response written, by message class",
                  (Query("atm:request_duration_seconds:p50", "p50 {{message_class}}"),
                   Query("atm:request_duration_seconds:p95", "p95 {{message_class}}"),
                   Query("atm:request_duration_seconds:p99", "p99 {{message_class}}")), "s"),
        PanelSpec("Per-stage latency (p99)",
                  "HSM MAC and PIN, ledger batch wait and commit, writing the answer",
                  (Query("atm:stage_duration_seconds:p99", "{{stage}}"),), "s"),
        PanelSpec("Ledger batch size (mean)", "Requests per ledger group commit",
                  (Query("atm:ledger_batch_size:mean5m", "{{message_class}}"),)),
        PanelSpec("Database pool use", "Connections in use / pool maximum",
                  (Query("atm:db_pool_use:ratio", "in use"),), "percentunit"),
    )),
    ("Holds and money", (
        PanelSpec("Holds open", "Open ledger holds by type",
                  (Query("sum by (type) (atm_holds_open)", "{{type}}"),)),
        PanelSpec("Amount held", "Open holds in major units (minor units / 100)",
                  (Query("sum by (type) (atm_holds_open_amount) / 100", "{{type}}"),)),
        PanelSpec("Expired holds (last hour)",
                  "Withdrawals captured as presumed dispensed and deposits released at expiry",
                  (Query("atm:presumed_dispensed:increase1h", "presumed dispensed"),
                   Query("atm:deposits_expired:increase1h", "deposits expired"))),
        PanelSpec("Reversals by reason", "0420s per second by field 39 (17, 22, 32, 68)",
                  (Query("atm:reversals_by_reason:rate5m", "{{reason}}"),), "reqps", True),
    )),
    ("Connections, links and security", (
        PanelSpec("Connections", "Open terminal connections, terminals signed on, in flight",
                  (Query("sum(atm_connections_open)", "connections"),
                   Query("sum(atm_terminals_signed_on)", "signed on"),
                   Query("sum(atm_requests_in_flight)", "in flight"))),
        PanelSpec("Card-network links", "1 = signed on",
                  (Query("min by (network) (atm_network_link_up)", "{{network}}"),)),
        PanelSpec("Store-and-forward queue", "Advices waiting for a card network",
                  (Query("sum by (network) (atm_saf_queue_depth)", "{{network}}"),)),
        PanelSpec("MAC and key-exchange failures", "By terminal group",
                  (Query("atm:mac_failures:rate5m", "MAC {{terminal_group}}"),
                   Query("atm:key_exchange_failures:increase15m",
                         "key exchange {{terminal_group}}"))),
    )),
)


def panel_queries() -> list[str]:
    """Every PromQL expression on the dashboard (for the test that ties them to promtool)."""
    return [q.expr for _, panels in LAYOUT for spec in panels for q in spec.queries]


def _panel(spec: PanelSpec, panel_id: int) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .height(8)
        .span(12)
    )
    for ref, query in zip("ABCDEFGH", spec.queries, strict=False):
        panel = panel.with_target(
            prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
            .datasource(DATASOURCE)
        )
    if spec.stacked:
        panel = panel.stacking(
            common_builder.StackingConfig().mode(common.StackingMode.NORMAL)
        ).fill_opacity(30)
    return panel


def build(layout: Sequence[tuple[str, Sequence[PanelSpec]]] = LAYOUT) -> dict[str, Any]:
    """The dashboard as the JSON object Grafana imports."""
    board = (
        dashboard_builder.Dashboard("ATM switch")
        .uid(UID)
        .tags(["atm-switch", "payments"])
        .description("Throughput, response codes, latency, holds, connections, links, SAF")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("utc")
        .with_variable(
            dashboard_builder.DatasourceVariable("datasource").label("Prometheus")
            .type("prometheus")
        )
    )
    panel_id = 0
    for row_title, panels in layout:
        panel_id += 1
        board = board.with_row(dashboard_builder.Row(row_title).id(panel_id))
        for spec in panels:
            panel_id += 1
            board = board.with_panel(_panel(spec, panel_id))
    document: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return document


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ops.dashboard OUTPUT.json", file=sys.stderr)
        return 2
    Path(args[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
