"""``python -m loadtest.failover``: the failover drill (DESIGN.md 4, issues 14 and 19).

Starts PostgreSQL under one of two managers (loadtest/failover_managers.py): ``standby``, a
primary with a synchronous streaming standby (switch/db/replication.py) that the drill
promotes itself, or ``patroni``, three Patroni members on one etcd (deploy/patroni/) that
elect and promote on their own. Then two switch nodes (``atm-switch serve``) on one
multi-host DSN, and ATMs (loadtest/drill.py) doing withdrawals with completions and some
reversals spread over both nodes. Under load: SIGKILL the primary's PostgreSQL (postmaster
and backends), let the new primary take over, keep going; later SIGKILL one switch node (its
terminals reconnect to the other). At the end every terminal settles what it owes and the
terminals' records are audited against the ledger.

Prints one JSON object with ``--json``: ``acknowledged`` (0200s answered 00),
``lost_acknowledged`` (of those, missing from the ledger), ``duplicated`` (money moved
twice, or moved although the terminal reversed), ``held_at_end`` (holds still open),
``downtime_s`` (primary killed -> first approval of a request sent after the kill),
``nodes``, ``promoted``, ``manager``, ``promote_s`` (kill -> new primary writable; Patroni:
also ``leader_elected_s``, ``old_primary_rejoined``, ``old_primary_role``, ``rejoin_s``,
``old_primary_rewound``); plus detail. Exit status 1 when a money rule is broken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import trio

from loadtest.drill import DrillAtm, audit
from loadtest.failover_managers import Manager, PatroniManager, StandbyPair
from loadtest.population import account_balance_minor, fixtures, terminal
from switch.db.runtime import open_database

NODE_STARTUP_TIMEOUT_S = 90.0


def run_cli(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "switch.cli", *argv], capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"atm-switch {' '.join(argv)} failed: {done.stderr[-2000:]}")
    return done.stdout


class SwitchNode:
    """One ``atm-switch serve`` child process."""

    def __init__(self, process: trio.Process, address: tuple[str, int]) -> None:
        self.process = process
        self.address = address

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)


@contextlib.asynccontextmanager
async def switch_node(data_dir: Path, dsn: str, log: Path, *,
                      deadline_s: float = 3.0) -> AsyncIterator[SwitchNode]:
    env = dict(os.environ, ATM_SWITCH_SERVER_REQUEST_DEADLINE_S=str(deadline_s),
               ATM_SWITCH_DATABASE_CALL_TIMEOUT_S="2", ATM_SWITCH_SERVER_SHUTDOWN_GRACE_S="3")
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(data_dir), "--dsn", dsn,
         "--port", "0", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=log.open("ab"), env=env,
    )
    try:
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(NODE_STARTUP_TIMEOUT_S):
            while b"\n" not in buffer:
                chunk = await process.stdout.receive_some(1024)
                if not chunk:
                    raise RuntimeError(f"atm-switch serve exited before listening (see {log})")
                buffer += chunk
        host, port = buffer.split(b"\n", 1)[0].decode().split(" ", 1)[1].rsplit(":", 1)
        yield SwitchNode(process, (host, int(port)))
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(10):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


def make_manager(args: argparse.Namespace, root: Path) -> Manager:
    if args.manager == "patroni":
        return PatroniManager(root)
    return StandbyPair(root, args.promote_after_s)


async def drill(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    manager = make_manager(args, root)
    try:
        await trio.to_thread.run_sync(manager.start)
        return await _with_cluster(args, root, manager)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(manager.stop)


async def _with_cluster(args: argparse.Namespace, root: Path, manager: Manager
                        ) -> dict[str, Any]:
    dsn = manager.dsn()
    data_dir = root / "switch"
    data_dir.mkdir()
    fixture_path = root / "fixture.json"
    fixture_path.write_text(json.dumps(fixtures(args.atms), ensure_ascii=False), "utf-8")
    await trio.to_thread.run_sync(lambda: run_cli("db", "init", "--mode", "test",
                                                  "--data-dir", str(data_dir), "--dsn", dsn))
    await trio.to_thread.run_sync(lambda: run_cli("fixtures", "load", str(fixture_path),
                                                  "--data-dir", str(data_dir), "--dsn", dsn))
    events: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(
            switch_node(data_dir, dsn, root / f"node{i}.log")) for i in range(args.nodes)]
        alive = list(nodes)
        atms = [DrillAtm(terminal(i, args.atms), lambda: [n.address for n in alive], seed=i)
                for i in range(args.atms)]
        stop = trio.Event()
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for atm in atms:
                nursery.start_soon(atm.run, stop)
            await trio.sleep_until(started + args.kill_primary_at_s)
            await trio.to_thread.run_sync(manager.aim)  # e.g. ask Patroni who leads
            killed = await trio.to_thread.run_sync(manager.fail_primary)
            # The outage starts at the SIGKILL itself, not when this task asked for it.
            events["primary_killed"] = trio.current_time() - (time.perf_counter() - killed)
            recovered = await trio.to_thread.run_sync(manager.recover)
            events["promoted"] = trio.current_time()
            await trio.sleep_until(max(started + args.kill_node_at_s, trio.current_time()))
            victim = nodes[-1]
            alive.remove(victim)
            victim.kill()
            events["node_killed"] = trio.current_time()
            await trio.sleep_until(max(started + args.duration_s, trio.current_time()))
            stop.set()
        async with open_database(dsn, pool_size_min=1, pool_size_max=2) as db:
            result = await audit(db, atms, initial_balance=account_balance_minor,
                                 kill_at=events["primary_killed"])
            from ledger_adapter.postgres import PostgresLedger

            try:
                await PostgresLedger(db).check_invariants()
                result["ledger_invariants"] = "ok"
            except Exception as exc:  # reported, and it fails the drill
                result["ledger_invariants"] = f"broken: {exc}"
    after_node_kill = [r for atm in atms for r in atm.records
                       if r.acknowledged and r.sent_at >= events["node_killed"]]
    settled = await trio.to_thread.run_sync(manager.finish)
    result.update(
        recovered,
        **settled,
        manager=manager.name,
        nodes=args.nodes,
        nodes_killed=1,
        promoted=True,
        atms=args.atms,
        duration_s=args.duration_s,
        approved_after_node_kill=len(after_node_kill),
    )
    return result


def money_rules_hold(result: dict[str, Any]) -> bool:
    """The money rules, and for Patroni its promise: the old primary back as a replica."""
    return bool(result["lost_acknowledged"] == 0 and result["duplicated"] == 0
            and result["held_at_end"] == 0 and result["money_exact"]
            and result["unsettled"] == 0 and result["ledger_invariants"] == "ok"
            and result["new_primary"] and result.get("old_primary_rejoined", True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest.failover", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--manager", choices=("standby", "patroni"), default="standby",
                        help="standby: primary + sync standby, the drill promotes; patroni: "
                             "three Patroni members on etcd elect and promote (default standby)")
    parser.add_argument("--atms", type=int, default=8, help="terminals (default 8)")
    parser.add_argument("--nodes", type=int, default=2, help="switch nodes (default 2)")
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--kill-primary-at-s", type=float, default=8.0)
    parser.add_argument("--promote-after-s", type=float, default=1.0,
                        help="standby: delay between the primary's death and the promotion")
    parser.add_argument("--kill-node-at-s", type=float, default=18.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.kill_primary_at_s + args.promote_after_s < args.kill_node_at_s < args.duration_s:
        raise SystemExit("need kill-primary-at + promote-after < kill-node-at < duration")
    if args.nodes < 2:
        raise SystemExit("--nodes must be at least 2 (one is killed)")
    root = Path(tempfile.mkdtemp(prefix="atm-failover-"))
    try:
        result = trio.run(drill, args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in sorted(result.items()):
            print(f"{key:28} {value}")
    return 0 if money_rules_hold(result) else 1


if __name__ == "__main__":
    sys.exit(main())
