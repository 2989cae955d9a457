"""The comparison reads iso8583sim load's result table (output captured from iso8583sim 1.6.0,
`iso8583sim load --count 5000 --concurrency 200 --connections 50`, on this machine)."""

from __future__ import annotations

import pytest

from loadtest.iso8583sim_compare import parse_load_output

CAPTURED = """\
  Load test: 127.0.0.1:18583
\u250f\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2533\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2513
\u2503 Metric         \u2503     Value \u2503
\u2502 Requests       \u2502     5,000 \u2502
\u2502 Duration       \u2502    5.66 s \u2502
\u2502 Throughput     \u2502 1,883 msg/s \u2502
\u2502 Latency p50    \u2502 237.87 ms \u2502
\u2502 Response codes \u2502 00: 5,000 \u2502
"""


def test_the_rate_and_codes_are_read_from_the_table() -> None:
    assert parse_load_output(CAPTURED) == {"msg_per_s": 1883.0, "codes": "00: 5,000"}


def test_output_without_a_throughput_line_is_an_error_not_a_zero() -> None:
    with pytest.raises(SystemExit, match="no throughput"):
        parse_load_output("Connection refused\n")
