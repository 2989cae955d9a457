"""The authorization engine's database side: one PL/pgSQL call per batch per message class.

Requests queue in a :class:`~ledger_adapter.group_commit.GroupCommitter` on the Trio side;
whenever fewer than ``batches_in_flight_max`` batches are out, everything queued leaves as
one call (a lone request goes at once, no timer), crossing to asyncpg's thread once and
committing once (``synchronous_commit`` on: a ``00`` is sent only after its effect is
durable, spec 5.2). Two requests with one key never share a batch, so the SQL never sees a
key twice. See ``switch/db/migrations/031x_*.sql`` for what each call does.

A batch that fails as a whole (PostgreSQL gone, statement deadline) fails every request in
it with :class:`~switch.db.runtime.DatabaseUnavailable`; one bad request never fails the
others, because the SQL decides per request and returns a row for each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import asyncpg

from ledger_adapter.errors import LedgerUnavailable
from ledger_adapter.group_commit import GroupCommitter
from switch.authorization.batch_items import (
    AdviceItem,
    Decision,
    FinancialItem,
    RoutedClaim,
    RoutedItem,
    advice_columns,
    decision_from_row,
    financial_columns,
)
from switch.authorization.request import MessageKey
from switch.authorization.void_journal import OwedVoid
from switch.db.runtime import Database, DatabaseUnavailable

# Bounded: a batch is one PL/pgSQL call whose arrays must stay small enough to decide within
# a few milliseconds; past this a second batch leaves as soon as one is back.
batch_size_max: Final = 256
# Batches in flight per class when not configured (authorization.batches_in_flight_max, whose
# default is 1: measured, docs/performance.md "Batching policy"): a lone request commits at
# once; while one is out the others gather into the next.
batches_in_flight_max_default: Final = 1
# Requests waiting for a batch; past this the switch answers 91 at once (DESIGN.md 6).
queue_length_max: Final = 8192

FINANCIAL_QUERY: Final = (
    "SELECT * FROM auth_financial_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
    " $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29,"
    " $30, $31)"
)
ADVICE_QUERY: Final = (
    "SELECT * FROM auth_advice_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
    " $14, $15)"
)
VOID_QUERY: Final = "SELECT * FROM auth_void($1, $2, $3, $4, $5, $6, $7, $8)"
NETWORK_CLAIM_QUERY: Final = (
    "SELECT * FROM auth_network_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
NETWORK_RECORD_QUERY: Final = "SELECT auth_network_record($1, $2, $3, $4, $5, $6, $7, $8)"
# A batch PostgreSQL rolled back as a deadlock victim or for serialization is run again this
# often (the lock order of migration 0320 makes a deadlock between batches impossible; a void
# or an operator's statement can still take part in one).
retries_max: Final = 3
RETRYABLE: Final = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


class BatchMetrics(Protocol):
    """What the batches report (ops.metrics.SwitchMetrics provides it)."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def observe_batch(self, message_class: str, size: int) -> None: ...


def _key_order(key: MessageKey) -> tuple[str, str, str, str]:
    return (key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id)


class AuthorizationBatches:
    """The two batchers and the void call, over one :class:`Database`."""

    def __init__(
        self, db: Database, *, pin_tries_max: int, metrics: BatchMetrics | None = None,
        batches_in_flight_max: int = batches_in_flight_max_default,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._pin_tries_max = pin_tries_max
        settings: dict[str, int] = {
            "batch_size_max": batch_size_max,
            "batches_in_flight_max": batches_in_flight_max,
            "queue_length_max": queue_length_max,
        }
        self.financial: GroupCommitter[FinancialItem, Decision] = GroupCommitter(
            self._flush_financial, name="authorizations", **settings
        )
        self.advices: GroupCommitter[AdviceItem, Decision] = GroupCommitter(
            self._flush_advices, name="advices", **settings
        )
        self.routed: GroupCommitter[RoutedItem, RoutedClaim] = GroupCommitter(
            self._flush_routed, name="routed_claims", **settings
        )

    async def decide(self, item: FinancialItem) -> Decision:
        """The stored decision for one 0200 (raises DatabaseUnavailable)."""
        try:
            return await self.financial.submit(_key_text(item.key), item)
        except LedgerUnavailable as exc:  # the queue is full: overloaded
            raise DatabaseUnavailable(str(exc)) from exc

    async def record_advice(self, item: AdviceItem) -> Decision:
        try:
            return await self.advices.submit(_key_text(item.key), item)
        except LedgerUnavailable as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def claim_routed(self, item: RoutedItem) -> RoutedClaim:
        """Claim a 0200's key for the card-network path (raises DatabaseUnavailable)."""
        try:
            return await self.routed.submit(_key_text(item.key), item)
        except LedgerUnavailable as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def record_routed(
        self, key: MessageKey, token: str, response_code: str,
        fields: Mapping[str, str] | None, effect: Mapping[str, Any] | None,
    ) -> str:
        """Record a routed 0200's decision (``recorded``, or ``lost`` when the claim is no
        longer this attempt's)."""
        args = (key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id, token,
                response_code, json.dumps(dict(fields)) if fields else None,
                json.dumps(dict(effect)) if effect else None)  # fmt: skip

        async def call(connection: asyncpg.Connection) -> str:
            return str(await connection.fetchval(NETWORK_RECORD_QUERY, *args))

        result: str = await self._run_retrying(call)
        return result

    async def void(self, items: Sequence[OwedVoid], *, timeout_s: float) -> list[str]:
        """Record 91 for these requests and undo their effect (spec 5.6, 10), atomically.

        One result per item, in the order given (see ``auth_void`` in migration 0320)."""
        order = sorted(range(len(items)), key=lambda n: items[n].key)
        ordered = [items[n] for n in order]
        columns = [
            [i.terminal_id for i in ordered],
            [i.stan for i in ordered],
            [i.transmission_dt for i in ordered],
            [i.acquirer_id for i in ordered],
            [i.fingerprint for i in ordered],
            [i.processing_code for i in ordered],
            [i.amount_minor for i in ordered],
            [i.token for i in ordered],
        ]

        async def call(connection: asyncpg.Connection) -> list[str]:
            rows = await connection.fetch(VOID_QUERY, *columns)
            return [str(row[0]) for row in rows]

        results: list[str] = await self._run_retrying(call, timeout_s)
        answers = [""] * len(items)
        for position, result in zip(order, results, strict=True):
            answers[position] = result
        return answers

    async def _flush_financial(self, batch: Sequence[FinancialItem]) -> list[Decision | Exception]:
        order = sorted(range(len(batch)), key=lambda n: _key_order(batch[n].key))
        ordered = [batch[n] for n in order]
        columns = financial_columns(ordered)
        tries_max = self._pin_tries_max

        async def call(connection: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await connection.fetch(FINANCIAL_QUERY, *columns, tries_max))

        rows = await self._timed(call, "0200", len(batch))
        return _in_request_order(order, rows)

    async def _timed(self, call: Any, message_class: str, size: int) -> list[asyncpg.Record]:
        """One batch call, observed as one commit (stage ``ledger_commit``) of ``size``."""
        started = time.perf_counter()
        rows: list[asyncpg.Record] = await self._run_retrying(call)
        if self._metrics is not None:
            self._metrics.observe_stage("ledger_commit", time.perf_counter() - started)
            self._metrics.observe_batch(message_class, size)
        return rows

    async def _run_retrying(self, call: Any, timeout_s: float | None = None) -> Any:
        """``call`` in one transaction, again when PostgreSQL chose it as a deadlock victim
        or a serialization failure: the transaction rolled back whole, so it is safe."""
        for attempt in range(retries_max + 1):
            try:
                if timeout_s is None:
                    return await self._db.run(call)
                return await self._db.run(call, timeout_s=timeout_s)
            except RETRYABLE as exc:
                if attempt == retries_max:
                    raise DatabaseUnavailable(f"batch kept failing: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    async def _flush_advices(self, batch: Sequence[AdviceItem]) -> list[Decision | Exception]:
        order = sorted(
            range(len(batch)),
            key=lambda n: (batch[n].key.terminal_id, batch[n].original.stan,
                           batch[n].original.transmission_dt, batch[n].original.acquirer_id),
        )
        ordered = [batch[n] for n in order]
        columns = advice_columns(ordered)

        async def call(connection: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await connection.fetch(ADVICE_QUERY, *columns))

        rows = await self._timed(call, "advice", len(batch))
        return _in_request_order(order, rows)

    async def _flush_routed(self, batch: Sequence[RoutedItem]) -> list[RoutedClaim | Exception]:
        order = sorted(range(len(batch)), key=lambda n: _key_order(batch[n].key))
        ordered = [batch[n] for n in order]

        async def call(connection: asyncpg.Connection) -> list[asyncpg.Record]:
            return await _flush_routed_rows(connection, ordered)

        rows: list[asyncpg.Record] = await self._run_retrying(call)
        if len(rows) != len(order):
            raise RuntimeError(f"claim returned {len(rows)} rows for {len(order)} requests")
        results: list[RoutedClaim | Exception] = [RuntimeError("no row")] * len(order)
        for position, row in zip(order, rows, strict=True):
            results[position] = _routed_claim(row)
        return results


async def _flush_routed_rows(
    connection: asyncpg.Connection, ordered: Sequence[RoutedItem]
) -> list[asyncpg.Record]:
    return list(await connection.fetch(
        NETWORK_CLAIM_QUERY,
        [i.key.terminal_id for i in ordered], [i.key.stan for i in ordered],
        [i.key.transmission_dt for i in ordered], [i.key.acquirer_id for i in ordered],
        [i.fingerprint for i in ordered], [i.processing_code for i in ordered],
        [i.amount_minor for i in ordered], [i.token for i in ordered],
        [i.pan_hash for i in ordered], [i.rrn for i in ordered],
    ))  # fmt: skip


def _routed_claim(row: asyncpg.Record) -> RoutedClaim:
    fields = row["out_fields"]
    return RoutedClaim(
        row["out_status"], row["out_code"], row["out_record"], row["out_created"],
        json.loads(fields) if fields is not None else None,
    )  # fmt: skip


def _in_request_order(
    order: list[int], rows: Sequence[asyncpg.Record]
) -> list[Decision | Exception]:
    if len(rows) != len(order):
        raise RuntimeError(f"batch returned {len(rows)} rows for {len(order)} requests")
    results: list[Decision | Exception] = [RuntimeError("no row")] * len(order)
    for position, row in zip(order, rows, strict=True):
        results[position] = decision_from_row(row)
    return results


def _key_text(key: MessageKey) -> str:
    return ":".join(
        (key.message_class, key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id)
    )
