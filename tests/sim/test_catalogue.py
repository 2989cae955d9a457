"""The bundled scenario catalogue as QA runs it: every scenario that needs no chip-capable switch
is played against a real switch (TCP, software HSM, PostgreSQL ledger) loaded with the
catalogue's own fixture, and must meet its [expect] table; chip scenarios are played against the
in-test pyemv issuer (tests/sim/chip_issuer.py) until the switch checks cryptograms. Then the
checker itself is shown to fail on a wrong expectation, and the JUnit XML is read back."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from switch.commands.demo import demo_config, in_process_switch
from switch.config import Config
from switch.db.runtime import Database
from terminals.atm.balancing import balancing_report
from terminals.cli import SWITCH_CAPABILITIES
from terminals.scenarios.catalogue import (
    CaseResult,
    catalogue_fixture_text,
    describe_results,
    junit_xml,
    run_case,
    run_catalogue,
)
from terminals.scenarios.expect import check, parse_expectation
from terminals.scenarios.loader import bundled_scenarios, load_scenario
from tests.sim.chip_issuer import ChipIssuer, IssuerCard

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")

FIXTURE: dict[str, Any] = json.loads(catalogue_fixture_text())
ALL = bundled_scenarios()
STRIPE = [name for name in ALL if not load_scenario(name).requires]
CHIP = [name for name in ALL if "chip" in load_scenario(name).requires]


def test_the_catalogue_covers_the_issue_list() -> None:
    assert len(ALL) >= 20
    for needed in ("three_wrong_pins", "card_not_taken", "lost_card_retained",
                   "partial_dispense", "notes_not_taken", "paper_out", "host_timeout",
                   "host_late_reply", "host_disconnect", "deposit_rejected_notes",
                   "chip_withdrawal"):
        assert needed in ALL
    for name in ALL:
        scenario = load_scenario(name)
        assert scenario.expect is not None, name
    languages = {s.language for name in ALL for s in load_scenario(name).sessions}
    assert languages == {"en", "zh"}


@pytest.fixture
async def catalogue_switch(db: Database, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    config = demo_config(Config(), tmp_path / "switch")
    async with in_process_switch(config, db, FIXTURE) as (_app, address):
        yield address


@pytest.mark.parametrize("name", STRIPE)
async def test_stripe_scenario_against_the_real_switch(
    catalogue_switch: tuple[str, int], tmp_path: Path, name: str
) -> None:
    host, port = catalogue_switch
    case = await run_case(load_scenario(name), host=host, port=port, data_dir=tmp_path / "atm",
                          durable_journal=False)
    assert case.status == "passed", (case.mismatches, case.detail)


@pytest.mark.parametrize("name", CHIP)
async def test_chip_scenario_against_the_real_switch(
    catalogue_switch: tuple[str, int], tmp_path: Path, name: str
) -> None:
    """The switch checks chip cryptograms (spec 11): the chip scenarios run against it too,
    through the simulated card reader's chip over a pty, with their expected outcomes."""
    host, port = catalogue_switch
    case = await run_case(load_scenario(name), host=host, port=port, data_dir=tmp_path / "atm",
                          durable_journal=False)
    assert case.status == "passed", (case.mismatches, case.detail)


def catalogue_issuer() -> ChipIssuer:
    """The in-test issuer holding the catalogue fixture's cards, PINs, balances and chips."""
    accounts = {a["id"]: a["balance"] for a in FIXTURE["accounts"]}
    cards = {}
    for card in FIXTURE["cards"]:
        emv = card.get("emv") or {}
        cards[card["pan"]] = IssuerCard(
            card["pan"], card["pin"], accounts[card["account"]],
            bytes.fromhex(emv["imk_ac"]) if emv else None, emv.get("psn", "01"))
    return ChipIssuer(bytes.fromhex(FIXTURE["terminals"][0]["tmk"]), cards)


@pytest.mark.parametrize("name", CHIP)
async def test_chip_scenario_against_the_in_test_issuer(tmp_path: Path, name: str) -> None:
    issuer = catalogue_issuer()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(issuer.serve)
        case = await run_case(load_scenario(name), host="127.0.0.1", port=port,
                              data_dir=tmp_path / "atm", durable_journal=False)
        nursery.cancel_scope.cancel()
    assert case.status == "passed", (case.mismatches, case.detail)


async def test_all_writes_junit_and_a_wrong_expectation_fails(
    catalogue_switch: tuple[str, int], tmp_path: Path
) -> None:
    """Two scenarios through run_catalogue (one chip: skipped without the capability), then the
    same balance result judged against a deliberately wrong expectation."""
    host, port = catalogue_switch
    results = await run_catalogue(["balance_stripe", "chip_withdrawal"], host=host, port=port,
                                  data_dir=tmp_path / "all", durable_journal=False)
    assert [(r.name, r.status) for r in results] == [
        ("balance_stripe", "passed"), ("chip_withdrawal", "skipped")]
    wrong = parse_expectation({"response_codes": ["00", "51"], "ledger_change": -100})
    verdict = check(wrong, results[0].result or {})
    assert verdict.mismatches == [
        "response codes: expected ['00', '51'], got ['00', '00']",
        "ledger change (ledger balance): expected -100, got 0",
        "ledger change (available balance): expected -100, got 0",
    ]
    failed = CaseResult("wrong", "failed", 1.5, verdict.mismatches)
    root = ET.fromstring(junit_xml([*results, failed]))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["chip_withdrawal"].find("skipped") is not None
    assert cases["wrong"].find("failure").get("message").startswith("response codes")


async def atm_sim(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([sys.executable, "-m", "terminals.cli", *args],
                                  capture_stdout=True, capture_stderr=True, check=False)


async def test_cli_run_exits_non_zero_on_a_mismatch_and_all_writes_junit(
    catalogue_switch: tuple[str, int], tmp_path: Path
) -> None:
    """`atm-sim run FILE` against a switch that answers differently from the file's [expect]
    exits 1 naming the mismatch; `atm-sim run --all --junit` writes XML a CI server reads."""
    host, port = catalogue_switch
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(load_text("balance_stripe").replace(
        'response_codes = ["00", "00"]', 'response_codes = ["00", "51"]'), encoding="utf-8")
    # One ATM data directory for the three runs: its STAN keeps counting, as a real terminal's
    # does (a fresh directory restarts at 000001 and, within the same second, would repeat a
    # key of the previous run with other content: 94, spec 5.5).
    where = ["--host", host, "--port", str(port), "--data-dir", str(tmp_path / "atm")]
    ran = await atm_sim("run", str(wrong), *where)
    assert ran.returncode == 1, ran.stderr.decode()[-2000:]
    assert b"response codes: expected ['00', '51'], got ['00', '00']" in ran.stderr
    good = await atm_sim("run", "balance_stripe", *where)
    assert good.returncode == 0, good.stderr.decode()[-2000:]
    junit = tmp_path / "catalogue.xml"
    suite = await atm_sim("run", "--all", "--only", "lost_card_retained", "--only",
                          "chip_read_by_stripe", "--junit", str(junit), *where)
    assert suite.returncode == 0, suite.stdout.decode()[-2000:]
    root = ET.parse(junit).getroot()
    # Chip scenarios run by default: the switch checks chip cryptograms.
    assert [(c.get("name"), [e.tag for e in c]) for c in root.iter("testcase")] == [
        ("lost_card_retained", []), ("chip_read_by_stripe", [])]
    without = await atm_sim("run", "--all", "--only", "chip_read_by_stripe", "--without", "chip",
                            "--junit", str(junit), *where)
    assert without.returncode == 0, without.stdout.decode()[-2000:]
    assert [e.tag for c in ET.parse(junit).getroot().iter("testcase") for e in c] == ["skipped"]


def load_text(name: str) -> str:
    from importlib import resources

    return (resources.files("terminals.scenarios") / "examples" / f"{name}.toml").read_text(
        encoding="utf-8")


async def test_the_whole_catalogue_runs_twice_against_one_switch(
    db: Database, tmp_path: Path
) -> None:
    """`atm-sim run --all` as QA runs it, twice: every scenario, chip included (the default),
    one after another against one switch, the fixture re-loaded between the runs as
    docs/simulator.md says, on the same terminal data directory. The second run used to fail
    five scenarios on cassette counters kept from the first (cash paid out doubled); each
    scenario now starts with its cassettes filled, so each run counts its own cash."""
    from switch.authorization.fixtures import load_fixtures
    from switch.authorization.wiring import open_hsm_for, open_ledger

    config = demo_config(Config(), tmp_path / "switch")
    async with in_process_switch(config, db, FIXTURE) as (_app, (host, port)):
        for run in (1, 2):
            if run == 2:
                await load_fixtures(db, open_hsm_for(config, test_mode=True), open_ledger(db),
                                    FIXTURE)
            results = await run_catalogue(None, host=host, port=port,
                                          data_dir=tmp_path / "all",
                                          capabilities=SWITCH_CAPABILITIES,
                                          durable_journal=False)
            failed = {r.name: (r.mismatches, r.detail) for r in results if r.status != "passed"}
            assert (run, failed) == (run, {}) and len(results) == len(ALL)
    report = balancing_report(tmp_path / "all" / "withdrawal_stripe")
    assert (report.cash_paid_out, report.host_confirmed, report.balanced) == (
        80000, 80000, True)


def test_a_failed_run_says_to_reload_the_fixture() -> None:
    """A failure usually means a switch not re-loaded since the last run: the text says so."""
    text = describe_results([CaseResult("three_wrong_pins", "failed", 0.1, ["response codes"])])
    assert "atm-switch fixtures load catalogue.json" in text
