"""The Prometheus rules and the Grafana dashboard of deploy/: ``promtool check rules`` and
``promtool test rules`` pass, every alert has a case where it fires and one where it does not,
the committed dashboard is what ``ops.dashboard`` builds, and every panel query is a recording
rule or an expression that tests.yml evaluates (so a typo fails promtool, not an operator)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ops import dashboard

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = ("recording.rules.yml", "alerts.rules.yml")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI: .ci/run must apt-get install prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does)")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=120)


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", "tests.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a broken recording rule makes them fail."""
    for name in ("alerts.rules.yml", "tests.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    broken = (PROMETHEUS / "recording.rules.yml").read_text().replace(
        'response_code=~"91|96"', 'response_code=~"19|96"')
    (tmp_path / "recording.rules.yml").write_text(broken)
    result = subprocess.run([promtool(), "test", "rules", "tests.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "AtmErrorRatioHigh" in result.stdout + result.stderr


def _alerts() -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)", (PROMETHEUS / "alerts.rules.yml").read_text(), re.M)


def _records() -> set[str]:
    text = (PROMETHEUS / "recording.rules.yml").read_text()
    return set(re.findall(r"^\s*- record: (\S+)", text, re.M))


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """Scan tests.yml: per alert, one alert_rule_test expecting alerts and one expecting none."""
    text = (PROMETHEUS / "tests.yml").read_text()
    cases = re.findall(r"alertname: (\w+),? *(?:\n\s*)?exp_alerts: *(\[\])?", text)
    firing = {name for name, empty in cases if not empty}
    quiet = {name for name, empty in cases if empty}
    alerts = _alerts()
    assert len(alerts) >= 11
    assert not set(alerts) - firing, f"alerts with no firing case: {set(alerts) - firing}"
    assert not set(alerts) - quiet, f"alerts with no quiet case: {set(alerts) - quiet}"
    runbooks = (PROMETHEUS / "alerts.rules.yml").read_text().count("runbook: >-")
    assert runbooks == len(alerts)


def test_dashboard_file_is_built_from_code_and_parses() -> None:
    committed = (DEPLOY / "grafana" / "atm-switch.json").read_text(encoding="utf-8")
    regenerate = "python -m ops.dashboard deploy/grafana/atm-switch.json"
    assert committed == dashboard.render(), f"stale dashboard: run {regenerate}"
    document = json.loads(committed)
    assert document["uid"] == "atm-switch" and document["title"]
    panels = [p for p in document["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    assert len({p["id"] for p in document["panels"]}) == len(document["panels"])
    for panel in panels:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
    titles = " ".join(p["title"] for p in panels).lower()
    for needed in ("throughput", "response-code", "latency", "per-stage", "holds", "connections",
                   "links", "store-and-forward"):
        assert needed in titles


def test_every_panel_query_is_checked_by_promtool() -> None:
    records = _records()
    tested = set(re.findall(r"^\s*- expr: (.+?)\s*$", (PROMETHEUS / "tests.yml").read_text(),
                            re.M))
    document = json.loads((DEPLOY / "grafana" / "atm-switch.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in document["panels"] if p["type"] != "row" for t in p["targets"]]
    assert sorted(exprs) == sorted(dashboard.panel_queries())
    unchecked = [e for e in exprs if e not in records and e not in tested]
    assert not unchecked, f"panel queries neither recorded nor tested: {unchecked}"
    # A recording rule a panel uses is itself evaluated in tests.yml (values, not only syntax).
    untested_records = [e for e in exprs if e in records and e not in tested]
    assert len(untested_records) <= 6, untested_records
