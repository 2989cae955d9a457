"""The engine benchmark runs against a migrated database and reports the engine and its floor.

Figures are not asserted (speed is measured in benchmarks, not in tests); what is checked is that
each batch size is measured through the real batch functions (every answer ``00``, or the
benchmark raises) and that the floor's functions take the engine's own arguments.
"""

from __future__ import annotations

import json

import pytest

from loadtest import engine_bench


def test_engine_bench_reports_each_size_and_its_floor(
    pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = engine_bench.main(["--dsn", pg_dsn, "--sizes", "1", "3", "--items", "6",
                                "--cards", "8", "--floor", "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["batch_size"] for row in report["sizes"]] == [1, 3]
    for row in report["sizes"]:
        assert row["messages"] == 6
        for field in ("pg_cpu_us_per_withdrawal", "floor_call_us_per_withdrawal",
                      "floor_one_row_us_per_withdrawal"):
            assert row[field] >= 0


def test_engine_bench_without_floor_reports_no_floor(
    pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert engine_bench.main(["--dsn", pg_dsn, "--sizes", "2", "--items", "4", "--cards", "2",
                              "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["sizes"]
    assert "floor_call_us_per_withdrawal" not in row
