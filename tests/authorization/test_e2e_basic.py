"""End to end over TCP against the real PostgreSQL: key exchange, withdrawal with completion,
the stored answer for a duplicate, and the field layouts of 0210/0230."""

from __future__ import annotations

from switch.protocol.field48 import decode_tags
from tests.authorization.harness import CARD_MAIN, running_switch


async def test_withdrawal_complete_and_duplicate(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        response, request = await atm.withdraw(CARD_MAIN, 50_000)
        assert response.mti == "0210"
        assert response.fields["39"] == "00", response.fields
        assert len(response.fields["38"]) == 6
        assert response.fields["54"] == "0001156C000001370000" "0002156C000001320000"
        assert await switch.balance("ACC1") == (1_370_000, 1_320_000, 50_000)
        repeat = await atm.send("0200", request)
        assert dict(repeat.fields) == dict(response.fields)
        completion = await atm.complete(request)
        assert completion.mti == "0230" and completion.fields["39"] == "00"
        assert completion.fields["90"].startswith("0200" + request["11"] + request["7"])
        assert "15" in completion.fields and "38" not in completion.fields
        assert await switch.balance("ACC1") == (1_320_000, 1_320_000, 0)


async def test_decline_carries_text_in_language(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        fields = atm.request_fields(CARD_MAIN, "010000", 5_000_000, tags={"LG": "zh"})
        response = await atm.send("0200", fields)
        assert response.fields["39"] == "61"
        assert decode_tags(response.fields["48"]) == {"TX": "超出金额限制"}


async def test_pan_echoed_but_never_stored_in_clear(pg_dsn: str) -> None:
    """A 0210 echoes field 2; the stored answer keeps no clear PAN, the repeat echoes it again."""
    async with running_switch(pg_dsn) as switch:
        atm = await switch.atm("ATM001")
        fields = atm.request_fields(CARD_MAIN, "310000", 0, send_pan=True)
        first = await atm.send("0200", fields)
        assert first.fields["39"] == "00" and first.fields["2"] == CARD_MAIN.pan
        repeat = await atm.send("0200", fields)
        assert dict(repeat.fields) == dict(first.fields)
        for table in ("auth_messages", "cards", "audit_log", "reversal_markers"):
            dump = await switch.db.fetchval(f"SELECT coalesce(string_agg(t::text, ''), '') "
                                            f"FROM {table} t")
            assert CARD_MAIN.pan not in dump, table
            assert CARD_MAIN.pan[-10:] not in dump, table
