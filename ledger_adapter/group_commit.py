"""Group commit: concurrent calls coalesce into one database round trip.

Callers ``submit`` a request and sleep. Whenever fewer than ``batches_in_flight_max``
batches are in flight, everything queued (up to ``batch_size_max``) leaves at once as one
batch, so a lone caller goes straight out (no timer) and under load each round trip carries
all the requests that arrived during the previous one. An item's wait is bounded by the
batches ahead of it, each bounded by the database call deadline.

Flushes run as Trio system tasks, so a caller cancelled by its own deadline never cancels a
batch that carries other callers' requests. A cancelled caller whose request has not left
yet is simply dropped; one already sent completes without it (the outcome is unknown to
it, which is what ``release_by_key`` is for). Two requests with the same idempotency key
never travel in the same batch or in two batches at once.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import trio

from ledger_adapter.errors import LedgerUnavailable

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# What a flush function returns per item: its outcome, or the exception to raise to it.
Flush = Callable[[Sequence[Item]], Awaitable[Sequence["Outcome | Exception"]]]


class _Pending(Generic[Item, Outcome]):
    __slots__ = ("done", "error", "event", "item", "key", "outcome", "sent")

    def __init__(self, key: str, item: Item) -> None:
        self.key = key
        self.item = item
        self.event = trio.Event()
        self.sent = False
        self.done = False
        self.outcome: Outcome | None = None
        self.error: Exception | None = None


class GroupCommitter(Generic[Item, Outcome]):
    """Batches ``submit`` calls for one flush function."""

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Awaitable[Sequence[Outcome | Exception]]],
        *,
        name: str,
        batch_size_max: int,
        batches_in_flight_max: int,
        queue_length_max: int,
    ) -> None:
        if batch_size_max < 1 or batches_in_flight_max < 1 or queue_length_max < 1:
            raise ValueError("batch size, batches in flight and queue length must be >= 1")
        self._flush = flush
        self._name = name
        self.batch_size_max = batch_size_max
        self.batches_in_flight_max = batches_in_flight_max
        self.queue_length_max = queue_length_max
        self._queue: deque[_Pending[Item, Outcome]] = deque()
        self._keys_in_flight: set[str] = set()
        self.in_flight = 0
        # Observability: how many batches and items went out (loadtest reports the mean).
        self.batches_sent = 0
        self.items_sent = 0

    async def submit(self, key: str, item: Item) -> Outcome:
        """Queue ``item`` and wait for its outcome (or its exception)."""
        if len(self._queue) >= self.queue_length_max:
            raise LedgerUnavailable(f"ledger {self._name} queue full ({self.queue_length_max})")
        pending: _Pending[Item, Outcome] = _Pending(key, item)
        self._queue.append(pending)
        self._start_batches()
        try:
            await pending.event.wait()
        finally:
            if not pending.sent:
                self._queue.remove(pending)
        if pending.error is not None:
            raise pending.error
        return pending.outcome  # type: ignore[return-value]

    def _start_batches(self) -> None:
        while self.in_flight < self.batches_in_flight_max and self._queue:
            batch = self._take_batch()
            if not batch:
                return  # everything queued waits for a key in flight
            self.in_flight += 1
            self.batches_sent += 1
            self.items_sent += len(batch)
            trio.lowlevel.spawn_system_task(
                self._run,
                batch,
                name=f"ledger-{self._name}-batch",
                context=contextvars.copy_context(),
            )

    def _take_batch(self) -> list[_Pending[Item, Outcome]]:
        batch: list[_Pending[Item, Outcome]] = []
        skipped: list[_Pending[Item, Outcome]] = []
        while self._queue and len(batch) < self.batch_size_max:
            pending = self._queue.popleft()
            if pending.key in self._keys_in_flight:
                skipped.append(pending)
                continue
            pending.sent = True
            self._keys_in_flight.add(pending.key)
            batch.append(pending)
        self._queue.extendleft(reversed(skipped))
        return batch

    async def _run(self, batch: list[_Pending[Item, Outcome]]) -> None:
        outcomes: Sequence[Outcome | Exception]
        try:
            outcomes = await self._flush([pending.item for pending in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(
                    f"flush returned {len(outcomes)} outcomes for {len(batch)} items"
                )
        except Exception as exc:  # delivered to every waiter; must not escape a system task
            outcomes = [exc] * len(batch)
        except BaseException:
            self._finish(batch, [LedgerUnavailable("ledger shutting down")] * len(batch))
            raise
        self._finish(batch, outcomes)

    def _finish(
        self, batch: list[_Pending[Item, Outcome]], outcomes: Sequence[Outcome | Exception]
    ) -> None:
        self.in_flight -= 1
        for pending, outcome in zip(batch, outcomes, strict=True):
            self._keys_in_flight.discard(pending.key)
            if isinstance(outcome, Exception):
                pending.error = outcome
            else:
                pending.outcome = outcome
            pending.done = True
            pending.event.set()
        self._start_batches()
