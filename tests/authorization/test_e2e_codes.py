"""Every response code of spec 6 this version produces (all but 92), end to end over TCP
against the real PostgreSQL, each in the spec's order of checks."""

from __future__ import annotations

import dataclasses

from switch.protocol.field48 import decode_tags
from switch.protocol.message import encode_message
from tests.authorization.harness import (
    CARD_CLOSED,
    CARD_EXPIRED,
    CARD_FROZEN_ACCOUNT,
    CARD_LIMITED,
    CARD_LOST,
    CARD_MAIN,
    CARD_SECOND,
    CARD_STOLEN,
    CARD_UNKNOWN,
    connect_atm,
    running_switch,
)

WITHDRAW = "010000"


async def test_card_and_pin_codes(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        for card, code in ((CARD_UNKNOWN, "14"), (CARD_LOST, "41"), (CARD_STOLEN, "43"),
                           (CARD_CLOSED, "57"), (CARD_EXPIRED, "54")):
            response, _ = await atm.withdraw(card, 10_000)
            assert response.fields["39"] == code, card
            assert "38" not in response.fields and "54" not in response.fields
        # 55, 55, then 75 on the third consecutive wrong PIN; afterwards 75 even with the PIN.
        codes = [(await atm.withdraw(CARD_MAIN, 10_000, pin="9999"))[0].fields["39"]
                 for _ in range(3)]
        assert codes == ["55", "55", "75"]
        response, _ = await atm.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "75"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
        # A correct PIN resets the counter: wrong, right, wrong, wrong is not blocked.
        second = [(await atm.withdraw(CARD_SECOND, 10_000, pin=pin))[0].fields["39"]
                  for pin in ("0000", "4321", "0000", "0000")]
        assert second == ["55", "00", "55", "55"]
        # Order of checks: a lost card is 41 even with a wrong PIN (card before PIN).
        response, _ = await atm.withdraw(CARD_LOST, 10_000, pin="0000")
        assert response.fields["39"] == "41"


async def test_account_amount_limit_and_funds_codes(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")

        async def code(card: object, pc: str, amount: int, **kw: object) -> str:
            fields = atm.request_fields(card, pc, amount, **kw)  # type: ignore[arg-type]
            return (await atm.send("0200", fields)).fields["39"]

        assert await code(CARD_FROZEN_ACCOUNT, WITHDRAW, 10_000) == "57"
        assert await code(CARD_MAIN, "401000", 10_000, from_account="ACC2",
                          to_account="LIM1") == "57"
        assert await code(CARD_MAIN, "500000", 0) == "12"
        assert await code(CARD_MAIN, "010010", 10_000) == "12"
        assert await code(CARD_MAIN, WITHDRAW, 15_000) == "13"
        assert await code(CARD_MAIN, WITHDRAW, 0) == "13"
        assert await code(CARD_MAIN, "310000", 100) == "13"
        assert await code(CARD_MAIN, WITHDRAW, 260_000) == "61"  # default 2,500.00 per withdrawal
        assert await code(CARD_MAIN, WITHDRAW, 1_400_000) == "61"  # before 51 (order of checks)
        # CARD_LIMITED: withdrawal_max 5,000.00, daily 6,000.00, at most 2 per day.
        assert await code(CARD_LIMITED, WITHDRAW, 400_000) == "00"
        assert await code(CARD_LIMITED, WITHDRAW, 300_000) == "61"  # daily amount
        assert await code(CARD_LIMITED, WITHDRAW, 100_000) == "00"
        assert await code(CARD_LIMITED, WITHDRAW, 10_000) == "65"  # daily count
        assert await code(CARD_MAIN, "390000", 0, pin=None, to_account="NOPE") == "76"
        assert await code(CARD_MAIN, "401020", 10_000, to_account="NOPE") == "76"
        assert await code(CARD_MAIN, "401020", 10_000, to_account="FROZEN1") == "76"
        assert await code(CARD_MAIN, "400000", 10_000, to_account="ACC1") == "05"
        assert await code(CARD_SECOND, WITHDRAW, 250_000, pin="4321") == "00"
        assert await code(CARD_SECOND, WITHDRAW, 250_000, pin="4321") == "00"
        assert await code(CARD_SECOND, WITHDRAW, 10_000, pin="4321") == "51"  # all held
        assert await switch.balance("ACC2") == (500_000, 0, 500_000)


async def test_daily_limit_gives_back_reversed_amounts(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        first, fields = await atm.withdraw(CARD_LIMITED, 500_000)
        assert first.fields["39"] == "00"
        # Partial dispense of 1,000.00: counts 1,000.00 toward the 6,000.00 day.
        reversal, _ = await atm.reverse(fields, reason="32", dispensed=100_000)
        assert reversal.fields["39"] == "00"
        second, _ = await atm.withdraw(CARD_LIMITED, 400_000)
        assert second.fields["39"] == "00"  # 1,000.00 + 4,000.00 <= 6,000.00
        third, _ = await atm.withdraw(CARD_LIMITED, 10_000)
        assert third.fields["39"] == "65"  # two withdrawals counted today


async def test_terminal_mac_and_format_codes(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001", key_exchange=False)
        # 63 without a MAC: no TAK yet (no key exchange).
        fields = atm.request_fields(CARD_MAIN, WITHDRAW, 10_000, pin=None)
        fields["52"] = "0" * 16
        message, raw = await atm.exchange(encode_message("0200", fields), fields["11"])
        assert message.fields["39"] == "63" and "64" not in message.fields
        await atm.key_exchange()
        # A wrong MAC: 63 with a MAC; not recorded, so the corrected retransmission is processed.
        fields = atm.request_fields(CARD_MAIN, WITHDRAW, 10_000)
        wrong_keys = dataclasses.replace(atm.keys, tak=bytes(range(16)))
        message, raw = await atm.exchange(
            encode_message("0200", fields, mac=wrong_keys.mac), fields["11"])
        assert message.fields["39"] == "63"
        atm.keys.verify_response_mac(raw)  # 63 carries a MAC under the terminal's real TAK
        response = await atm.send("0200", fields)
        assert response.fields["39"] == "00"
        # 30: a 0200 without field 52 for a withdrawal; answered without a MAC; not recorded.
        bad = atm.request_fields(CARD_MAIN, WITHDRAW, 10_000, pin=None)
        response = await atm.send("0200", bad)
        assert response.fields["39"] == "30" and "64" not in response.fields
        bad["52"] = atm.keys.pin_block("1234", CARD_MAIN.pan)
        assert (await atm.send("0200", bad)).fields["39"] == "00"
        # 58: field 41 of another terminal on this connection.
        other = atm.request_fields(CARD_MAIN, WITHDRAW, 10_000)
        other["41"] = "ATM002  "
        response = await atm.send("0200", other)
        assert response.fields["39"] == "58" and "64" not in response.fields
        # 58: a connection that has not signed on.
        stranger = await switch.atm("ATM002")
        await stranger.network("002")  # sign off
        response = await stranger.send("0200", stranger.request_fields(CARD_MAIN, WITHDRAW,
                                                                       10_000))
        assert response.fields["39"] == "58"


async def test_96_when_terminal_has_no_pin_key(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        await switch.db.execute("UPDATE terminal_keys SET tpk = NULL WHERE terminal_id = 'ATM001'")
        # A new connection reads the terminal's keys afresh (a session keeps what it read).
        atm = await connect_atm(switch.nursery, switch.address, "ATM001", key_exchange=False,
                                keys=atm.keys, first_stan=500)
        response, _ = await atm.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "96"
        assert decode_tags(response.fields["48"])["TX"] == "System error"


async def test_94_same_key_other_content(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        response, fields = await atm.withdraw(CARD_MAIN, 10_000)
        assert response.fields["39"] == "00"
        changed = dict(fields, **{"4": "000000020000"})
        assert (await atm.send("0200", changed)).fields["39"] == "94"
        changed = dict(fields, **{"35": CARD_SECOND.track2})
        changed["52"] = atm.keys.pin_block("4321", CARD_SECOND.pan)
        assert (await atm.send("0200", changed)).fields["39"] == "94"
        # Fields outside the fingerprint (e.g. 12, 37) do not make a different request.
        same = dict(fields, **{"37": "999999999999"})
        repeat = await atm.send("0200", same)
        assert repeat.fields["39"] == "00" and repeat.fields["38"] == response.fields["38"]
        assert await switch.balance("ACC1") == (1_370_000, 1_360_000, 10_000)
