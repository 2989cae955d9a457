"""Crash tests with the switch as a child process (``db init``, ``fixtures load``, ``serve``):

* SIGKILL right after an approved 0200; after a restart the repeat gets the same answer and a
  0420 releases the hold;
* PostgreSQL killed (immediate stop) under load and started again: meanwhile the switch answers
  ``91``, afterwards it approves again by itself, and the ledger matches what the terminals
  were told, with its invariants intact.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import trio

from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import open_database
from terminals.hostlink.financial import completion_advice
from tests.authorization.harness import CARD_MAIN, CARD_SECOND, FIXTURE, connect_atm
from tests.e2e.processes import prepare, private_postgres, switch_process

pytestmark = pytest.mark.slow


async def balances(dsn: str, account: str) -> tuple[int, int, int]:
    async with open_database(dsn, pool_size_min=1, pool_size_max=2) as db:
        value = await PostgresLedger(db).balance(account)
        return value.ledger, value.available, value.held


async def test_sigkill_after_approval_then_repeat_and_reverse(pg_dsn: str, tmp_path: Path
                                                              ) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with trio.open_nursery() as nursery:
        async with switch_process(data_dir, pg_dsn) as switch:
            atm = await connect_atm(nursery, switch.address, "ATM001")
            approved, original = await atm.withdraw(CARD_MAIN, 100_000)
            assert approved.fields["39"] == "00"
            switch.kill()
            await switch.process.wait()
        assert await balances(pg_dsn, "ACC1") == (1_370_000, 1_270_000, 100_000)
        async with switch_process(data_dir, pg_dsn) as switch:
            # Keys are per terminal and persisted: no new key exchange is needed.
            again = await connect_atm(nursery, switch.address, "ATM001", key_exchange=False,
                                      keys=atm.keys, first_stan=100)
            repeat = await again.send("0200", original)
            assert dict(repeat.fields) == dict(approved.fields)
            reversal, _ = await again.reverse(original, reason="68")
            assert reversal.fields["39"] == "00"
            assert await balances(pg_dsn, "ACC1") == (1_370_000, 1_370_000, 0)
        nursery.cancel_scope.cancel()


async def test_postgres_killed_under_load(tmp_path: Path) -> None:
    with private_postgres() as postgres:
        data_dir = tmp_path / "data"
        await trio.to_thread.run_sync(prepare, data_dir, postgres.dsn, FIXTURE)
        outcomes: dict[str, list[str]] = {"before": [], "down": [], "after": []}
        phase = ["before"]
        captured: list[int] = []
        approved: list[tuple[Any, dict[str, str]]] = []
        async with trio.open_nursery() as nursery:
            async with switch_process(data_dir, postgres.dsn, deadline_s=2.0) as switch:
                atms = [await connect_atm(nursery, switch.address, t, first_stan=1)
                        for t in ("ATM001", "ATM002")]
                cards = {"ATM001": (CARD_MAIN, "1234"), "ATM002": (CARD_SECOND, "4321")}
                stop = trio.Event()

                async def terminal(atm: Any) -> None:
                    card, pin = cards[atm.identity.terminal_id]
                    while not stop.is_set():
                        current = phase[0]
                        response, fields = await atm.withdraw(card, 10_000, pin=pin)
                        code = response.fields["39"]
                        outcomes[current].append(code)
                        if code == "00":
                            approved.append((atm, fields))
                        await trio.sleep(0.05)

                for atm in atms:
                    nursery.start_soon(terminal, atm)
                await trio.sleep(1.5)
                phase[0] = "down"
                await trio.to_thread.run_sync(postgres.stop_immediately)
                await trio.sleep(3.0)
                await trio.to_thread.run_sync(postgres.start)
                phase[0] = "after"
                with trio.fail_after(40):
                    while outcomes["after"].count("00") < 3:
                        await trio.sleep(0.2)
                stop.set()
                await trio.sleep(2.5)
                # Complete every approved withdrawal (advices repeated until recorded).
                for atm, fields in approved:
                    await settle(atm, fields, captured)
            nursery.cancel_scope.cancel()
        assert outcomes["before"].count("00") >= 3, outcomes
        assert "91" in outcomes["down"], outcomes
        assert set(outcomes["down"]) <= {"00", "91"}, outcomes
        async with open_database(postgres.dsn, pool_size_min=1, pool_size_max=2) as db:
            ledger = PostgresLedger(db)
            await ledger.check_invariants()
            total = 0
            for account in ("ACC1", "ACC2"):
                value = await ledger.balance(account)
                assert value.held == 0
                total += value.ledger
        assert total == 1_370_000 + 500_000 - sum(captured)


async def settle(atm: Any, original: dict[str, str], captured: list[int]) -> None:
    """Complete an approved withdrawal, repeating the advice (0221) until it is recorded."""
    advice = completion_advice(original, stan=atm.next_stan(), now=dt.datetime.now(dt.UTC))
    mti = "0220"
    with trio.fail_after(60):
        while True:
            response = await atm.send(mti, advice)
            if response.fields["39"] == "00":
                captured.append(int(original["4"]))
                return
            mti = "0221"
            await trio.sleep(0.3)
