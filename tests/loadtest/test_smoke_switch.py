"""CI smoke run of the whole load test against the real switch (correctness only, no
timing assertions): ``python -m loadtest`` starts ``atm-switch serve`` as a subprocess on
the test's PostgreSQL, loads the load-test fixtures, signs on 5 terminals with key
exchange, runs the mix with PIN blocks and MACs for 3 s, then the echo baseline, and
must report every agreed key, every 0200 approved, no errors, and non-empty latency
histograms and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPORT_KEYS = (
    "switch_tps",
    "echo_tps",
    "ratio",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "errors",
    "approved_share",
    "generator_cpu",
    "processes",
)


def test_smoke_run_against_the_switch_and_the_echo_baseline(pg_dsn: str, tmp_path: Path) -> None:
    plot = tmp_path / "run.png"
    result = subprocess.run(
        [sys.executable, "-m", "loadtest", "--terminals", "5", "--processes", "1",
         "--duration", "3", "--warmup", "1", "--baseline", "echo", "--dsn", pg_dsn,
         "--reversal-share", "0.2", "--json", "--plot", str(plot),
         "--switch-log", str(tmp_path / "switch.log")],
        capture_output=True, text=True, timeout=240, check=False,
    )
    log = (tmp_path / "switch.log").read_text() if (tmp_path / "switch.log").exists() else ""
    assert result.returncode == 0, result.stderr + log[-2000:]
    report = json.loads(result.stdout)
    for key in REPORT_KEYS:
        assert key in report, key
    switch = report["switch"]
    assert switch["ready_terminals"] == 5 and not switch["setup_failures"]
    assert report["errors"] == 0, switch["by_type"]
    assert report["approved_share"] == 1.0, switch["by_type"]
    assert report["switch_tps"] > 0 and report["echo_tps"] > 0 and report["ratio"] > 0
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["p999_ms"]
    by_type = switch["by_type"]
    assert by_type["withdrawal"]["codes"] == {"00": by_type["withdrawal"]["count"]}
    assert by_type["completion"]["count"] > 0 and by_type["completion"]["p50_ms"] is not None
    assert set(by_type["completion"]["codes"]) == {"00"}
    assert report["echo"]["errors"] == 0
    assert switch["target_cpu_cores"] > 0 and switch["target_cpu_wait_threads"] is not None
    assert plot.stat().st_size > 10_000  # a rendered PNG, not an empty file
