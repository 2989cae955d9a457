"""Long simulation runs: ``python -m tests.simulate --seconds N [--seed S]``.

Runs seeded random histories (seed S, S+1, ...) for N seconds against the real switch and a
PostgreSQL of its own, and prints one JSON summary: histories, messages, faults injected by
kind, violations (each with the seed that produced it). ``--seed S --histories 1`` replays the
history of seed S exactly (the same steps and messages; timing is the machine's).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

import trio

from tests.simulate.history import random_history
from tests.simulate.node import NodeConfig
from tests.simulate.postgres import SimPostgres
from tests.simulate.simulation import run_history


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.simulate", description=__doc__)
    parser.add_argument("--seconds", type=float, default=None,
                        help="run for this long (default 60 unless --histories is given)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: time)")
    parser.add_argument("--histories", type=int, default=None, help="stop after this many")
    parser.add_argument("--steps-max", type=int, default=10, help="steps per history, max")
    parser.add_argument("--deadline", type=float, default=1.0, help="request deadline, s")
    parser.add_argument("--verbose", action="store_true", help="log the switch's warnings")
    parser.add_argument("--trace", action="store_true",
                        help="print every message of a failing history to stderr")
    arguments = parser.parse_args(argv)
    if arguments.seconds is None:
        arguments.seconds = float("inf") if arguments.histories is not None else 60.0
    if arguments.seconds <= 0 or arguments.steps_max < 2 or arguments.deadline <= 0:
        parser.error("--seconds and --deadline must be positive, --steps-max at least 2")
    return arguments


async def _main(arguments: argparse.Namespace) -> dict[str, Any]:
    first_seed = arguments.seed if arguments.seed is not None else int(time.time())
    config = NodeConfig(deadline_s=arguments.deadline)
    postgres = SimPostgres()
    await trio.to_thread.run_sync(postgres.start)
    summary: dict[str, Any] = {"first_seed": first_seed, "histories": 0, "messages": 0,
                               "faults": Counter(), "violations": [], "failing_seeds": []}
    started = time.monotonic()
    try:
        await postgres.make_template()
        seed = first_seed
        while time.monotonic() - started < arguments.seconds:
            if arguments.histories is not None and summary["histories"] >= arguments.histories:
                break
            history = random_history(seed, steps_max=arguments.steps_max,
                                     deadline_s=arguments.deadline)
            outcome = await run_history(postgres, history, seed=seed, config=config)
            summary["histories"] += 1
            summary["messages"] += outcome.messages
            summary["faults"].update(outcome.faults)
            summary["ordered_by"] = outcome.ordered_by
            if outcome.violations:
                summary["failing_seeds"].append(seed)
                summary["violations"] += [f"seed {seed}: {v}" for v in outcome.violations]
                if arguments.trace:
                    print(f"--- seed {seed}", *outcome.trace, sep="\n", file=sys.stderr)
            seed += 1
    finally:
        await trio.to_thread.run_sync(postgres.cleanup)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["faults"] = dict(sorted(summary["faults"].items()))
    return summary


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    logging.basicConfig(level=logging.WARNING if arguments.verbose else logging.CRITICAL)
    summary = trio.run(_main, arguments)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
