"""The simulation's short, derandomized CI pass (docs/testing.md, "Simulation").

Goal: issue 21's failures stay fixed and random faulted histories find no violation. Method:
the catalogue of the issue's failures and a few fixed seeds of the random generator, played
against ``atm-switch serve`` processes over real TCP, through the fault proxy in front of a
PostgreSQL of the simulation's own, judged by the oracle. Within 90 s on a quiet machine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import trio

from tests.simulate.catalogue import CATALOGUE
from tests.simulate.history import random_history
from tests.simulate.node import NodeConfig
from tests.simulate.postgres import SimPostgres
from tests.simulate.simulation import Named, Outcome, run_many

pytestmark = pytest.mark.slow

ci_seeds = range(21_000, 21_006)  # fixed: the same histories on every run
ci_steps_max = 6
ci_parallel = 4
ci_seconds_max = 90.0
config = NodeConfig(deadline_s=1.0)


@pytest.fixture
async def postgres() -> AsyncIterator[SimPostgres]:
    server = SimPostgres()
    await trio.to_thread.run_sync(server.start)
    try:
        await server.make_template()
        yield server
    finally:
        await trio.to_thread.run_sync(server.cleanup)


def _histories() -> list[Named]:
    named = [Named(name, make(config.deadline_s), index)
             for index, (name, make) in enumerate(sorted(CATALOGUE.items()))]
    named += [Named(f"seed {seed}", random_history(seed, steps_max=ci_steps_max,
                                                   deadline_s=config.deadline_s), seed)
              for seed in ci_seeds]
    return named


async def test_catalogue_and_seeded_histories_find_no_violation(postgres: SimPostgres
                                                                ) -> None:
    started = time.monotonic()
    outcomes: dict[str, Outcome] = {}
    await run_many(postgres, _histories(), config=config, parallel=ci_parallel,
                   on_outcome=lambda named, outcome: outcomes.setdefault(named.name, outcome))
    elapsed = time.monotonic() - started
    violations = [f"{name}: {v}" for name, o in outcomes.items() for v in o.violations]
    assert not violations, "\n".join(violations + [
        line for name, o in outcomes.items() if o.violations for line in o.trace])
    assert len(outcomes) == len(CATALOGUE) + len(ci_seeds)
    not_started = [name for name, o in outcomes.items() if not o.started]
    assert not not_started, f"histories whose terminals never signed on: {not_started}"
    faults: Counter[str] = Counter()
    for outcome in outcomes.values():
        faults.update(outcome.faults)
    # The run was not vacuous: every kind of fault of the catalogue fired.
    assert {"db.delay", "db.cut_before", "db.slow", "crash.kill"} <= set(faults), faults
    assert all(o.ordered_by == "commit_seq" for o in outcomes.values())
    assert elapsed < ci_seconds_max * 1.5, f"the CI pass took {elapsed:.0f} s"
