"""Store-and-forward on a real PostgreSQL: enqueue once per kind, repeat until acknowledged
(attempt numbers grow, fields rebuilt from the row), two senders never deliver one advice
twice, nothing is sent while the network is down."""

from __future__ import annotations

import datetime as dt

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.db.runtime import Database
from switch.networks import store_forward, transactions
from switch.networks.base import AdviceKind, NetworkAdvice, NetworkError, NetworkStatus
from switch.networks.store_forward import QueuedAdvice, RetryPolicy, StoreForward


async def _transaction(db: Database, stan: str = "000001") -> int:
    return await transactions.open_transaction(db, transactions.NewTransaction(
        network="demo", terminal_id="ATM001", stan=stan, transmission_dt="0314092653",
        acquirer_id="00000123456", transmitted_at=dt.datetime.now(dt.UTC),
        pan_encrypted="token", pan_masked="499999******0017", expiry="3012",
        processing_code="010000", amount_minor=10_000, currency="156", from_account=None,
        to_account=None, acceptor={},
    ))


async def _advice_queued(db: Database, kind: AdviceKind, stan: str = "000001") -> None:
    """A network transaction with one advice of ``kind`` (100.00) queued for it."""
    txn = await _transaction(db, stan=stan)
    await store_forward.enqueue(db, transaction_id=txn, network="demo", kind=kind,
                                amount_minor=10_000)


async def _build(queued: QueuedAdvice) -> NetworkAdvice:
    """A stand-in for the acquirer's builder: records which attempt each send was."""
    return queued  # type: ignore[return-value]


async def test_enqueue_is_once_per_kind(db: Database) -> None:
    txn = await _transaction(db)
    first = await store_forward.enqueue(db, transaction_id=txn, network="demo",
                                        kind=AdviceKind.REVERSAL, amount_minor=10_000)
    again = await store_forward.enqueue(db, transaction_id=txn, network="demo",
                                        kind=AdviceKind.REVERSAL, amount_minor=5_000)
    other = await store_forward.enqueue(db, transaction_id=txn, network="demo",
                                        kind=AdviceKind.COMPLETION, amount_minor=10_000)
    assert (first, again, other) == (True, False, True)
    assert await store_forward.queue_depth(db, "demo") == 2


async def test_repeated_until_acknowledged_then_never_again(db: Database) -> None:
    await _advice_queued(db, AdviceKind.COMPLETION)
    attempts: list[int] = []

    async def send(advice: NetworkAdvice) -> None:
        attempts.append(advice.attempt)
        if len(attempts) < 3:
            raise NetworkError("not acknowledged")

    sender = StoreForward(db, "demo", send=send, build=_build,
                          status=lambda: NetworkStatus.SIGNED_ON,
                          retry=RetryPolicy(0.01, 0.02), poll_interval_s=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        with trio.fail_after(5):
            while sender.delivered < 1:
                await trio.sleep(0.01)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert attempts == [0, 1, 2]
    assert await store_forward.queue_depth(db, "demo") == 0
    row = await db.fetchrow("SELECT state, attempts FROM network_advices")
    assert (row["state"], row["attempts"]) == ("acknowledged", 3)


async def test_two_senders_deliver_each_advice_exactly_once(db: Database) -> None:
    for index in range(20):
        await _advice_queued(db, AdviceKind.REVERSAL, stan=f"{index + 1:06d}")
    delivered: list[int] = []

    async def send(advice: NetworkAdvice) -> None:
        await trio.sleep(0.005)
        delivered.append(advice.advice_id)

    senders = [StoreForward(db, "demo", send=send, build=_build,
                            status=lambda: NetworkStatus.SIGNED_ON, poll_interval_s=0.01)
               for _ in range(2)]
    async with trio.open_nursery() as nursery:
        for sender in senders:
            await nursery.start(sender.run)
        with trio.fail_after(10):
            while len(delivered) < 20:
                await trio.sleep(0.01)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == 20


async def test_nothing_is_sent_while_the_network_is_down(db: Database) -> None:
    await _advice_queued(db, AdviceKind.REVERSAL)
    sent: list[int] = []

    async def send(advice: NetworkAdvice) -> None:
        sent.append(advice.attempt)

    status = [NetworkStatus.LINK_DOWN]
    sender = StoreForward(db, "demo", send=send, build=_build, status=lambda: status[0],
                          poll_interval_s=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        await trio.sleep(0.2)
        assert sent == []
        status[0] = NetworkStatus.SIGNED_ON
        with trio.fail_after(5):
            while not sent:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert sent == [0]  # the first transmission: not counted as a repeat


@settings(max_examples=100)
@given(st.floats(min_value=0.01, max_value=10), st.floats(min_value=10, max_value=600),
       st.integers(min_value=1, max_value=10_000))
def test_retry_delay_is_bounded_and_never_shrinks(low: float, high: float, attempts: int) -> None:
    policy = RetryPolicy(low, high)
    assert low <= policy.delay_after(attempts) <= high
    assert policy.delay_after(attempts + 1) >= policy.delay_after(attempts)
