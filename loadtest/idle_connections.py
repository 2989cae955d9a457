"""Idle-connection footprint: N terminals connected and signed on, the switch's RSS.

``python -m loadtest.idle_connections --connections 10000 --json`` starts the switch
on a temporary data directory with N registered terminals (a fixture file with
terminals only), then, from this separate process, opens N connections, each
signing on as a distinct terminal (spec 5.1), holds them idle, and reads the
switch process's resident set size from ``/proc/PID/status`` before and after.

Connects are paced (at most ``--concurrency`` in progress, ``--connect-rate``
new ones per second) because the listen backlog here is 4,096: a burst of
10,000 SYNs would overflow it and turn into retransmission stalls. Both this
process and the switch need more than 10,000 file descriptors: the soft
RLIMIT_NOFILE is raised to the hard limit here before the switch starts, and the
switch inherits it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from loadtest.limits import raise_open_files_limit
from loadtest.messages import MessageFactory
from loadtest.population import terminal
from loadtest.runner import progress
from loadtest.session import RequestFailed, Session
from loadtest.targets import ExternalTarget, SwitchTarget, Target, TargetError

rss_target_mb = 300  # DESIGN.md section 5: 10,000 idle connections within 300 MB
sign_on_timeout_s = 30.0
file_descriptors_spare = 100  # stdio, the event loop, the pipes


@dataclass(slots=True)
class IdleResult:
    signed_on: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    connect_seconds: float = 0.0

    def fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1


async def _open_idle(
    host: str,
    port: int,
    count: int,
    *,
    concurrency: int,
    connect_rate: float,
    hold_s: float,
    on_all_open: Any,
) -> IdleResult:
    """Open and sign on ``count`` terminals, hold them ``hold_s``, call ``on_all_open``."""
    result = IdleResult()
    sessions: list[Session] = []
    limiter = trio.CapacityLimiter(concurrency)
    rng = random.Random(0)
    started = time.monotonic()

    async def one(index: int) -> None:
        async with limiter:
            try:
                with trio.fail_after(sign_on_timeout_s):
                    stream = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError):
                result.fail("connect")
                return
            session = Session(stream, rng)
            nursery.start_soon(session.read_responses)
            factory = MessageFactory(terminal(index, count))
            stan = session.next_stan()
            try:
                mti, fields, _ = await session.exchange(
                    stan, factory.network(b"001", stan), sign_on_timeout_s
                )
            except RequestFailed as exc:
                result.fail(f"sign_on_{exc.outcome}")
                await session.aclose()
                return
            if mti != b"0810" or fields.get(39) != b"00":
                result.fail(f"sign_on_{fields.get(39, b'--').decode('ascii', 'replace')}")
                await session.aclose()
                return
            sessions.append(session)
            result.signed_on += 1

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as connecting:
            for index in range(count):
                connecting.start_soon(one, index)
                await trio.sleep(1.0 / connect_rate)
        result.connect_seconds = round(time.monotonic() - started, 1)
        progress(f"{result.signed_on}/{count} signed on in {result.connect_seconds} s")
        await trio.sleep(hold_s)
        still_open = sum(1 for s in sessions if not s.closed)
        on_all_open(still_open)
        for session in sessions:
            await session.aclose()
        nursery.cancel_scope.cancel()
    return result


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    if args.switch:
        yield ExternalTarget(args.switch, args.switch_pid)
        return
    progress(f"starting atm-switch with {args.connections} registered terminals")
    with SwitchTarget(
        args.connections, seed=args.seed, dsn=args.dsn, cards=False, workers=args.workers
    ) as target:
        yield target


def run(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_open_files_limit()
    if limit < args.connections + file_descriptors_spare:
        raise TargetError(f"RLIMIT_NOFILE is {limit}: too low for {args.connections} connections")
    with _target(args) as target:
        time.sleep(args.settle)  # let start-up allocations settle before the baseline
        before = target.rss_bytes()
        observed: dict[str, int] = {}

        def on_all_open(still_open: int) -> None:
            observed["open"] = still_open
            observed["rss"] = target.rss_bytes()

        result = trio.run(
            lambda: _open_idle(
                target.host,
                target.port,
                args.connections,
                concurrency=args.concurrency,
                connect_rate=args.connect_rate,
                hold_s=args.hold,
                on_all_open=on_all_open,
            )
        )
    rss_mb = observed.get("rss", 0) / 2**20
    delta = observed.get("rss", 0) - before
    return {
        "connections": args.connections,
        "signed_on": result.signed_on,
        "open_at_measurement": observed.get("open", 0),
        "failures": result.failures,
        "connect_seconds": result.connect_seconds,
        "switch_rss_mb_before": round(before / 2**20, 1),
        "switch_rss_mb": round(rss_mb, 1),
        "rss_per_connection_kb": round(delta / 1024 / max(1, result.signed_on), 2),
        "rss_target_mb": rss_target_mb,
        "within_target": bool(observed.get("rss")) and rss_mb <= rss_target_mb,
        "rss_source": "/proc/PID/status VmRSS of the switch process (and its non-PostgreSQL "
        "children)",
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.idle_connections", description=__doc__
    )
    add = parser.add_argument
    add("--connections", type=int, default=10_000)
    add("--concurrency", type=int, default=32,
        help="connects in progress at once (under the switch's not-signed-on cap, spec 10)")
    add("--connect-rate", type=float, default=2_000.0, help="new connections per second")
    add("--hold", type=float, default=5.0, help="seconds idle before measuring")
    add("--settle", type=float, default=2.0, help="seconds after start-up before the baseline")
    add("--switch", default=None, metavar="HOST:PORT", help="use a running switch")
    add("--switch-pid", type=int, default=None, help="its PID (needed for RSS)")
    add("--dsn", default=None)
    add("--workers", type=int, default=None)
    add("--seed", default="atm-loadtest")
    add("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.connections < 1 or args.concurrency < 1 or args.connect_rate <= 0:
        print("idle_connections: counts and rates must be positive", file=sys.stderr)
        return 2
    try:
        report = run(args)
    except TargetError as exc:
        print(f"idle_connections: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{report['signed_on']}/{report['connections']} idle terminals signed on; "
            f"switch RSS {report['switch_rss_mb']} MB (before {report['switch_rss_mb_before']} MB, "
            f"{report['rss_per_connection_kb']} KB per connection; target <= {rss_target_mb} MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
