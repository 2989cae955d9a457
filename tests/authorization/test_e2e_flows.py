"""The flows of spec 5 end to end over TCP against the real PostgreSQL: inquiries, transfer,
PIN change, deposit, completion/reversal variants, duplicates and repeats, the same card at two
terminals at once, and the deadline of 5.6 with a slow ledger."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import trio

from switch.protocol.field48 import decode_tags
from terminals.hostlink.financial import completion_advice, encode_request
from tests.authorization.harness import (
    CARD_MAIN,
    CARD_SECOND,
    running_switch,
)


async def test_inquiries_transfer_and_pin_change(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        balance = await atm.send("0200", atm.request_fields(CARD_MAIN, "311000", 0))
        assert balance.fields["39"] == "00"
        assert balance.fields["54"] == "1001156C000001370000" "1002156C000001370000"
        payee = await atm.send("0200", atm.request_fields(CARD_MAIN, "390000", 0, pin=None,
                                                          to_account="ACC2"))
        assert payee.fields["39"] == "00" and payee.fields["103"] == "ACC2"
        assert decode_tags(payee.fields["48"])["PN"] == "S**********"  # "Smith Jones"
        transfer_request = atm.request_fields(CARD_MAIN, "401020", 70_000, from_account="ACC1",
                                              to_account="ACC2")
        transfer = await atm.send("0200", transfer_request)
        assert transfer.fields["39"] == "00"
        assert transfer.fields["54"] == "1001156C000001300000" "1002156C000001300000"
        assert await switch.balance("ACC2") == (570_000, 570_000, 0)
        other = await switch.atm("ATM002")
        name = await other.send("0200", other.request_fields(CARD_SECOND, "390000", 0, pin=None,
                                                             to_account="ACC1"))
        assert decode_tags(name.fields["48"])["PN"] == "王**"
        statement = await atm.send("0200", atm.request_fields(CARD_MAIN, "380000", 0))
        lines = decode_tags(statement.fields["48"])["MS"].split("|")
        today = dt.datetime.now(dt.UTC).strftime("%y%m%d")
        assert lines[0].startswith(today + "D000000070000")
        assert len(lines) == 2 and lines[1][6:19] == "C000001370000"
        # PIN change: the new PIN works at once, the old one no longer does.
        change = atm.request_fields(CARD_MAIN, "900000", 0,
                                    tags={"NP": atm.keys.pin_block("8642", CARD_MAIN.pan)})
        assert (await atm.send("0200", change)).fields["39"] == "00"
        old, _ = await atm.withdraw(CARD_MAIN, 10_000)
        assert old.fields["39"] == "55"
        new, _ = await atm.withdraw(CARD_MAIN, 10_000, pin="8642")
        assert new.fields["39"] == "00"
        # A transfer's reversal (0420) posts the correcting entry: both accounts as before.
        reversal, _ = await atm.reverse(transfer_request, reason="17")
        assert reversal.fields["39"] == "00"
        assert await switch.balance("ACC2") == (500_000, 500_000, 0)
        assert await switch.balance("ACC1") == (1_370_000, 1_360_000, 10_000)


async def test_reversal_variants(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        # Full reversal releases the hold; its repeat (0421) and a duplicate change nothing.
        approved, original = await atm.withdraw(CARD_MAIN, 100_000)
        assert approved.fields["39"] == "00"
        reversal, advice = await atm.reverse(original, reason="68")
        assert reversal.mti == "0430" and reversal.fields["39"] == "00"
        assert set(reversal.fields) >= {"3", "4", "7", "11", "32", "37", "41", "49", "90", "15"}
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        assert (await atm.send("0421", advice)).fields == reversal.fields
        assert (await atm.send("0420", advice)).fields == reversal.fields
        assert (await atm.complete(original)).fields["39"] == "00"  # too late: no effect
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        # The original again: the stored 00, and still no second hold.
        again = await atm.send("0200", original)
        assert again.fields == approved.fields
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        # Partial dispense: only the field 95 amount is debited.
        _, partial = await atm.withdraw(CARD_MAIN, 200_000)
        reversal, _ = await atm.reverse(partial, reason="32", dispensed=50_000)
        assert reversal.fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_320_000, 1_320_000, 0)
        # Reversal after completion: a correcting entry gives the money back.
        _, completed = await atm.withdraw(CARD_MAIN, 100_000)
        assert (await atm.complete(completed)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_220_000, 1_220_000, 0)
        await atm.reverse(completed, reason="22")
        assert await switch.balance("ACC1") == (1_320_000, 1_320_000, 0)
        # A smaller completion releases the rest; its 0221 repeat has no further effect.
        _, smaller = await atm.withdraw(CARD_MAIN, 100_000)
        advice = completion_advice(smaller, stan=atm.next_stan(), now=dt.datetime.now(dt.UTC),
                                   final_amount_minor=60_000)
        first = await atm.complete(smaller, fields=advice)
        assert first.fields["39"] == "00"
        assert (await atm.complete(smaller, mti="0221", fields=advice)).fields == first.fields
        assert await switch.balance("ACC1") == (1_260_000, 1_260_000, 0)


async def test_unknown_original_then_late_original_is_94(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        original = atm.request_fields(CARD_MAIN, "010000", 100_000)
        reversal, _ = await atm.reverse(original, reason="68")
        assert reversal.fields["39"] == "00"
        late = await atm.send("0200", original)
        assert late.fields["39"] == "94"
        assert (await atm.send("0200", original)).fields["39"] == "94"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)


async def test_deposit_pending_until_completion(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        deposit = atm.request_fields(CARD_MAIN, "210010", 33_300)
        response = await atm.send("0200", deposit)
        assert response.fields["39"] == "00"
        assert response.fields["54"] == "0001156C000001370000" "0002156C000001370000"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)  # pending: no change
        assert (await atm.complete(deposit)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_403_300, 1_403_300, 0)
        # A reversed deposit is released: nothing posted.
        other = atm.request_fields(CARD_MAIN, "210000", 10_000)
        assert (await atm.send("0200", other)).fields["39"] == "00"
        await atm.reverse(other, reason="22")
        assert (await atm.complete(other)).fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_403_300, 1_403_300, 0)


async def test_same_card_at_two_terminals_at_once(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atms = [await switch.atm(terminal) for terminal in ("ATM001", "ATM002", "ATM003")]
        codes: list[str] = []

        async def withdraw_many(atm: Any) -> None:
            for _ in range(4):
                response, _ = await atm.withdraw(CARD_SECOND, 50_000, pin="4321")
                codes.append(response.fields["39"])

        async with trio.open_nursery() as nursery:
            for atm in atms:
                nursery.start_soon(withdraw_many, atm)
        # 5,000.00 on the account: exactly ten 500.00 withdrawals fit.
        assert sorted(codes) == ["00"] * 10 + ["51"] * 2
        assert await switch.balance("ACC2") == (500_000, 0, 500_000)


async def lock_account_row(
    db: Any, account_id: str, seconds: float, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Hold the account's row lock in another transaction for ``seconds`` (a slow database)."""
    locked = trio.Event()
    token = trio.lowlevel.current_trio_token()

    async def hold(connection: Any) -> None:
        async with connection.transaction():
            await connection.execute(
                "SELECT 1 FROM ledger_accounts WHERE account_id = $1 FOR UPDATE", account_id
            )
            token.run_sync_soon(locked.set)
            await asyncio.sleep(seconds)

    async def run() -> None:
        await db.run(hold, timeout_s=seconds + 5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await locked.wait()
        task_status.started()


async def test_deadline_answers_91_and_leaves_no_effect(pg_dsn: str) -> None:
    """Spec 5.6 / 10: PostgreSQL itself is slow (another transaction holds the account's row
    lock past the deadline), so the 0200's batch commits its hold only after the terminal was
    answered 91; the void then records 91 and releases that hold in one transaction, and a
    repeat, a reversal and the balance all agree that nothing happened."""
    async with running_switch(pg_dsn, deadline_s=1.5) as switch:
        atm = await switch.atm("ATM001")
        async with trio.open_nursery() as nursery:
            await nursery.start(lock_account_row, switch.db, "ACC1", 2.5)
            started = trio.current_time()
            response, original = await atm.withdraw(CARD_MAIN, 100_000)
            assert response.fields["39"] == "91"
            assert trio.current_time() - started < 1.5
        with trio.fail_after(10):  # the batch goes on and commits its 00 with the hold...
            while not await switch.db.fetchval(
                "SELECT count(*) FROM auth_messages WHERE message_class = '0200'"
                " AND stan = $1 AND response_code IS NOT NULL", original["11"]
            ):
                await trio.sleep(0.05)
            while len(switch.authorization.financial.journal):  # ...and the owed void undoes it
                await switch.authorization.financial.retry_voids()
                await trio.sleep(0.05)
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        repeat = await atm.send("0200", original)
        assert repeat.fields["39"] == "91"
        reversal, _ = await atm.reverse(original, reason="68")
        assert reversal.fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        fresh, _ = await atm.withdraw(CARD_MAIN, 100_000)
        assert fresh.fields["39"] == "00"


async def test_aes_terminal_key_exchange_pin_and_cmac(pg_dsn: str) -> None:
    """Optional AES terminals: TR-31 D keys under an AES TMK, AES-CMAC, format 4 PIN in 48/PB."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATMAES1")
        assert atm.keys.key_type == "aes" and atm.keys.tak is not None
        approved, fields = await atm.withdraw(CARD_MAIN, 10_000)
        assert "52" not in fields and "PB" in decode_tags(fields["48"])
        assert approved.fields["39"] == "00"
        wrong, _ = await atm.withdraw(CARD_MAIN, 10_000, pin="0000")
        assert wrong.fields["39"] == "55"
        change = atm.request_fields(CARD_MAIN, "900000", 0,
                                    tags={"NP": atm.keys.pin_block("2468", CARD_MAIN.pan)})
        assert (await atm.send("0200", change)).fields["39"] == "00"
        assert (await atm.withdraw(CARD_MAIN, 10_000, pin="2468"))[0].fields["39"] == "00"


async def test_duplicate_while_original_in_flight_gets_the_same_answer(pg_dsn: str) -> None:
    """A retransmission that arrives while its original is still at the ledger waits for the
    original's answer instead of being processed a second time."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        fields = atm.request_fields(CARD_MAIN, "010000", 100_000)
        raw = encode_request("0200", fields, atm.keys)
        first: list[Any] = []

        async def original() -> None:
            first.append(await atm.link.request_encoded(raw))

        async with trio.open_nursery() as nursery:
            await nursery.start(lock_account_row, switch.db, "ACC1", 0.5)  # a slow database
            nursery.start_soon(original)
            await trio.sleep(0.2)
            await atm.link.send_payload(raw)  # the duplicate, not awaited by the link
        with trio.fail_after(5):
            while not atm.link.unmatched:
                await trio.sleep(0.05)
        assert first[0].fields["39"] == "00"
        assert dict(atm.link.unmatched[0].fields) == dict(first[0].fields)
        assert await switch.balance("ACC1") == (1_370_000, 1_270_000, 100_000)


async def test_completion_of_unknown_original_reserves_nothing(pg_dsn: str) -> None:
    # A 0220 names an original the switch never saw: it is acknowledged, leaves no marker,
    # and the original, arriving late, is decided as new (only a 0420 blocks it, spec 5.4).
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        original = atm.request_fields(CARD_MAIN, "010000", 100_000)
        advice = completion_advice(original, stan=atm.next_stan(), now=dt.datetime.now(dt.UTC))
        first = await atm.complete(original, fields=advice)
        assert first.fields["39"] == "00"
        late = await atm.send("0200", original)
        assert late.fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_370_000, 1_270_000, 100_000)
        # Its repeat (0221) is answered as the first time, with no effect on the late hold.
        assert (await atm.complete(original, mti="0221", fields=advice)).fields == first.fields
        assert await switch.balance("ACC1") == (1_370_000, 1_270_000, 100_000)
