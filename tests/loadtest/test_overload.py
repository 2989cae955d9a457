"""Issue 11 item 9: the loadtest's overload option (not run at scale here: the lead measures).
The summary is checked on a hand-written run summary; the CLI accepts the options."""

from __future__ import annotations

from loadtest.__main__ import build_parser
from loadtest.step import overload_summary

SUMMARY = {
    "offered_rate_per_s": 4000.0,
    "tps": 2100.0,
    "p99_ms": 42.0,
    "p999_ms": 80.0,
    "errors": 3,
    "target_rss_mb": 120.5,
    "by_type": {
        "withdrawal": {"codes": {"00": 1500, "91": 1400, "timeout": 3}, "advice": False},
        "inquiry": {"codes": {"00": 600, "91": 500}, "advice": False},
        "completion": {"codes": {"00": 1500}, "advice": True},  # advices are not 0200s
    },
}


def test_overload_summary_counts_91_among_answered_0200s() -> None:
    result = overload_summary(SUMMARY, 2000.0, baseline_rss_mb=118.0)
    assert result["answered"] == 4000  # the transport error is not an answer
    assert result["share_answered_91"] == 0.475 and result["share_approved"] == 0.525
    assert result["target_rss_growth_mb"] == 2.5
    assert (result["p99_ms"], result["errors"], result["peak_rate"]) == (42.0, 3, 2000.0)


def test_overload_summary_without_answers_or_memory() -> None:
    result = overload_summary({"by_type": {}}, 10.0, baseline_rss_mb=None)
    assert result["share_answered_91"] is None and result["target_rss_growth_mb"] is None


def test_the_cli_takes_the_overload_options() -> None:
    args = build_parser().parse_args(["--step", "--overload", "--overload-factor", "3"])
    assert args.overload and args.overload_factor == 3.0
