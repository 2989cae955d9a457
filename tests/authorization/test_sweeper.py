"""Hold expiry (spec 5.2) through the sweeper task, and the resolution of a 0200 claim left
pending by a dead process (spec 5.6: answered 91 later, hold released)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import trio

from switch.authorization import store
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


async def test_stale_pending_claim_resolved_as_91(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        ctx = switch.authorization.ctx
        key = MessageKey("0200", "ATM001", "000777", "1121101500", "00000123456")
        await store.claim(switch.db, key, fingerprint="f", processing_code="010000",
                          amount_minor=100_000)
        hold = await switch.ledger.hold(
            ctx.hold_key(key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id),
            account_id="ACC1", amount=100_000, direction="debit",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
            expiry_action="capture",
        )
        assert hold.approved
        later = dataclasses.replace(ctx, clock=lambda: dt.datetime.now(dt.UTC)
                                    + dt.timedelta(seconds=ctx.stale_after_s + 1))
        counts = await sweep_once(later)
        assert counts["stale_resolved"] == 1
        record = await store.load_record(switch.db, key)
        assert record is not None and record.done and record.response_code == "91"
        assert await switch.balance("ACC1") == (1_370_000, 1_370_000, 0)
