"""Ledger benchmark: holds per second through the ``Ledger`` API, group commit vs one by one.

``python -m loadtest.ledger --json`` starts an embedded PostgreSQL (pgserver) in a temporary
directory with its defaults (fsync on, synchronous_commit on), then drives ``concurrency``
callers placing debit holds for a fixed time, once with one transaction per hold
(``PostgresLedger(batching=False)``) and once with group commit, on the same pool size.
Both modes call the same PL/pgSQL function, so every hold does the same SQL work:
idempotency record, daily-limit counter, balance row, hold row. ``hot_share`` of the holds
go to one account (a busy corporate account), the rest spread over ``accounts``.

The JSON printed has ``batched_holds_per_s``, ``unbatched_holds_per_s``, ``ratio`` and the
p50/p99 latency of a hold in each mode, plus the settings the figures depend on.

A third mode measures the ledger's own ceiling: the same PL/pgSQL batch function
(``ledger_hold_batch``) called directly from one connection with pre-built arrays of
``batch_size_max`` holds, back to back (``sql_holds_per_s``); ``api_over_sql`` is the batched
API's holds/s over that figure (DESIGN.md 5: at least 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import trio

from ledger_adapter import DailyLimit
from ledger_adapter import requests as ledger_requests
from ledger_adapter.postgres import (
    PostgresLedger,
    batch_size_max_default,
    batches_in_flight_max_default,
)
from ledger_adapter.postgres_batches import HOLD_QUERY
from switch.db.migrate import migrate
from switch.db.runtime import Database, open_database

CURRENCY = "156"
HOT_ACCOUNT = "HOT-CORP-0001"
# Every hold is 100.00; balances are large enough that none is declined.
hold_amount_minor = 10_000
opening_balance_minor = 10**15
daily_limit_minor = 10**14


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def open_accounts(db: Database, accounts: int) -> list[str]:
    ledger = PostgresLedger(db)
    ids = [f"ACC{n:06d}" for n in range(accounts)]
    for account_id in [HOT_ACCOUNT, *ids]:
        await ledger.open_account(
            account_id, name=account_id, currency=CURRENCY, balance=opening_balance_minor
        )
    return ids


async def run_mode(
    db: Database, *, batching: bool, concurrency: int, duration_s: float, hot_share: float,
    accounts: list[str], seed: int, batches_in_flight: int, round_: int,
) -> dict[str, Any]:  # fmt: skip
    """Closed loop: ``concurrency`` callers place holds back to back for ``duration_s``."""
    ledger = PostgresLedger(db, batching=batching, batches_in_flight_max=batches_in_flight)
    mode = f"{'batched' if batching else 'unbatched'}-{round_}"
    latencies: list[float] = []
    hot = 0
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    day = dt.datetime.now(dt.UTC).date()
    deadline = trio.current_time() + duration_s

    async def caller(worker: int) -> None:
        nonlocal hot
        rng = random.Random((seed * 1_000 + round_) * 100_003 + worker)
        n = 0
        while trio.current_time() < deadline:
            account = HOT_ACCOUNT if rng.random() < hot_share else rng.choice(accounts)
            hot += account == HOT_ACCOUNT
            started = trio.current_time()
            result = await ledger.hold(
                f"{mode}-{worker}-{n}", account_id=account, amount=hold_amount_minor,
                direction="debit", expires_at=expires, expiry_action="capture",
                daily_limit=DailyLimit(f"card-{account}", day, amount_max=daily_limit_minor),
            )  # fmt: skip
            latencies.append(trio.current_time() - started)
            if not result.approved:
                raise RuntimeError(f"benchmark hold declined: {result.status}")
            n += 1

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for worker in range(concurrency):
            nursery.start_soon(caller, worker)
    return {
        "latencies": latencies,
        "elapsed_s": trio.current_time() - started,
        "hot": hot,
        "batches": ledger.holds.batches_sent,
        "items": ledger.holds.items_sent,
    }


async def run_sql_mode(
    db: Database, *, duration_s: float, hot_share: float, accounts: list[str], seed: int,
    round_: int, batch_size: int, **_: Any,
) -> dict[str, Any]:  # fmt: skip
    """``ledger_hold_batch`` called directly, one connection, pre-built arrays per batch."""
    rng = random.Random(seed * 7_919 + round_)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    day = dt.datetime.now(dt.UTC).date()
    per_account: dict[str, tuple[str, str, dt.date, int]] = {}
    for account in [HOT_ACCOUNT, *accounts]:
        limit = DailyLimit(f"card-{account}", day, amount_max=daily_limit_minor)
        fp = ledger_requests.hold_fingerprint(
            account, hold_amount_minor, "debit", "capture", limit, None
        )
        per_account[account] = (fp, limit.counter_id, day, daily_limit_minor)
    # Arrays built before the clock starts: only the keys change from batch to batch.
    chosen = [HOT_ACCOUNT if rng.random() < hot_share else rng.choice(accounts)
              for _ in range(batch_size)]
    static = [
        [per_account[a][0] for a in chosen], chosen, [None] * batch_size,
        [hold_amount_minor] * batch_size, ["debit"] * batch_size, [expires] * batch_size,
        ["capture"] * batch_size, [per_account[a][1] for a in chosen],
        [per_account[a][2] for a in chosen], [per_account[a][3] for a in chosen],
        [None] * batch_size, [None] * batch_size, [None] * batch_size,
    ]
    hot = sum(a == HOT_ACCOUNT for a in chosen)

    async def work(connection: Any) -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        batches = 0
        while loop.time() - started < duration_s:
            keys = [f"sql-{round_}-{batches}-{n}" for n in range(batch_size)]
            rows = await connection.fetch(HOLD_QUERY, keys, *static)
            if any(row["status"] != "approved" for row in rows):
                raise RuntimeError("benchmark hold declined")
            batches += 1
        return batches, loop.time() - started

    batches, elapsed = await db.run(work, timeout_s=duration_s + 60)
    return {"holds": batches * batch_size, "elapsed_s": elapsed, "batches": batches,
            "hot": hot * batches}


async def run_rounds(
    db: Database, *, batching: bool, rounds: list[dict[str, Any]]
) -> dict[str, Any]:
    """Sum the rounds of one mode into throughput, latency percentiles and hot share."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    elapsed = sum(r["elapsed_s"] for r in rounds)
    return {
        "holds": len(latencies),
        "holds_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "hot_share": round(sum(r["hot"] for r in rounds) / max(1, len(latencies)), 3),
        "mean_batch_size": round(
            sum(r["items"] for r in rounds) / max(1, sum(r["batches"] for r in rounds)), 1
        ),
    }


async def benchmark(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    async with open_database(dsn, pool_size_min=args.pool_size, pool_size_max=args.pool_size) as db:
        await migrate(db)
        fsync = await db.fetchval("SHOW fsync")
        synchronous_commit = await db.fetchval("SHOW synchronous_commit")
        accounts = await open_accounts(db, args.accounts)
        common = {
            "concurrency": args.concurrency, "duration_s": args.duration / args.rounds,
            "hot_share": args.hot_share, "accounts": accounts, "seed": args.seed,
            "batches_in_flight": args.batches_in_flight,
        }  # fmt: skip
        # Alternate the modes in short rounds so that load from other processes on the
        # machine falls on both alike.
        raw: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        sql_rounds: list[dict[str, Any]] = []
        for round_ in range(args.rounds):
            for batching in (False, True) if round_ % 2 == 0 else (True, False):
                raw[batching].append(await run_mode(db, batching=batching, round_=round_, **common))
            sql_rounds.append(await run_sql_mode(db, round_=round_, batch_size=args.sql_batch_size,
                                                 **common))
        sql_holds_per_s = round(
            sum(r["holds"] for r in sql_rounds) / sum(r["elapsed_s"] for r in sql_rounds), 1
        )
        unbatched = await run_rounds(db, batching=False, rounds=raw[False])
        batched = await run_rounds(db, batching=True, rounds=raw[True])
        await PostgresLedger(db).check_invariants()
    return {
        "batched_holds_per_s": batched["holds_per_s"],
        "unbatched_holds_per_s": unbatched["holds_per_s"],
        "ratio": round(batched["holds_per_s"] / max(unbatched["holds_per_s"], 1e-9), 2),
        "sql_holds_per_s": sql_holds_per_s,
        "api_over_sql": round(batched["holds_per_s"] / max(sql_holds_per_s, 1e-9), 3),
        "sql_batch_size": args.sql_batch_size,
        "concurrency": args.concurrency,
        "pool_size": args.pool_size,
        "batches_in_flight_max": args.batches_in_flight,
        "fsync": fsync,
        "synchronous_commit": synchronous_commit,
        "hot_account_share": min(batched["hot_share"], unbatched["hot_share"]),
        "batched_p50_ms": batched["p50_ms"],
        "batched_p99_ms": batched["p99_ms"],
        "unbatched_p50_ms": unbatched["p50_ms"],
        "unbatched_p99_ms": unbatched["p99_ms"],
        "batched_mean_batch_size": batched["mean_batch_size"],
        "batched_holds": batched["holds"],
        "unbatched_holds": unbatched["holds"],
        "duration_s_per_mode": args.duration,
        "rounds": args.rounds,
        "accounts": args.accounts + 1,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.ledger", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dsn", help="an existing PostgreSQL (default: embedded, temporary)")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per mode")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per mode")
    parser.add_argument("--hot-share", type=float, default=0.15)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sql-batch-size", type=int, default=batch_size_max_default,
                        help="holds per direct ledger_hold_batch call (the SQL ceiling mode)")
    parser.add_argument(
        "--batches-in-flight", type=int, default=batches_in_flight_max_default,
        help="group commit: batches in flight at once (ignored one by one)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if (
        args.concurrency < 1
        or args.pool_size < 1
        or args.duration <= 0
        or not 0 <= args.hot_share <= 1
    ):
        parser.error("hot share must be in [0, 1]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dsn:
        report = trio.run(benchmark, args, args.dsn)
    else:
        from pgserver.postgres_server import get_server

        with tempfile.TemporaryDirectory(prefix="atm-ledger-bench-") as root:
            server = get_server(root, cleanup_mode="delete")
            try:
                report = trio.run(benchmark, args, str(server.get_uri()))
            finally:
                server.cleanup()
    if args.json:
        print(json.dumps(report))
    else:
        for name, value in report.items():
            print(f"{name:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
