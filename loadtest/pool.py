"""Several generator processes driven as one, results merged.

One Python process tops out at a few thousand requests per second (one core),
so the terminals are split into contiguous slices, one process each. Every
phase starts at one wall-clock time in all processes; their HDR histograms and
counters are merged afterwards.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from loadtest.generator import Phase, WorkerPlan, worker_main
from loadtest.mix import Mix
from loadtest.stats import PhaseStats

phase_start_delay_s = 0.5  # time for every process to receive the phase before it starts
setup_timeout_base_s = 60.0
setup_timeout_per_terminal_s = 0.05
phase_result_grace_s = 60.0  # beyond warm-up + duration + response timeout


class WindowHooks(Protocol):
    def opened(self) -> None: ...

    def closed(self) -> None: ...


def _sleep_until_wall(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


class GeneratorError(RuntimeError):
    """A generator process failed or did not answer in time."""


@dataclass(frozen=True, slots=True)
class PoolPlan:
    addresses: tuple[tuple[str, int], ...]  # terminal i connects to addresses[i % len]
    terminals: int
    processes: int
    seed: str
    key_exchange: bool
    verify_mac: bool
    response_timeout_s: float
    mix: Mix


class GeneratorPool:
    """Start with ``start()``; ``run_phase`` as often as needed; ``close()``."""

    def __init__(self, plan: PoolPlan) -> None:
        if plan.processes < 1 or plan.terminals < plan.processes:
            raise ValueError("need at least one terminal per generator process")
        self.plan = plan
        self._workers: list[tuple[BaseProcess, Connection]] = []
        self.ready_terminals = 0
        self.setup_failures: dict[str, int] = {}

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        plan = self.plan
        share, extra = divmod(plan.terminals, plan.processes)
        first = 0
        for worker_index in range(plan.processes):
            last = first + share + (1 if worker_index < extra else 0)
            worker_plan = WorkerPlan(
                worker_index=worker_index,
                addresses=plan.addresses,
                first_index=first,
                last_index=last,
                population=plan.terminals,
                seed=plan.seed,
                key_exchange=plan.key_exchange,
                verify_mac=plan.verify_mac,
                response_timeout_s=plan.response_timeout_s,
                mix=plan.mix,
            )
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=worker_main, args=(worker_plan, child_end), name=f"loadgen-{worker_index}"
            )
            process.start()
            child_end.close()
            self._workers.append((process, parent_end))
            first = last
        timeout = setup_timeout_base_s + setup_timeout_per_terminal_s * plan.terminals
        for reply in self._gather(timeout):
            self.ready_terminals += int(reply["ready"])
            for reason, count in reply["setup_failures"].items():
                self.setup_failures[reason] = self.setup_failures.get(reason, 0) + int(count)

    def _gather(self, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        replies = []
        for process, pipe in self._workers:
            remaining = max(0.0, deadline - time.monotonic())
            if not pipe.poll(remaining):
                state = "exited" if not process.is_alive() else "did not answer"
                raise GeneratorError(f"generator process {process.name} {state}")
            try:
                replies.append(pipe.recv())
            except EOFError as exc:
                raise GeneratorError(f"generator process {process.name} exited") from exc
        return replies

    def run_phase(
        self,
        *,
        warmup_s: float,
        duration_s: float,
        rate_per_s: float | None,
        arrival: str,
        window: WindowHooks | None = None,
    ) -> PhaseStats:
        """Run one phase in every process and return the merged results.

        ``window.opened()`` / ``window.closed()`` run in this process when the
        measurement window opens and closes (to sample the target's CPU time).
        """
        start_wall = time.time() + phase_start_delay_s
        for index, (_, pipe) in enumerate(self._workers):
            rate = None if rate_per_s is None else rate_per_s * self._share(index)
            phase = Phase(start_wall, warmup_s, duration_s, rate, arrival)
            pipe.send({"type": "phase", "phase": asdict(phase)})
        if window is not None:
            _sleep_until_wall(start_wall + warmup_s)
            window.opened()
            _sleep_until_wall(start_wall + warmup_s + duration_s)
            window.closed()
        timeout = (
            phase_start_delay_s
            + warmup_s
            + duration_s
            + self.plan.response_timeout_s
            + phase_result_grace_s
        )
        merged: PhaseStats | None = None
        for reply in self._gather(timeout):
            stats = PhaseStats.from_json(reply["stats"])
            if merged is None:
                merged = stats
            else:
                merged.merge(stats)
        assert merged is not None
        return merged

    def _share(self, worker_index: int) -> float:
        share, extra = divmod(self.plan.terminals, self.plan.processes)
        return (share + (1 if worker_index < extra else 0)) / self.plan.terminals

    def close(self) -> None:
        for _, pipe in self._workers:
            try:
                pipe.send({"type": "stop"})
            except (BrokenPipeError, OSError):
                pass
        for process, pipe in self._workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            pipe.close()
        self._workers.clear()

    def __enter__(self) -> GeneratorPool:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
