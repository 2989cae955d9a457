"""Store-and-forward: advices owed to a card network, kept in PostgreSQL and repeated until the
network acknowledges them -- exactly once.

* **Durable**: an advice is a row in ``network_advices`` before anyone is told it will be sent
  (the terminal's ``00`` to its own advice is recorded after the row exists).
* **Once per kind**: ``UNIQUE (transaction_id, kind)``; enqueueing twice is a no-op, so a
  terminal's 0221, or a second reversal of the same transaction, adds nothing.
* **Repeated until acknowledged**: the first transmission is a 0220/0420, every later one the
  repeat MTI with the same fields (the plug-in derives them from the durable row). Between
  tries the delay doubles, bounded.
* **One sender**: a sender takes an advice by pushing its ``next_attempt_at`` past the time one
  attempt can take (``FOR UPDATE SKIP LOCKED``), so two switch nodes never send it at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import trio

from switch.db.runtime import Database, DatabaseUnavailable
from switch.networks.base import AdviceKind, NetworkAdvice, NetworkError, NetworkStatus
from switch.networks.transactions import TransactionRow, row_to_transaction

log = logging.getLogger("atm.networks.saf")

# An attempt (send + wait for the acknowledgement) must end within this; the advice is leased
# to its sender for this long plus a margin.
attempt_timeout_s_default: Final = 5.0
lease_margin_s: Final = 2.0
# How often an idle sender looks at the queue (it is also woken on every enqueue).
poll_interval_s_default: Final = 1.0
# Past this many doublings every delay is the maximum anyway.
retry_doublings_max: Final = 62


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before repeat n (n >= 1): min_s * 2**(n-1), at most max_s."""

    min_s: float = 1.0
    max_s: float = 60.0

    def delay_after(self, attempts: int) -> float:
        # The exponent is capped: a long-queued advice must not overflow a float.
        exponent = min(max(0, attempts - 1), retry_doublings_max)
        return float(min(self.max_s, self.min_s * 2.0**exponent))


@dataclass(frozen=True, slots=True)
class QueuedAdvice:
    advice_id: int
    kind: AdviceKind
    attempt: int  # transmissions before this one
    created_at: dt.datetime
    amount_minor: int
    actual_amount_minor: int | None
    reason_code: str | None
    transaction: TransactionRow


async def enqueue(
    db: Database,
    *,
    transaction_id: int,
    network: str,
    kind: AdviceKind,
    amount_minor: int,
    actual_amount_minor: int | None = None,
    reason_code: str | None = None,
) -> bool:
    """Queue an advice; False when one of this kind was already queued for the transaction."""
    advice_id = await db.fetchval(
        "INSERT INTO network_advices (transaction_id, network, kind, amount_minor,"
        " actual_amount_minor, reason_code) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (transaction_id, kind) DO NOTHING RETURNING advice_id",
        transaction_id, network, kind.value, amount_minor, actual_amount_minor, reason_code,
    )
    return advice_id is not None


async def take_due(db: Database, network: str, lease_s: float) -> QueuedAdvice | None:
    """The oldest due advice of ``network``, leased to the caller (attempts counted)."""

    async def work(connection: asyncpg.Connection) -> QueuedAdvice | None:
        async with connection.transaction():
            row = await connection.fetchrow(
                "UPDATE network_advices SET attempts = attempts + 1,"
                " next_attempt_at = now() + make_interval(secs => $2)"
                " WHERE advice_id = (SELECT advice_id FROM network_advices"
                "   WHERE network = $1 AND state = 'queued' AND next_attempt_at <= now()"
                "   ORDER BY advice_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " RETURNING *",
                network, lease_s,
            )
            if row is None:
                return None
            original = await connection.fetchrow(
                "SELECT * FROM network_transactions WHERE transaction_id = $1",
                row["transaction_id"],
            )
        return QueuedAdvice(
            advice_id=row["advice_id"],
            kind=AdviceKind(row["kind"]),
            attempt=row["attempts"] - 1,
            created_at=row["created_at"],
            amount_minor=row["amount_minor"],
            actual_amount_minor=row["actual_amount_minor"],
            reason_code=row["reason_code"],
            transaction=row_to_transaction(original),
        )

    result: QueuedAdvice | None = await db.run(work)
    return result


async def acknowledge(db: Database, advice_id: int) -> None:
    await db.execute(
        "UPDATE network_advices SET state = 'acknowledged', acknowledged_at = now(),"
        " last_error = NULL WHERE advice_id = $1",
        advice_id,
    )


async def retry_later(db: Database, advice_id: int, delay_s: float, error: str) -> None:
    await db.execute(
        "UPDATE network_advices SET next_attempt_at = now() + make_interval(secs => $2),"
        " last_error = $3 WHERE advice_id = $1 AND state = 'queued'",
        advice_id, delay_s, error[:200],
    )


async def queue_depth(db: Database, network: str) -> int:
    value = await db.fetchval(
        "SELECT count(*) FROM network_advices WHERE network = $1 AND state = 'queued'", network
    )
    return int(value)


AdviceSender = Callable[[NetworkAdvice], Awaitable[None]]
AdviceBuilder = Callable[[QueuedAdvice], Awaitable[NetworkAdvice]]


class StoreForward:
    """The sender for one network: takes due advices in order and delivers them."""

    def __init__(
        self,
        db: Database,
        network: str,
        *,
        send: AdviceSender,
        build: AdviceBuilder,
        status: Callable[[], NetworkStatus],
        retry: RetryPolicy | None = None,
        attempt_timeout_s: float = attempt_timeout_s_default,
        poll_interval_s: float = poll_interval_s_default,
    ) -> None:
        self._db = db
        self.network = network
        self._send = send
        self._build = build
        self._status = status
        self.retry = retry or RetryPolicy()
        self.attempt_timeout_s = attempt_timeout_s
        self.poll_interval_s = poll_interval_s
        self._wake = trio.Event()
        self.delivered = 0  # advices acknowledged by this sender (for tests / metrics)

    def wake(self) -> None:
        """A new advice was queued: look at once."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            delivered_any = False
            if self._status() is NetworkStatus.SIGNED_ON:
                try:
                    delivered_any = await self.deliver_one()
                except DatabaseUnavailable as exc:
                    log.warning("store-and-forward: database unavailable", extra={
                        "network": self.network, "reason": repr(exc)})
            if not delivered_any:
                with trio.move_on_after(self.poll_interval_s):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def deliver_one(self) -> bool:
        """Send the oldest due advice once; True if there was one to send."""
        lease_s = self.attempt_timeout_s + lease_margin_s
        queued = await take_due(self._db, self.network, lease_s)
        if queued is None:
            return False
        advice = await self._build(queued)
        try:
            with trio.fail_after(self.attempt_timeout_s):
                await self._send(advice)
        except (NetworkError, trio.TooSlowError) as exc:
            delay = self.retry.delay_after(queued.attempt + 1)
            log.info("advice not acknowledged", extra=_describe(queued) | {"reason": repr(exc)})
            await retry_later(self._db, queued.advice_id, delay, repr(exc))
            return True
        await acknowledge(self._db, queued.advice_id)
        self.delivered += 1
        log.info("advice delivered", extra={  # no PAN at all: ids, kind and attempt only
            "reason": f"{self.network} advice {queued.advice_id} ({queued.kind.value}, "
                      f"transaction {queued.transaction.transaction_id}, "
                      f"attempt {queued.attempt + 1})"})
        return True


def _describe(queued: QueuedAdvice) -> dict[str, Any]:
    return {
        "advice_id": queued.advice_id,
        "kind": queued.kind.value,
        "attempt": queued.attempt,
        "transaction_id": queued.transaction.transaction_id,
    }
