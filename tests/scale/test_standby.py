"""PostgreSQL HA with real replication: ``atm-switch db standby create|status|promote`` build a
primary with a synchronous standby; a switch on the multi-host DSN keeps serving after the
primary is SIGKILLed and the standby promoted, and an approval given before the failover is
on the new primary (synchronous commit: acknowledged means on both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from switch.db import replication
from tests.authorization.harness import CARD_MAIN, FIXTURE, connect_atm
from tests.e2e.processes import prepare, run_cli
from tests.e2e.test_crash import balances
from tests.scale.processes import cluster_root, free_port, serve_process

pytestmark = pytest.mark.slow


async def test_standby_cli_and_switch_follows_the_promoted_primary(tmp_path: Path) -> None:
    with cluster_root() as root:
        primary, standby = root / "primary", root / "standby"
        created = json.loads(await trio.to_thread.run_sync(lambda: run_cli(
            "db", "standby", "create", "--primary-pgdata", str(primary),
            "--primary-port", str(free_port()), "--standby-pgdata", str(standby),
            "--standby-port", str(free_port()), "--json")))
        dsn = created["dsn"]
        assert dsn.endswith("?target_session_attrs=read-write") and dsn.count(",") == 1
        status = json.loads(await trio.to_thread.run_sync(lambda: run_cli(
            "db", "standby", "status", "--pgdata", str(primary), "--pgdata", str(standby),
            "--json")))["nodes"]
        assert [s["role"] for s in status] == ["primary", "standby"]
        assert status[0]["standbys"][0]["sync_state"] == "sync"
        assert status[0]["standbys"][0]["application_name"] == "standby1"

        data_dir = tmp_path / "data"
        await trio.to_thread.run_sync(prepare, data_dir, dsn, FIXTURE)
        async with trio.open_nursery() as nursery, serve_process(data_dir, dsn) as serve:
            atm = await connect_atm(nursery, serve.address, "ATM001")
            before, _ = await atm.withdraw(CARD_MAIN, 100_000)
            assert before.fields["39"] == "00"

            await trio.to_thread.run_sync(replication.kill, replication.Node(primary, 0))
            down, _ = await atm.withdraw(CARD_MAIN, 10_000)
            assert down.fields["39"] == "91"  # no writable primary: unavailable, not an error
            promoted = json.loads(await trio.to_thread.run_sync(lambda: run_cli(
                "db", "standby", "promote", "--standby-pgdata", str(standby), "--json")))
            assert promoted["role"] == "primary"

            codes = []
            with trio.fail_after(30):
                while not codes or codes[-1] != "00":
                    response, _ = await atm.withdraw(CARD_MAIN, 10_000)
                    codes.append(response.fields["39"])
                    await trio.sleep(0.2)
            assert set(codes) <= {"00", "91"}, codes
            nursery.cancel_scope.cancel()
        # The pre-failover hold survived (it was acknowledged), plus the one after.
        ledger, available, held = await balances(dsn, "ACC1")
        assert (ledger, held) == (1_370_000, 110_000)
        assert available == 1_370_000 - 110_000
