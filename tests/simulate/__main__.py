"""Long simulation runs: ``python -m tests.simulate --histories N --seed S`` (or ``--seconds``).

Runs the catalogue of issue 21's failures (``--catalogue``) and/or seeded random histories
(seed S, S+1, ...) against the real switch (``atm-switch serve`` processes) and a PostgreSQL
of its own, and prints one JSON summary: histories, messages, faults injected by kind,
violations (each with the history that produced it). ``--seed S --histories 1`` replays the
history of seed S exactly (the same steps and messages; timing is the machine's). Exit status
1 when any violation was found.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections import Counter
from typing import Any

import trio

from tests.simulate.catalogue import CATALOGUE
from tests.simulate.history import random_history
from tests.simulate.node import NodeConfig
from tests.simulate.postgres import SimPostgres
from tests.simulate.simulation import Named, Outcome, run_many

batch_histories_max = 64  # seeded histories started per round of a --seconds run


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.simulate", description=__doc__)
    parser.add_argument("--seconds", type=float, default=None,
                        help="start no new history after this long (default: 60 unless "
                             "--histories is given)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: time)")
    parser.add_argument("--histories", type=int, default=None,
                        help="seeded random histories to run (default: until --seconds)")
    parser.add_argument("--catalogue", action="store_true",
                        help="run the catalogue of issue 21's failures first")
    parser.add_argument("--only", choices=sorted(CATALOGUE), action="append", default=None,
                        help="run only this catalogue history (repeatable)")
    parser.add_argument("--parallel", type=int, default=2, help="histories at a time")
    parser.add_argument("--steps-max", type=int, default=10, help="steps per history, max")
    parser.add_argument("--deadline", type=float, default=1.0, help="request deadline, s")
    parser.add_argument("--verbose", action="store_true", help="log the simulation's steps")
    parser.add_argument("--trace", choices=("failing", "all"), nargs="?", const="failing",
                        default="failing", help="print every message of the failing (the "
                                                "default) or all histories to stderr")
    arguments = parser.parse_args(argv)
    if arguments.only and arguments.histories is None and arguments.seconds is None:
        arguments.histories = 0  # --only: those catalogue histories, no seeded ones
    if arguments.seconds is None:
        arguments.seconds = math.inf if arguments.histories is not None else 60.0
    if arguments.seconds <= 0 or arguments.steps_max < 2 or arguments.deadline <= 0 \
            or arguments.parallel < 1 or (arguments.histories or 0) < 0:
        parser.error("--seconds and --deadline must be positive, --steps-max at least 2, "
                     "--parallel at least 1")
    return arguments


def _catalogue(arguments: argparse.Namespace) -> list[Named]:
    names = arguments.only or (sorted(CATALOGUE) if arguments.catalogue else [])
    return [Named(name, CATALOGUE[name](arguments.deadline), index)
            for index, name in enumerate(names)]


def _seeded(arguments: argparse.Namespace, first: int, count: int) -> list[Named]:
    return [Named(f"seed {seed}", random_history(seed, steps_max=arguments.steps_max,
                                                 deadline_s=arguments.deadline), seed)
            for seed in range(first, first + count)]


async def _main(arguments: argparse.Namespace) -> dict[str, Any]:
    first_seed = arguments.seed if arguments.seed is not None else int(time.time())
    config = NodeConfig(deadline_s=arguments.deadline)
    summary: dict[str, Any] = {"first_seed": first_seed, "histories": 0, "messages": 0,
                               "not_started": [], "faults": Counter(), "violations": [],
                               "failing": []}
    traces: dict[str, list[str]] = {}

    def record(named: Named, outcome: Outcome) -> None:
        if not outcome.started:  # set-up failed (no sign-on): counted, never a pass
            summary["not_started"].append(named.name)
            return
        summary["histories"] += 1
        summary["messages"] += outcome.messages
        summary["faults"].update(outcome.faults)
        summary["ordered_by"] = outcome.ordered_by
        if outcome.violations:
            summary["failing"].append(named.name)
            summary["violations"] += [f"{named.name}: {v}" for v in outcome.violations]
        if outcome.violations or arguments.trace == "all":
            traces[named.name] = outcome.trace + [f"violation {v}" for v in outcome.violations]

    postgres = SimPostgres()
    await trio.to_thread.run_sync(postgres.start)
    started = time.monotonic()
    try:
        await postgres.make_template()
        await run_many(postgres, _catalogue(arguments), config=config,
                       parallel=arguments.parallel, on_outcome=record)
        seed, left = first_seed, arguments.histories
        while (left is None or left > 0) and time.monotonic() - started < arguments.seconds:
            count = min(left if left is not None else batch_histories_max,
                        batch_histories_max, arguments.parallel * 4)
            await run_many(postgres, _seeded(arguments, seed, count), config=config,
                           parallel=arguments.parallel, on_outcome=record)
            seed += count
            left = None if left is None else left - count
    finally:
        await trio.to_thread.run_sync(postgres.cleanup)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["faults"] = dict(sorted(summary["faults"].items()))
    if arguments.trace:
        for name, lines in traces.items():
            print(f"--- {name}", *lines, sep="\n", file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    logging.basicConfig(level=logging.INFO if arguments.verbose else logging.CRITICAL)
    summary = trio.run(_main, arguments)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    # A run where histories could not even start proves nothing about them: say so.
    return 1 if summary["violations"] or summary["not_started"] else 0


if __name__ == "__main__":
    sys.exit(main())
