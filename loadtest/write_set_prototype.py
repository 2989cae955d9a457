"""What issue 21's minimal write set would cost PostgreSQL, measured before it is built.

``python -m loadtest.write_set_prototype --json`` starts an embedded PostgreSQL (pgserver),
creates the prototype's own tables and two batch functions (``write_set_prototype.sql``: one
row per message that is its claim, decision and ledger transfer; a 0200's row is the pending
transfer, its 0220 posts it), and measures backend CPU per approved withdrawal and its 0220 the
way ``loadtest.engine_bench`` measures the engine: same batch sizes, same clock-tick reading of
``/proc/<pid>/stat``, one connection, ``items`` messages per size.

It is a yardstick, not an engine: it keeps the checks whose statements any engine runs
(repeats, card and account status, card version, daily limit, available balance, locks in
account order, compare-and-set on the original's state, a conflict under a key raising 40001)
and leaves out what docs/performance.md lists. After the run it checks its own ledger: every
withdrawal completed, nothing held, and the accounts debited exactly what was dispensed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from typing import Any

import asyncpg

from loadtest.procstat import cpu_seconds

withdrawal_minor = 10_000
opening_minor = 10**12
FINANCIAL = "SELECT * FROM p_financial($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
ADVICE = "SELECT * FROM p_advice($1, $2, $3, $4, $5, $6, $7, $8)"


class PrototypeLedgerWrong(RuntimeError):
    """The prototype's ledger does not add up: its figures would measure a broken design."""


async def measure(connection: Any, pid: int, cards: int, size: int, items: int,
                  first_stan: int) -> dict[str, float]:
    now = dt.datetime.now(dt.UTC)
    tdt = now.strftime("%m%d%H%M%S")
    cpu = {"0200": 0.0, "0220": 0.0}
    stan = first_stan
    batches = max(1, items // size)
    for number in range(batches):
        terminal = f"P{size:03d}{number % 1000:03d}"
        stans = [f"{(stan + k) % 1_000_000:06d}" for k in range(size)]
        advice_stans = [f"{(stan + size + k) % 1_000_000:06d}" for k in range(size)]
        stan += 2 * size
        chosen = [1 + (number * size + k) % cards for k in range(size)]
        calls = (
            ("0200", FINANCIAL, [[terminal] * size, stans, [tdt] * size, ["123"] * size,
                                 [f"w{s}" for s in stans], chosen, [1] * size,
                                 [withdrawal_minor] * size, [now.date()] * size,
                                 [now + dt.timedelta(minutes=10)] * size]),
            ("0220", ADVICE, [[terminal] * size, advice_stans, [tdt] * size, ["123"] * size,
                              [f"c{s}" for s in advice_stans], stans, [tdt] * size,
                              [withdrawal_minor] * size]),
        )
        for kind, query, arguments in calls:
            before = cpu_seconds(pid)
            rows = await connection.fetch(query, *arguments)
            cpu[kind] += cpu_seconds(pid) - before
            if {row["code"] for row in rows} != {"00"}:
                raise PrototypeLedgerWrong(f"prototype {kind} not approved")
    done = batches * size
    return {
        "batch_size": size,
        "messages": done,
        "pg_cpu_us_per_0200": round(cpu["0200"] / done * 1e6, 1),
        "pg_cpu_us_per_0220": round(cpu["0220"] / done * 1e6, 1),
        "pg_cpu_us_per_withdrawal": round((cpu["0200"] + cpu["0220"]) / done * 1e6, 1),
    }


async def check_ledger(connection: Any, cards: int, withdrawals: int) -> None:
    open_rows = await connection.fetchval(
        "SELECT count(*) FROM p_messages WHERE message_class = '0200' AND state <> 'completed'")
    held, balance = await connection.fetchrow(
        "SELECT sum(held), sum(balance) FROM p_accounts WHERE account_id <> 'ATM-CASH'")
    posted = await connection.fetchval("SELECT sum(posted) FROM p_messages")
    expected = withdrawals * withdrawal_minor
    if open_rows or held or posted != expected or balance != cards * opening_minor - expected:
        raise PrototypeLedgerWrong(
            f"open {open_rows}, held {held}, posted {posted}, balance {balance}; expected"
            f" {expected} dispensed")


async def benchmark(dsn: str, sizes: Sequence[int], items: int, cards: int) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            resources.files("loadtest").joinpath("write_set_prototype.sql").read_text())
        await connection.execute(
            "INSERT INTO p_accounts SELECT 'A' || g, $2 FROM generate_series(1, $1) g", cards,
            opening_minor)
        await connection.execute("INSERT INTO p_accounts VALUES ('ATM-CASH', 0)")
        await connection.execute(
            "INSERT INTO p_cards (card_id, account_id, daily_max)"
            " SELECT g, 'A' || g, 100000000000 FROM generate_series(1, $1) g", cards)
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        warm_up = await measure(connection, pid, cards, 8, 64, first_stan=900_000)
        results = [await measure(connection, pid, cards, size, items, first_stan=n * 100_000 + 1)
                   for n, size in enumerate(sizes)]
        await check_ledger(connection, cards,
                           int(warm_up["messages"] + sum(r["messages"] for r in results)))
        return {"cards": cards, "items_per_size": items, "sizes": results}
    finally:
        await connection.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.write_set_prototype",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--items", type=int, default=2_048)
    parser.add_argument("--cards", type=int, default=1_024)
    parser.add_argument("--dsn", help="an empty database to create the prototype's tables in")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.items < 1 or args.cards < max(args.sizes):
        parser.error("sizes and items must be positive, and cards at least the largest size")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def run(dsn: str) -> dict[str, Any]:
        return asyncio.run(benchmark(dsn, args.sizes, args.items, args.cards))

    if args.dsn:
        report = run(args.dsn)
    else:
        from pgserver.postgres_server import get_server

        with tempfile.TemporaryDirectory(prefix="atm-write-set-") as root:
            server = get_server(root, cleanup_mode="delete")
            try:
                report = run(str(server.get_uri()))
            finally:
                server.cleanup()
    if args.json:
        print(json.dumps(report))
    else:
        for row in report["sizes"]:
            print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
