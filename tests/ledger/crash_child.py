"""Child process of test_crash.py: places holds and captures them, concurrently, and appends
one line per acknowledged result to a file (``key status hold_id``) right after each returns.

Usage: python -m tests.ledger.crash_child DSN ACK_FILE KEYS CONCURRENCY
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import trio

from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import open_database

ACCOUNTS = ("CRASH-A", "CRASH-B", "CRASH-C")


async def main(dsn: str, ack_path: str, keys: int, concurrency: int) -> None:
    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    async with open_database(dsn, pool_size_min=1, pool_size_max=8) as db:
        ledger = PostgresLedger(db)
        todo = iter(range(keys))

        async def worker() -> None:
            for n in todo:
                hold = await ledger.hold(
                    f"h{n}", account_id=ACCOUNTS[n % 3], amount=100 + n % 7, direction="debit",
                    expires_at=expires, expiry_action="capture",
                )  # fmt: skip
                os.write(ack, f"h{n} {hold.status} {hold.hold_id}\n".encode())
                if hold.approved and n % 2 == 0:
                    captured = await ledger.capture(f"c{n}", hold_id=hold.hold_id or 0, amount=50)
                    os.write(ack, f"c{n} {captured.status} {captured.hold_id}\n".encode())

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    os.close(ack)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
