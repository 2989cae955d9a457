"""One generator process: its share of the terminals, driven phase by phase.

The parent process (``loadtest.pool``) sends commands over a pipe: a phase
(closed or open loop, rate, warm-up, duration, a wall-clock start shared by every
process so their windows line up) or ``stop``. Connections, sign-ons and keys
live across phases, so a step search does not reconnect between steps.

Closed loop (no rate): each terminal sends its next transaction when the last
one is answered. Open loop: arrivals at a fixed or Poisson rate, handed to the
terminals in turn, with latency from the *intended* arrival time even when the
process or the terminal (8 outstanding at most) is late.
"""

from __future__ import annotations

import random
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import trio

from loadtest.flows import LoadTerminal, Recorder, SetupFailed
from loadtest.limits import raise_open_files_limit
from loadtest.mix import Mix, MixChooser
from loadtest.population import terminal
from loadtest.session import Session
from loadtest.stats import PhaseStats

# Paced connects: each one signs on before the next starts, and with two generator processes
# the in-progress connects stay well under the switch's not-signed-on cap (spec 10: 64).
connects_concurrent_max = 16
connect_timeout_s = 30.0


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """Everything a generator process needs, sent once at start."""

    worker_index: int
    addresses: tuple[tuple[str, int], ...]  # terminal i connects to addresses[i % len]
    first_index: int
    last_index: int  # exclusive
    population: int
    seed: str
    key_exchange: bool
    verify_mac: bool
    response_timeout_s: float
    mix: Mix


@dataclass(frozen=True, slots=True)
class Phase:
    """One measurement: closed loop when ``rate_per_s`` is None."""

    start_wall: float  # time.time() at which the warm-up starts
    warmup_s: float
    duration_s: float
    rate_per_s: float | None
    arrival: str  # "fixed" | "poisson"


def worker_main(plan: WorkerPlan, pipe: Connection) -> None:
    """Process entry point (multiprocessing target)."""
    raise_open_files_limit()
    try:
        trio.run(_worker, plan, pipe)
    except KeyboardInterrupt:
        pass


async def _worker(plan: WorkerPlan, pipe: Connection) -> None:
    recorder = Recorder()
    rng = random.Random(f"{plan.seed}:{plan.worker_index}")
    chooser = MixChooser(plan.mix, rng)
    async with trio.open_nursery() as nursery:
        terminals, failures = await _set_up_terminals(plan, recorder, rng, nursery)
        pipe.send({"ready": len(terminals), "setup_failures": failures})
        while True:
            command: dict[str, Any] = await trio.to_thread.run_sync(pipe.recv)
            if command.get("type") != "phase":
                break
            stats = await _run_phase(Phase(**command["phase"]), terminals, chooser, recorder)
            pipe.send({"stats": stats.to_json()})
        for load_terminal in terminals:
            await load_terminal.session.aclose()
        nursery.cancel_scope.cancel()


async def _set_up_terminals(
    plan: WorkerPlan, recorder: Recorder, rng: random.Random, nursery: trio.Nursery
) -> tuple[list[LoadTerminal], dict[str, int]]:
    """Connect, sign on and key every terminal of this process (paced)."""
    ready: list[LoadTerminal] = []
    failures: dict[str, int] = {}
    limiter = trio.CapacityLimiter(connects_concurrent_max)

    async def one(index: int) -> None:
        async with limiter:
            try:
                with trio.fail_after(connect_timeout_s):
                    host, port = plan.addresses[index % len(plan.addresses)]
                    stream = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError):
                failures["connect"] = failures.get("connect", 0) + 1
                return
            session = Session(stream, rng)
            nursery.start_soon(session.read_responses)
            load_terminal = LoadTerminal(
                terminal(index, plan.population, plan.seed),
                session,
                recorder,
                response_timeout_s=plan.response_timeout_s,
                verify_mac=plan.verify_mac,
            )
            try:
                await load_terminal.setup(key_exchange=plan.key_exchange, seed=plan.seed)
            except SetupFailed as exc:
                failures[exc.reason] = failures.get(exc.reason, 0) + 1
                await session.aclose()
                return
            ready.append(load_terminal)

    async with trio.open_nursery() as setup:
        for index in range(plan.first_index, plan.last_index):
            setup.start_soon(one, index)
    ready.sort(key=lambda t: t.terminal.index)
    return ready, failures


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run_phase(
    phase: Phase, terminals: list[LoadTerminal], chooser: MixChooser, recorder: Recorder
) -> PhaseStats:
    start = trio.current_time() + (phase.start_wall - time.time())
    window_start = start + phase.warmup_s
    window_end = window_start + phase.duration_s
    stats = PhaseStats(phase.duration_s)
    recorder.begin(stats, window_start, window_end)

    async def measure_cpu() -> None:
        await trio.sleep_until(window_start)
        before = _cpu_seconds()
        await trio.sleep_until(window_end)
        stats.cpu_seconds = _cpu_seconds() - before
        stats.wall_seconds = phase.duration_s

    async with trio.open_nursery() as nursery:
        nursery.start_soon(measure_cpu)
        if phase.rate_per_s is None:
            for load_terminal in terminals:
                nursery.start_soon(_closed_loop, load_terminal, chooser, start, window_end)
        elif terminals and phase.rate_per_s > 0:
            nursery.start_soon(
                _open_loop, terminals, chooser, phase, start, window_end, nursery
            )
    recorder.end()
    return stats


async def _closed_loop(
    load_terminal: LoadTerminal, chooser: MixChooser, start: float, end: float
) -> None:
    await trio.sleep_until(start)
    while not load_terminal.session.closed:
        now = trio.current_time()
        if now >= end:
            return
        await load_terminal.transaction(chooser, now)
    load_terminal.recorder.record("session", "disconnected", trio.current_time(), 0.0)


async def _open_loop(
    terminals: list[LoadTerminal],
    chooser: MixChooser,
    phase: Phase,
    start: float,
    end: float,
    nursery: trio.Nursery,
) -> None:
    """Arrivals at the phase rate; each is handed to the next terminal in turn."""
    assert phase.rate_per_s is not None
    rate = phase.rate_per_s
    poisson = phase.arrival == "poisson"
    gap = 1.0 / rate
    intended = start
    turn = 0
    count = len(terminals)
    while intended < end:
        await trio.sleep_until(intended)  # a checkpoint even when already late
        nursery.start_soon(terminals[turn].transaction, chooser, intended)
        turn = turn + 1 if turn + 1 < count else 0
        intended += chooser.rng.expovariate(rate) if poisson else gap
