"""Network management over real TCP (spec 5.1): sign-on, echo, sign-off and the 58 rule."""

from __future__ import annotations

import trio
import trio.testing

from switch.app import SwitchApp
from switch.db.runtime import Database
from switch.protocol import Message, decode_message, encode_message, response_fields, response_mti
from tests.core.conftest import connect

WITHDRAWAL_FIELDS = {
    "2": "6225880123456789",
    "3": "011000",
    "4": "000000010000",
    "12": "183000",
    "13": "0615",
    "22": "021",
    "32": "123456",
    "37": "061510000001",
    "42": "BANK00000000001",
    "43": "X" * 40,
    "49": "156",
    "52": "0123456789ABCDEF",
}


async def test_sign_on_echo_sign_off(switch: SwitchApp) -> None:
    async with connect(switch, "ATM00001") as link:
        signed_on = await link.sign_on()
        assert (signed_on.mti, signed_on.response_code, signed_on.fields["70"]) == (
            "0810",
            "00",
            "001",
        )
        assert signed_on.mac is None  # 0810 carries no MAC
        echo = await link.echo()
        assert (echo.response_code, echo.fields["70"], echo.terminal_id) == (
            "00",
            "301",
            "ATM00001",
        )
        assert len(switch.sessions) == 1
        assert (await link.sign_off()).response_code == "00"
        assert len(switch.sessions) == 0
        assert (await link.echo()).response_code == "58"  # signed off: not permitted
        assert (await link.sign_on()).response_code == "00"  # the connection may sign on again


async def test_unknown_disabled_and_not_signed_on_get_58(switch: SwitchApp) -> None:
    async with connect(switch, "NOBODY01") as link:
        assert (await link.sign_on()).response_code == "58"
    async with connect(switch, "DISABLD1") as link:
        assert (await link.sign_on()).response_code == "58"
    async with connect(switch, "ATM00001") as link:
        assert (await link.echo()).response_code == "58"
        assert (await link.request("0200", WITHDRAWAL_FIELDS, mac=False)).response_code == "58"
        assert (await link.network_request("161")).response_code == "58"


async def test_disabling_takes_effect_at_the_next_sign_on(switch: SwitchApp, db: Database) -> None:
    async with connect(switch, "ATM00002") as link:
        assert (await link.sign_on()).response_code == "00"
    await db.execute("UPDATE terminals SET status = 'disabled' WHERE terminal_id = 'ATM00002'")
    async with connect(switch, "ATM00002") as link:
        assert (await link.sign_on()).response_code == "58"
    await db.execute("UPDATE terminals SET status = 'enabled' WHERE terminal_id = 'ATM00002'")
    async with connect(switch, "ATM00002") as link:
        assert (await link.sign_on()).response_code == "00"


async def test_a_signed_on_terminal_that_gets_disabled_is_refused_within_the_cache_ttl(
    switch: SwitchApp, db: Database, realtime_clock: trio.testing.MockClock
) -> None:
    # Method: real PostgreSQL; the clock jumps past the 5 s cache TTL instead of sleeping.
    switch.terminals.cache_ttl_s = 5.0
    async with connect(switch, "ATM00003") as link:
        assert (await link.sign_on()).response_code == "00"
        await db.execute("UPDATE terminals SET status = 'disabled' WHERE terminal_id = 'ATM00003'")
        realtime_clock.jump(5.1)
        assert (await link.echo()).response_code == "58"


async def test_second_sign_on_closes_the_first_connection(switch: SwitchApp) -> None:
    async with connect(switch, "ATM00001") as first:
        assert (await first.sign_on()).response_code == "00"
        async with connect(switch, "ATM00001") as second:
            assert (await second.sign_on()).response_code == "00"
            with trio.fail_after(5):
                while not first.closed:
                    await trio.sleep(0.01)
            assert (await second.echo()).response_code == "00"
            assert switch.sessions.current("ATM00001") is not None


async def test_a_connection_belongs_to_its_first_terminal(switch: SwitchApp) -> None:
    async with connect(switch, "ATM00001") as link:
        assert (await link.sign_on()).response_code == "00"
        other = await link.request("0800", {"70": "001", "41": "ATM00002"})
        assert other.response_code == "58"
        mismatched_echo = await link.request("0800", {"70": "301", "41": "ATM00002"})
        assert mismatched_echo.response_code == "58"


async def test_financial_classes_without_a_handler_get_12(switch: SwitchApp) -> None:
    async with connect(switch, "ATM00001") as link:
        await link.sign_on()
        answer = await link.request("0200", WITHDRAWAL_FIELDS, mac=False)
        assert (answer.mti, answer.response_code) == ("0210", "12")
        assert answer.fields["4"] == "000000010000" and "15" in answer.fields
        assert (await link.network_request("161")).response_code == "12"
        assert (await link.network_request("999")).response_code == "12"


async def test_missing_mandatory_field_is_30(switch: SwitchApp) -> None:
    async with connect(switch, "ATM00001") as link:
        await link.sign_on()
        partial = {k: v for k, v in WITHDRAWAL_FIELDS.items() if k != "49"}
        answer = await link.request("0200", partial, mac=False)
        assert (answer.response_code, answer.mac) == ("30", None)


async def test_registered_handlers_are_called(start_switch, db: Database) -> None:  # type: ignore[no-untyped-def]
    from tests.core.conftest import register_terminals

    await register_terminals(db, "ATM00009")
    seen: list[tuple[str, str | None]] = []

    async def financial(request: Message, raw: bytes, session: object) -> bytes:
        seen.append((request.mti, getattr(session, "terminal_id", None)))
        assert decode_message(raw) == request
        return encode_message(response_mti(request.mti), response_fields(request, "51"))

    async def key_exchange(request: Message, raw: bytes, session: object) -> bytes:
        seen.append((request.mti + "/" + request.fields["70"], None))
        return encode_message("0810", response_fields(request, "00", {"48": "KP003abc"}))

    def setup(app: SwitchApp) -> None:
        app.dispatcher.register("0200", financial)
        app.dispatcher.register("0800/161", key_exchange)

    app = await start_switch(app_setup=setup)
    async with connect(app, "ATM00009") as link:
        await link.sign_on()
        assert (await link.request("0200", WITHDRAWAL_FIELDS, mac=False)).response_code == "51"
        exchanged = await link.network_request("161")
        assert exchanged.tags() == {"KP": "abc"}
    assert seen == [("0200", "ATM00009"), ("0800/161", None)]
