"""The correctness gaps of the old authorization path (issue 10, item 6), each against a running
switch over real TCP and a real PostgreSQL: what the terminal is answered, and what the ledger
and the stored decision say afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from switch.authorization.caches import MISSING
from switch.protocol.field48 import decode_tags
from switch.session import Session
from tests.authorization.harness import CARD_MAIN, CARD_SECOND, running_switch
from tests.authorization.test_e2e_flows import lock_account_row

T = TypeVar("T")


async def _decision(db: Any, stan: str, message_class: str = "0200") -> Any:
    return await db.fetchrow(
        "SELECT response_code, token, hold_id FROM auth_messages"
        " WHERE message_class = $1 AND stan = $2",
        message_class, stan,
    )


async def test_a_repeat_answered_with_the_stored_decision_blocks_the_first_void(
    pg_dsn: str,
) -> None:
    """The stored answer cannot be overwritten by a late void: a repeat that got the stored 00
    leaves the decision and its token as they were, but notes that the decision was handed
    out again, so the first attempt's void (it answered 91) finds nothing to undo."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        approved, fields = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        first = await _decision(switch.db, fields["11"])
        repeat = await atm.send("0200", fields)
        assert dict(repeat.fields) == dict(approved.fields)
        second = await _decision(switch.db, fields["11"])
        assert second["token"] == first["token"]  # a repeat never changes the original
        rows = await switch.db.fetch(
            "SELECT * FROM auth_void(ARRAY['ATM001'], ARRAY[$1], ARRAY[$2], ARRAY[$3],"
            " ARRAY['x'], ARRAY['010000'], ARRAY[100000::bigint], ARRAY[$4])",
            fields["11"], fields["7"], fields["32"].zfill(11), first["token"],
        )
        assert [row[0] for row in rows] == ["answered_to_repeat"]
        assert (await _decision(switch.db, fields["11"]))["response_code"] == "00"
        assert await switch.balance("ACC1") == (1_370_000, 1_270_000, 100_000)


async def test_a_void_records_91_and_releases_the_hold_in_one_call(pg_dsn: str) -> None:
    """Spec 10, "a 91 never debits": the void of an approved withdrawal leaves 91 stored and
    the hold released, together; a repeat then gets 91 and a completion moves nothing."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        approved, fields = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        token = (await _decision(switch.db, fields["11"]))["token"]
        rows = await switch.db.fetch(
            "SELECT * FROM auth_void(ARRAY['ATM001'], ARRAY[$1], ARRAY[$2], ARRAY[$3],"
            " ARRAY['x'], ARRAY['010000'], ARRAY[100000::bigint], ARRAY[$4])",
            fields["11"], fields["7"], fields["32"].zfill(11), token,
        )
        assert [row[0] for row in rows] == ["voided"]
        hold = await switch.db.fetchrow(
            "SELECT h.state FROM ledger_holds h JOIN auth_messages m ON m.hold_id = h.hold_id"
            " WHERE m.stan = $1 AND m.message_class = '0200'", fields["11"],
        )
        assert hold["state"] == "released"
        assert (await atm.send("0200", fields)).fields["39"] == "91"
        assert (await atm.complete(fields)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)


async def test_the_message_key_is_the_only_idempotency_key(pg_dsn: str) -> None:
    """Engine v3's minimal write set: an approved withdrawal writes no second idempotency
    record in the ledger (its message key already makes the hold happen once), so a ledger key
    left with other content (records purged on one side only, the v2 failure that was
    answered 96, then 94) cannot decline the request; a repeat still gets the original answer
    and places nothing twice."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        fields = atm.request_fields(CARD_MAIN, "010000", 100_000)
        key = f"atm:0200:ATM001:{fields['11']}:{fields['7']}:{fields['32'].zfill(11)}"
        await switch.db.execute(
            "INSERT INTO ledger_idempotency (key, operation, fingerprint, status)"
            " VALUES ($1, 'hold', 'hold:other-content', 'approved')", key,
        )
        response = await atm.send("0200", fields)
        assert response.fields["39"] == "00"
        assert dict((await atm.send("0200", fields)).fields) == dict(response.fields)
        assert await switch.db.fetchval("SELECT count(*) FROM ledger_idempotency") == 1
        assert await switch.db.fetchval("SELECT count(*) FROM ledger_holds") == 1
        assert await switch.balance("ACC1") == (1_370_000, 1_270_000, 100_000)


async def test_late_completion_after_presumed_capture_posts_the_difference(pg_dsn: str) -> None:
    """Spec 10: a 0220 for 600.00 after the 1,000.00 hold was captured as presumed dispensed
    gives 400.00 back as a correcting entry; a second completion changes nothing."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        approved, fields = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert await switch.ledger.sweep_expired(later) == 1  # presumed dispensed
        assert await switch.balance("ACC1") == (1_270_000, 1_270_000, 0)
        assert (await atm.complete(fields, 60_000)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_310_000, 1_310_000, 0)
        assert (await atm.complete(fields, 60_000)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_310_000, 1_310_000, 0)
        await switch.ledger.check_invariants()


async def test_fallback_answers_use_only_the_connections_own_key(pg_dsn: str) -> None:
    """Spec 10: a 91/96 the core builds is MAC'd with the TAK of the terminal signed on over
    that connection; a request naming another terminal in 41 gets no MAC from that key."""
    async with running_switch(pg_dsn) as switch:
        await switch.atm("ATM001")
        await switch.atm("ATM002")
        service = switch.authorization
        own = Session(connection_id=1, peer="test")
        own.terminal_id, own.signed_on = "ATM002", True
        request = _message("ATM001")
        assert await service.response_mac(request, own, b"0210...") is None
        stranger = Session(connection_id=2, peer="test")
        assert await service.response_mac(request, stranger, b"0210...") is None
        mine = Session(connection_id=3, peer="test")
        mine.terminal_id, mine.signed_on = "ATM001", True
        assert await service.response_mac(request, mine, b"0210...") is not None


def _message(terminal_id: str) -> Any:
    from switch.protocol.message import Message

    return Message("0200", {"41": terminal_id.ljust(8), "11": "000001"})


async def test_one_bad_request_does_not_stall_its_batch(pg_dsn: str) -> None:
    """A card whose account row is missing (a data error: 96) shares batches with good
    requests; they are approved, in one pass, and only it is declined."""
    async with running_switch(pg_dsn) as switch:
        await switch.db.execute("UPDATE cards SET account_id = 'NO-SUCH' WHERE pan_masked LIKE"
                                " '622848%0025'")
        switch.authorization.cards.clear()
        atms = [await switch.atm(t) for t in ("ATM001", "ATM002", "ATM003")]
        codes: dict[str, list[str]] = {"good": [], "bad": []}

        async def run(atm: Any, card: Any, label: str) -> None:
            for _ in range(4):
                response, _ = await atm.withdraw(card, 10_000, pin="4321" if label == "bad"
                                                 else "1234")
                codes[label].append(response.fields["39"])

        batches_before = switch.authorization.batches.financial.batches_sent
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, atms[0], CARD_MAIN, "good")
            nursery.start_soon(run, atms[1], CARD_SECOND, "bad")
            nursery.start_soon(run, atms[2], CARD_MAIN, "good")
        assert codes["good"] == ["00"] * 8 and codes["bad"] == ["96"] * 4
        # Every request went in one batch call (no one-by-one rerun after the bad one).
        sent = switch.authorization.batches.financial.batches_sent - batches_before
        assert sent <= 12


async def answer_of_a_killed_batch(
    switch: Any, batch_function: str, send: Callable[[], Awaitable[T]]
) -> T:
    """What ``send`` is answered when PostgreSQL drops its batch's connection mid-statement:
    ACC1 is locked so the batch (``batch_function``) waits, then its backend is terminated."""
    result: list[T] = []

    async def sent() -> None:
        result.append(await send())

    async with trio.open_nursery() as nursery:
        await nursery.start(lock_account_row, switch.db, "ACC1", 1.5)
        nursery.start_soon(sent)
        await trio.sleep(0.3)
        await switch.db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE query LIKE '%{batch_function}%' AND pid <> pg_backend_pid()"
        )
    return result[0]


async def test_a_connection_lost_mid_statement_is_answered_91(pg_dsn: str) -> None:
    """PostgreSQL drops the batch's connection while the statement runs (the backend is
    terminated): the terminal gets 91, never 96, and nothing of it stays."""
    async with running_switch(pg_dsn, deadline_s=3.0) as switch:
        atm = await switch.atm("ATM001")
        response, fields = await answer_of_a_killed_batch(
            switch, "auth_financial_batch", lambda: atm.withdraw(CARD_MAIN, 100_000))
        assert response.fields["39"] == "91"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        # The repeat once the database is back gets the recorded 91 (spec 5.6), at once.
        repeat = await atm.send("0200", fields)
        assert repeat.fields["39"] == "91"


async def test_a_cut_off_advice_leaves_nothing_that_delays_its_repeat(pg_dsn: str) -> None:
    """An advice whose batch dies with its connection is answered 91 and leaves no pending
    claim behind: its repeat right after is recorded and answered 00, and captures once."""
    async with running_switch(pg_dsn, deadline_s=3.0) as switch:
        atm = await switch.atm("ATM001")
        approved, fields = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        from terminals.hostlink.financial import completion_advice

        advice = completion_advice(fields, stan=atm.next_stan(), now=dt.datetime.now(dt.UTC),
                                   final_amount_minor=100_000)
        advice_response = await answer_of_a_killed_batch(
            switch, "auth_advice_batch", lambda: atm.send("0220", advice))
        assert advice_response.fields["39"] == "91"
        started = trio.current_time()
        repeat = await atm.send("0221", advice)
        assert repeat.fields["39"] == "00"
        assert trio.current_time() - started < 1.0
        assert await switch.balance("ACC1") == (1_270_000, 1_270_000, 0)


async def test_payee_inquiry_has_no_field_54_and_transfers_obey_their_limits(
    pg_dsn: str,
) -> None:
    """Spec 10: a payee name inquiry reveals only 48/PN; a transfer above transfer_max, or
    above daily_transfer_max with the day's earlier transfers, is 61; declined transfers
    count toward nothing."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        inquiry = await atm.send("0200", atm.request_fields(CARD_MAIN, "390000", 0,
                                                            pin=None, to_account="ACC2"))
        assert inquiry.fields["39"] == "00" and "54" not in inquiry.fields
        assert "PN" in decode_tags(inquiry.fields["48"])
        await switch.db.execute(
            "UPDATE cards SET limits = '{\"transfer_max\": 300000, \"daily_transfer_max\": 500000}'"
            " WHERE pan_masked LIKE '622848%0017'"
        )
        pan_hash = await _pan_hash(switch, CARD_MAIN)
        with trio.fail_after(5):  # the NOTIFY drops the cached card
            while switch.authorization.cards.peek(pan_hash) is not MISSING:
                await trio.sleep(0.01)

        async def transfer(amount: int) -> str:
            fields = atm.request_fields(CARD_MAIN, "400000", amount,
                                        from_account="ACC1", to_account="ACC2")
            return str((await atm.send("0200", fields)).fields["39"])

        assert await transfer(300_001) == "61"  # transfer_max
        assert await transfer(300_000) == "00"
        assert await transfer(250_000) == "61"  # 300,000 + 250,000 > daily 500,000
        assert await transfer(200_000) == "00"  # the declined one counted nothing
        assert await switch.balance("ACC2") == (1_000_000, 1_000_000, 0)


async def _pan_hash(switch: Any, card: Any) -> str:
    return str(await switch.hsm.pan_lookup_hash(card.pan))

