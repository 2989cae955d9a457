"""The bundled scenario catalogue as a regression suite: run scenarios, check each against its
``[expect]`` table, and report as text or JUnit XML (what CI systems read).

Every run of the catalogue needs a switch loaded with ``catalogue-fixture.json`` (``atm-sim
catalogue-fixture``), re-loaded before each run: loading resets PIN try counters and statuses,
and the scenarios state balance *changes*, so balances left by earlier runs do not matter. Each
scenario starts with its cassettes filled (a replenishment), so its cash counters cover that run
only and the catalogue can be run again on the same data directory. Scenarios that ``require``
a capability the switch is said to lack (``atm-sim run --all --without chip``) are skipped.
"""

from __future__ import annotations

import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from terminals.scenarios.expect import check
from terminals.scenarios.loader import Scenario, bundled_scenarios, load_scenario
from terminals.scenarios.runner import run_scenario

FIXTURE_NAME = "catalogue-fixture.json"
# Printed under a failed run: the usual cause is a switch not re-loaded since the last run.
RELOAD_HINT = ("a switch keeps PIN tries and card states between runs: re-load the fixture "
               "(atm-sim catalogue-fixture > catalogue.json && atm-switch fixtures load "
               "catalogue.json) before each run --all")


def catalogue_fixture_text() -> str:
    """The fixture (accounts, cards, terminal) every bundled scenario is written against."""
    return (resources.files("terminals.scenarios") / "examples" / FIXTURE_NAME).read_text(
        encoding="utf-8")


@dataclass
class CaseResult:
    name: str
    status: str  # passed, failed, skipped, error
    seconds: float = 0.0
    mismatches: list[str] = field(default_factory=list)
    detail: str = ""
    result: dict[str, Any] | None = None


def skip_reason(scenario: Scenario, capabilities: Sequence[str]) -> str | None:
    missing = [c for c in scenario.requires if c not in capabilities]
    return f"needs a switch with: {', '.join(missing)}" if missing else None


async def run_case(scenario: Scenario, *, host: str, port: int, data_dir: Path,
                   wallet_dir: Path | None = None, durable_journal: bool = True) -> CaseResult:
    """Play one scenario and judge it (an exception is an ``error``, not a crash)."""
    started = time.monotonic()
    try:
        result = await run_scenario(scenario, host=host, port=port, data_dir=data_dir,
                                    durable_journal=durable_journal, wallet_dir=wallet_dir)
    except Exception as exc:
        return CaseResult(scenario.name, "error", time.monotonic() - started,
                          detail="".join(traceback.format_exception(exc))[-4000:])
    elapsed = time.monotonic() - started
    if scenario.expect is None:
        return CaseResult(scenario.name, "passed", elapsed, result=result)
    verdict = check(scenario.expect, result)
    return CaseResult(scenario.name, "passed" if verdict.passed else "failed", elapsed,
                      verdict.mismatches, result=result)


async def run_catalogue(names: Sequence[str] | None, *, host: str, port: int, data_dir: Path,
                        capabilities: Sequence[str] = (), durable_journal: bool = True
                        ) -> list[CaseResult]:
    """Every named (default: every bundled) scenario, one after another, each with its own
    terminal data directory under ``data_dir`` and one shared wallet of chip cards."""
    results: list[CaseResult] = []
    for name in names or bundled_scenarios():
        scenario = load_scenario(name)
        reason = skip_reason(scenario, capabilities)
        if reason is not None:
            results.append(CaseResult(scenario.name, "skipped", detail=reason))
            continue
        case_dir = data_dir / scenario.name
        _carry_stan(data_dir / SHARED_STAN_FILE, case_dir / SHARED_STAN_FILE)
        results.append(await run_case(scenario, host=host, port=port,
                                      data_dir=case_dir, wallet_dir=data_dir,
                                      durable_journal=durable_journal))
        _carry_stan(case_dir / SHARED_STAN_FILE, data_dir / SHARED_STAN_FILE)
    return results


# The scenarios play the same terminal: its STAN keeps rising from one scenario to the next, as
# a real terminal's does. Restarting at 000001 in each scenario's own directory would repeat a
# message key (41, 11, 7, 32) of the previous scenario within the same second, with other
# content: the switch rightly answers 94 (spec 5.5).
SHARED_STAN_FILE = "stan"


def _carry_stan(source: Path, target: Path) -> None:
    """Copy the terminal's STAN counter forward when ``source`` is ahead of ``target``."""
    try:
        value = int(source.read_text().strip() or "0")
    except (FileNotFoundError, ValueError):
        return
    try:
        current = int(target.read_text().strip() or "0")
    except (FileNotFoundError, ValueError):
        current = 0
    if value > current:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{value}\n")


def junit_xml(results: Sequence[CaseResult], *, suite: str = "atm-sim catalogue") -> str:
    """JUnit XML (the Jenkins/GitLab/GitHub schema): one testcase per scenario."""
    counts = {status: sum(r.status == status for r in results)
              for status in ("failed", "skipped", "error")}
    root = ET.Element("testsuite", name=suite, tests=str(len(results)),
                      failures=str(counts["failed"]), errors=str(counts["error"]),
                      skipped=str(counts["skipped"]),
                      time=f"{sum(r.seconds for r in results):.3f}")
    for case in results:
        element = ET.SubElement(root, "testcase", classname="atm_sim.catalogue",
                                name=case.name, time=f"{case.seconds:.3f}")
        if case.status == "failed":
            failure = ET.SubElement(element, "failure",
                                    message=case.mismatches[0] if case.mismatches else "failed")
            failure.text = "\n".join(case.mismatches)
        elif case.status == "error":
            error = ET.SubElement(element, "error", message="the scenario could not run")
            error.text = case.detail
        elif case.status == "skipped":
            ET.SubElement(element, "skipped", message=case.detail)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def describe_results(results: Sequence[CaseResult]) -> str:
    lines = []
    for case in results:
        lines.append(f"{case.status.upper():<8} {case.name} ({case.seconds:.1f} s)"
                     + (f": {case.detail}" if case.status == "skipped" else ""))
        lines += [f"         - {m}" for m in case.mismatches]
        if case.status == "error":
            lines.append("         " + case.detail.strip().splitlines()[-1])
    passed = sum(r.status == "passed" for r in results)
    if any(r.status == "failed" for r in results):
        lines.append(f"hint: {RELOAD_HINT}")
    lines.append(f"{passed} passed, {sum(r.status == 'failed' for r in results)} failed, "
                 f"{sum(r.status == 'error' for r in results)} errors, "
                 f"{sum(r.status == 'skipped' for r in results)} skipped")
    return "\n".join(lines)
