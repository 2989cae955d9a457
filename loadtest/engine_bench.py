"""PostgreSQL's own cost of the authorization engine: backend CPU per message, by batch size.

``python -m loadtest.engine_bench --json`` starts an embedded PostgreSQL (pgserver) in a
temporary directory (fsync and synchronous_commit on), migrates it, opens ``cards`` cards each
on its own account, and then, for each batch size (1, 8 and 64 by default), calls the
engine's batch functions directly from one connection, as the switch does: an
``auth_financial_batch`` of approved withdrawals (every check passes, the hold is placed),
then an ``auth_advice_batch`` of their 0220 completions (each hold captured). The items of a
batch are on distinct cards, so one batch is what the switch sends under load.

CPU is the backend process's user + system time read from ``/proc/<pid>/stat`` around the
calls (clock ticks of 10 ms, so each size runs ``items`` messages), so it is PostgreSQL's own
work for the statements, excluding the WAL writer and the commit's fsync wait. The JSON has,
per batch size, ``pg_cpu_us_per_0200``, ``pg_cpu_us_per_0220`` and their sum
``pg_cpu_us_per_withdrawal`` (issue 21's target: <= 150 us at 8 and <= 600 us at 1), and the
wall time per batch.

``--floor`` adds what any engine pays before doing its work, measured the same way on the same
connection: ``floor_call_us_per_withdrawal`` calls two no-op PL/pgSQL functions with the batch
functions' arguments (decoding the arrays, entering the function, returning one row per item,
committing), and ``floor_one_row_us_per_withdrawal`` also writes one row per message under the
message's key (the five-column key of ``auth_messages``), the least a message can write. The
difference between the engine and the second floor is the engine's own work.

The same script runs against any engine version whose batch functions take these arrays
(``--dsn`` for an existing, migrated database), which is how the before/after figures in
docs/performance.md were taken.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Final

import trio

from loadtest.procstat import cpu_seconds
from switch.authorization.batch_items import (
    AdviceItem,
    FinancialItem,
    advice_columns,
    financial_columns,
)
from switch.authorization.batches import ADVICE_QUERY, FINANCIAL_QUERY
from switch.authorization.request import MessageKey, OriginalData
from switch.db.migrate import migrate
from switch.db.runtime import open_database

CURRENCY = "156"
ACQUIRER = "00000123456"
withdrawal_minor = 10_000
opening_minor = 10**12


async def open_cards(connection: Any, cards: int) -> list[tuple[int, int, str]]:
    """``cards`` active cards, each on its own well-funded account: (card id, version, account)."""
    await connection.execute(
        "SELECT ledger_open_account('BENCH' || lpad(n::text, 6, '0'), 'bench', $1, $2,"
        " 'active', 'customer') FROM generate_series(1, $3) AS n",
        CURRENCY, opening_minor, cards,
    )
    await connection.execute(
        "INSERT INTO cards (pan_hash, pan_encrypted, pan_masked, expiry, account_id,"
        " pin_verification, limits)"
        " SELECT 'bench-' || n, 'x', '622848******' || lpad(n::text, 4, '0'), '3012',"
        " 'BENCH' || lpad(n::text, 6, '0'), '{}'::jsonb,"
        " '{\"daily_withdrawal_max\": 100000000000}'::jsonb FROM generate_series(1, $1) AS n",
        cards,
    )
    rows = await connection.fetch("SELECT card_id, version, account_id FROM cards ORDER BY card_id")
    return [(row["card_id"], row["version"], row["account_id"]) for row in rows]


def withdrawal(
    stan: int, terminal: str, card: tuple[int, int, str], now: dt.datetime
) -> FinancialItem:
    key = MessageKey("0200", terminal, f"{stan % 1_000_000:06d}", now.strftime("%m%d%H%M%S"),
                     ACQUIRER)
    card_id, version, account = card
    return FinancialItem(
        key=key, fingerprint=f"bench:{terminal}:{stan}", processing_code="010000",
        amount_minor=withdrawal_minor, token=os.urandom(8).hex(), card_id=card_id,
        card_version=version, presented_expiry=None, month=int(now.strftime("%y%m")), pin="ok",
        from_account=None, to_account=None, static_code=None, kind="withdrawal", new_pin=None,
        currency=CURRENCY, day=now.date(), expires_at=now + dt.timedelta(minutes=10),
        daily_max=100_000_000_000, daily_count=None,
        ledger_key=f"atm:0200:{terminal}:{key.stan}:{key.transmission_dt}:{ACQUIRER}",
        ledger_fingerprint=f"hold:{account}:{withdrawal_minor}", description="ATM withdrawal",
        reference=None, rrn=None,
    )  # fmt: skip


def completion(item: FinancialItem, stan: int) -> AdviceItem:
    key = item.key
    return AdviceItem(
        key=MessageKey("0220", key.terminal_id, f"{stan % 1_000_000:06d}", key.transmission_dt,
                       ACQUIRER),
        fingerprint=f"bench-advice:{key.terminal_id}:{stan}", processing_code="010000",
        amount_minor=withdrawal_minor, token=os.urandom(8).hex(),
        original=OriginalData("0200", key.stan, key.transmission_dt, ACQUIRER),
        actual_amount_minor=None, rrn=None, reason=None,
    )  # fmt: skip


FLOOR_TABLE: Final = "engine_bench_floor"
FLOOR_RESULT: Final = (
    "SELECT u.i::integer, 'new'::text, '00'::text, NULL::bigint, now(), NULL::bigint,"
    " NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::jsonb, false"
    " FROM generate_series(1, cardinality(p_terminals)) AS u (i)"
)
FLOOR_BODIES: Final = {
    "call": f"RETURN QUERY {FLOOR_RESULT};",
    "one_row": (
        f"INSERT INTO {FLOOR_TABLE} SELECT p_class, t.term, t.stan, t.tdt, t.acq, t.amount"
        " FROM unnest(p_terminals, p_stans, p_tdts, p_acqs, p_amounts)"
        " AS t (term, stan, tdt, acq, amount) ON CONFLICT DO NOTHING;"
        f" RETURN QUERY {FLOOR_RESULT};"
    ),
}


async def create_floor(connection: Any) -> dict[str, tuple[str, str]]:
    """The floor's functions (in pg_temp) and table: {floor: (0200 query, 0220 query)}."""
    await connection.execute(
        f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (message_class text, terminal_id text,"
        " stan text, transmission_dt text, acquirer_id text, amount_minor bigint NOT NULL,"
        " PRIMARY KEY (message_class, terminal_id, stan, transmission_dt, acquirer_id))"
    )
    signatures = await connection.fetch(
        "SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments FROM pg_proc p"
        " WHERE p.proname IN ('auth_financial_batch', 'auth_advice_batch')"
        " ORDER BY p.oid DESC"
    )
    arguments = {row["proname"]: row["arguments"] for row in reversed(signatures)}
    queries: dict[str, tuple[str, str]] = {}
    for floor, body in FLOOR_BODIES.items():
        names = []
        for engine, message_class, query in (("auth_financial_batch", "0200", FINANCIAL_QUERY),
                                             ("auth_advice_batch", "0220", ADVICE_QUERY)):
            name = f"floor_{floor}_{message_class}"
            await connection.execute(
                f"CREATE OR REPLACE FUNCTION pg_temp.{name}({arguments[engine]})"
                " RETURNS SETOF auth_result LANGUAGE plpgsql"
                " SET plan_cache_mode = force_generic_plan AS $floor$"
                f" DECLARE p_class text := '{message_class}'; BEGIN {body} END $floor$"
            )
            names.append(query.replace(engine, f"pg_temp.{name}"))
        queries[floor] = (names[0], names[1])
    return queries


async def measure_size(
    connection: Any, cards: list[tuple[int, int, str]], size: int, items: int, first_stan: int,
    queries: tuple[str, str] = (FINANCIAL_QUERY, ADVICE_QUERY),
) -> dict[str, float]:
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    batches = max(1, items // size)
    now = dt.datetime.now(dt.UTC)
    stan = first_stan
    cpu = {"0200": 0.0, "0220": 0.0}
    wall = {"0200": 0.0, "0220": 0.0}
    for number in range(batches):
        terminal = f"B{size:03d}{number % 1000:03d}"  # one terminal per batch: keys never clash
        chosen = [cards[(number * size + k) % len(cards)] for k in range(size)]
        requests = [withdrawal(stan + k, terminal, card, now) for k, card in enumerate(chosen)]
        stan += size
        advices = [completion(item, stan + k) for k, item in enumerate(requests)]
        stan += size
        for kind, query, columns in (
            ("0200", queries[0], [*financial_columns(requests), 3]),
            ("0220", queries[1], advice_columns(advices)),
        ):
            before_cpu, before_wall = cpu_seconds(pid), time.perf_counter()
            rows = await connection.fetch(query, *columns)
            wall[kind] += time.perf_counter() - before_wall
            cpu[kind] += cpu_seconds(pid) - before_cpu
            codes = {row["response_code"] for row in rows}
            if codes != {"00"}:
                raise RuntimeError(f"benchmark {kind} not approved: {sorted(map(str, codes))}")
    done = batches * size
    return {
        "batch_size": size,
        "messages": done,
        "pg_cpu_us_per_0200": round(cpu["0200"] / done * 1e6, 1),
        "pg_cpu_us_per_0220": round(cpu["0220"] / done * 1e6, 1),
        "pg_cpu_us_per_withdrawal": round((cpu["0200"] + cpu["0220"]) / done * 1e6, 1),
        "wall_ms_per_0200_batch": round(wall["0200"] / batches * 1e3, 3),
        "wall_ms_per_0220_batch": round(wall["0220"] / batches * 1e3, 3),
    }


async def benchmark(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    async with open_database(dsn, pool_size_min=1, pool_size_max=2) as db:
        if not args.dsn:
            await migrate(db)

        async def run(connection: Any) -> dict[str, Any]:
            if args.plan_cache_mode:
                await connection.execute(f"SET plan_cache_mode = {args.plan_cache_mode}")
            cards = await open_cards(connection, args.cards)
            # A warm-up round so plans are cached, as in a switch that has been serving.
            await measure_size(connection, cards, 8, 64, first_stan=900_000)
            floors = await create_floor(connection) if args.floor else {}
            results = []
            for number, size in enumerate(args.sizes):
                result = await measure_size(connection, cards, size, args.items,
                                            first_stan=number * 100_000 + 1)
                for floor, queries in floors.items():
                    measured = await measure_size(connection, cards, size, args.items,
                                                  first_stan=number * 100_000 + 50_001,
                                                  queries=queries)
                    result[f"floor_{floor}_us_per_withdrawal"] = measured[
                        "pg_cpu_us_per_withdrawal"]
                results.append(result)
            if floors:
                await connection.execute(f"DROP TABLE {FLOOR_TABLE}")
            return {"cards": len(cards), "items_per_size": args.items, "sizes": results}

        report: dict[str, Any] = await db.run(run, timeout_s=3_600)
        return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.engine_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--items", type=int, default=2_048,
                        help="messages per batch size (default 2048)")
    parser.add_argument("--cards", type=int, default=1_024)
    parser.add_argument("--dsn", help="an existing, migrated database (default: embedded)")
    parser.add_argument("--plan-cache-mode", choices=["auto", "force_generic_plan",
                                                      "force_custom_plan"],
                        help="PostgreSQL's plan_cache_mode for the session (default: server's)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure no-op functions with the same arguments (the floor)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.items < 1 or args.cards < max(args.sizes):
        parser.error("sizes and items must be positive, and cards at least the largest size")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dsn:
        report = trio.run(benchmark, args, args.dsn)
    else:
        from pgserver.postgres_server import get_server

        with tempfile.TemporaryDirectory(prefix="atm-engine-bench-") as root:
            server = get_server(root, cleanup_mode="delete")
            try:
                report = trio.run(benchmark, args, str(server.get_uri()))
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
