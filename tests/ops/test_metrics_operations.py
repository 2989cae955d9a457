"""The operations metrics of issue 12: typed helpers keep label sets bounded, the
database-backed gauges come from a snapshot over the real PostgreSQL ledger (not from a query
per scrape), and the whole exposition passes ``promtool check metrics``."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry

from ledger_adapter.postgres import PostgresLedger
from ops.metrics import (
    STAGES,
    SwitchMetrics,
    terminal_group,
    terminal_groups_max,
)
from ops.metrics_snapshot import DatabaseSnapshot
from switch.db.runtime import Database


def sample(metrics: SwitchMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_stage_and_batch_helpers_record_under_bounded_labels() -> None:
    metrics = SwitchMetrics()
    metrics.observe_stage("hsm_pin", 0.002)
    metrics.observe_stage("ledger_commit", 0.010)
    metrics.observe_batch("0200", 37)
    metrics.observe_batch("9999", 3)  # an unknown class collapses to "other"
    assert sample(metrics, "atm_stage_duration_seconds_count", stage="hsm_pin") == 1
    assert sample(metrics, "atm_stage_duration_seconds_sum", stage="ledger_commit") == 0.010
    assert sample(metrics, "atm_ledger_batch_size_bucket", message_class="0200", le="64.0") == 1
    assert sample(metrics, "atm_ledger_batch_size_bucket", message_class="0200", le="32.0") == 0
    assert sample(metrics, "atm_ledger_batch_size_count", message_class="other") == 1
    with pytest.raises(ValueError, match="unknown stage"):
        metrics.observe_stage("sleeping", 1.0)
    # Every stage exists from the start, so rate() over it is defined before the first request.
    for stage in STAGES:
        assert sample(metrics, "atm_stage_duration_seconds_count", stage=stage) is not None


def test_terminal_groups_and_reasons_are_bounded() -> None:
    groups = {"ATMBJ": "beijing", "ATMBJ9": "beijing-airport", "ATMSH": "shanghai"}
    assert terminal_group("ATMBJ001", groups) == "beijing"
    assert terminal_group("ATMBJ901", groups) == "beijing-airport"  # longest prefix wins
    assert terminal_group("XX000001", groups) == "default"
    metrics = SwitchMetrics()
    for number in range(terminal_groups_max + 10):
        metrics.mac_failure(f"group{number}")
    assert sample(metrics, "atm_mac_failures_total", terminal_group="other") == 11
    metrics.key_exchange("beijing", ok=False)
    assert sample(metrics, "atm_key_exchanges_total", terminal_group="other",
                  result="failed") == 1  # the cap was already reached above
    metrics.reversal("32")
    metrics.reversal("99")
    metrics.reversal(None)
    assert sample(metrics, "atm_reversals_total", reason="32") == 1
    assert sample(metrics, "atm_reversals_total", reason="other") == 2


def test_pool_link_and_certificate_gauges() -> None:
    metrics = SwitchMetrics()
    state = {"in_use": 3}
    metrics.set_pool_stats(lambda: (state["in_use"], 5, 16))
    assert sample(metrics, "atm_db_pool_connections", state="in_use") == 3
    state["in_use"] = 7  # read at scrape time
    assert sample(metrics, "atm_db_pool_connections", state="in_use") == 7
    assert sample(metrics, "atm_db_pool_connections", state="max") == 16
    metrics.set_link_state("unionpay", up=False)
    assert sample(metrics, "atm_network_link_up", network="unionpay") == 0
    metrics.set_tls_certificate_expiry(1_900_000_000)
    assert sample(metrics, "atm_tls_certificate_expiry_timestamp_seconds") == 1_900_000_000


async def test_snapshot_reads_open_holds_from_the_ledger(db: Database) -> None:
    """Two withdrawal holds and one deposit hold open: the gauges show them after a refresh,
    and only after it (a scrape alone runs no query)."""
    ledger = PostgresLedger(db)
    await ledger.open_account("M1", name="m", currency="156", balance=1_000_000)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    for key, amount, direction, action in (("a", 30_000, "debit", "capture"),
                                           ("b", 20_000, "debit", "capture"),
                                           ("c", 70_000, "credit", "release")):
        await ledger.hold(key, account_id="M1", amount=amount, direction=direction,
                          expires_at=expires, expiry_action=action)
    metrics = SwitchMetrics()
    snapshot = DatabaseSnapshot(metrics.registry)
    assert sample(metrics, "atm_holds_open", type="withdrawal") == 0
    await snapshot.refresh(db)
    assert sample(metrics, "atm_holds_open", type="withdrawal") == 2
    assert sample(metrics, "atm_holds_open_amount", type="withdrawal") == 50_000
    assert sample(metrics, "atm_holds_open", type="deposit") == 1
    assert sample(metrics, "atm_holds_open_amount", type="deposit") == 70_000
    assert sample(metrics, "atm_presumed_dispensed_total") == 0
    # At expiry the sweeper captures both withdrawals (presumed dispensed), releases the deposit.
    await ledger.sweep_expired(expires + dt.timedelta(seconds=1))
    await snapshot.refresh(db)
    assert sample(metrics, "atm_holds_open", type="withdrawal") == 0
    assert sample(metrics, "atm_presumed_dispensed_total") == 2
    assert sample(metrics, "atm_deposits_expired_total") == 1
    age = sample(metrics, "atm_metrics_snapshot_age_seconds")
    assert age is not None and 0 <= age < 60


def test_promtool_accepts_the_operations_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI: .ci/run must apt-get install prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does)")
    metrics = SwitchMetrics(CollectorRegistry(auto_describe=True))
    DatabaseSnapshot(metrics.registry)
    metrics.observe_stage("answer", 0.001)
    metrics.observe_batch("0200", 4)
    metrics.set_pool_stats(lambda: (1, 1, 2))
    metrics.set_link_state("unionpay", up=True)
    metrics.set_tls_certificate_expiry(1_900_000_000)
    result = subprocess.run([promtool, "check", "metrics"], input=metrics.exposition(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
