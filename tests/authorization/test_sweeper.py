"""Hold expiry (spec 5.2) through the sweeper task, and the resolution of a 0200 claim left
undecided by a dead process (spec 5.6: voided as 91 later)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import trio

from switch.authorization.request import MessageKey
from switch.authorization.sweeper import sweep_once
from switch.config import AuthorizationConfig
from tests.authorization.harness import CARD_MAIN, running_switch


async def test_expired_holds_captured_or_released(pg_dsn: str) -> None:
    config = AuthorizationConfig(hold_expiry_s=1, sweep_interval_s=0.2)
    async with running_switch(pg_dsn, config=config, sweeper=True) as switch:
        atm = await switch.atm("ATM001")
        withdrawal, _ = await atm.withdraw(CARD_MAIN, 100_000)
        deposit = await atm.send("0200", atm.request_fields(CARD_MAIN, "210000", 50_000))
        assert withdrawal.fields["39"] == deposit.fields["39"] == "00"
        assert await switch.balance("ACC1") == (1_370_000, 1_270_000, 100_000)
        with trio.fail_after(10):
            while (await switch.balance("ACC1"))[2] != 0:
                await trio.sleep(0.2)
        # Withdrawal presumed dispensed (posted); deposit released (not posted).
        assert await switch.balance("ACC1") == (1_270_000, 1_270_000, 0)


async def test_stale_claim_voided_as_91(pg_dsn: str) -> None:
    """A claim nobody decided (a card-network request whose process died mid-request) is
    voided once older than the stale limit, and only then; its repeat is answered 91."""
    async with running_switch(pg_dsn) as switch:
        ctx = switch.authorization.ctx
        key = MessageKey("0200", "ATM001", "000777", "1121101500", "00000123456")
        claimed = await switch.db.fetchrow(
            "SELECT * FROM auth_network_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [key.terminal_id], [key.stan], [key.transmission_dt], [key.acquirer_id], ["f"],
            ["010000"], [100_000], ["token-1"], ["not-a-card"], [None],
        )
        assert claimed["out_status"] == "claimed"
        assert (await sweep_once(ctx))["stale_resolved"] == 0  # still within its deadline
        later = dataclasses.replace(ctx, clock=lambda: dt.datetime.now(dt.UTC)
                                    + dt.timedelta(seconds=ctx.stale_after_s + 1))
        counts = await sweep_once(later)
        assert counts["stale_resolved"] == 1
        row = await switch.db.fetchrow(
            "SELECT state, response_code FROM auth_messages WHERE terminal_id = $1"
            " AND stan = $2", key.terminal_id, key.stan)
        assert (row["state"], row["response_code"]) == ("voided", "91")
        # The attempt that claimed it can no longer record a decision over the void.
        recorded = await switch.db.fetchval(
            "SELECT auth_network_record($1, $2, $3, $4, $5, '00', NULL, NULL)",
            key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id, "token-1")
        assert recorded == "lost"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
