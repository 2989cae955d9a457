"""Issue 21, failures 4 and 5: the card-network path on the one engine, over real TCP and
PostgreSQL (the switch, the test issuer and the ATM all on localhost).

4. a ``91`` after the network approved is reversed at the network; a card on file that the
   cache missed is decided by the on-us engine (chip, PIN tries, ledger), so its 0420 works;
5. stand-in is no PIN oracle: the stand-in rules come before the PIN, wrong PINs are counted
   per card and day (then ``75`` with no PIN evaluated), a PVKI of another key is ``91``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import trio

from switch.config import AuthorizationConfig
from switch.networks import acquiring
from switch.networks.base import NetworkStatus
from terminals.hostlink.financial import encode_request
from tests.authorization.harness import CARD_MAIN, PIN
from tests.networks.harness import NETWORK_CARD, NetworkedSwitch, networked_switch, wait_until
from tests.networks.issuer import IssuerRules
from tests.networks.test_e2e import PvvCard


async def _hold_first_claim(connection: asyncpg.Connection, hold_s: float) -> int:
    """Row-lock the first 0200 row of ATM001 as soon as it exists, for ``hold_s``: whatever
    the switch writes to it next (the network's answer) waits past the terminal's deadline."""
    async with connection.transaction():
        while True:
            row = await connection.fetchrow(
                "SELECT id FROM auth_messages WHERE message_class = '0200'"
                " AND terminal_id = 'ATM001' FOR UPDATE"
            )
            if row is not None:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(hold_s)
        return int(row["id"])


async def test_a_91_after_the_network_approved_is_reversed_at_the_network(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issuer approves after 0.4 s; recording its answer is held up past the terminal's
    deadline, so the terminal gets 91. The network's approval must then be reversed (0420,
    reason 68): on the old pipeline it stayed, the cardholder debited at the issuer with no
    cash."""
    monkeypatch.setattr(acquiring, "stale_pending_after_s", 1.5)  # the network sweep's period
    rules = IssuerRules(answer_delay_s=0.4)
    config = AuthorizationConfig(sweep_interval_s=0.2)
    async with networked_switch(pg_dsn, rules=rules, config=config, sweeper=True) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        net.switch.nursery.start_soon(net.switch.db.run, _hold_first_claim, 3.0)
        response, sent = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "91"
        assert net.issuer.messages("0200"), "the network was asked and approved"
        await wait_until(lambda: net.issuer.messages("042"), timeout_s=15)
        reversal = net.issuer.messages("042")[0].fields
        original = net.issuer.messages("0200")[0].fields
        assert reversal["39"] == "68"
        assert reversal["90"][:20] == "0200" + original["11"] + original["7"]
        # The void the 91 owed was journaled (its row was locked) and is replayed by the
        # sweeper once the lock goes: the decision becomes 91 for good.
        with trio.fail_after(10):
            while await net.switch.db.fetchval(
                "SELECT state FROM auth_messages WHERE message_class = '0200'") != "voided":
                await trio.sleep(0.1)
        assert len(net.issuer.messages("042")) == 1
        # The terminal's repeat of the 0200 is answered 91 again, the network not asked.
        again, _ = await atm.exchange(encode_request("0200", sent, atm.keys))
        assert again.fields["39"] == "91"
        assert len(net.issuer.messages("0200")) == 1


async def test_a_card_on_file_missed_by_the_cache_is_decided_on_us(pg_dsn: str) -> None:
    """A card on file whose cache entry still says "not on file" (its NOTIFY not yet in):
    the engine finds it on file and the on-us engine decides, so the hold is the engine's
    and the 0420 gives the money back. The old pipeline ran a second on-us engine whose hold
    the advice batch could not see: the reversal did nothing."""
    async with networked_switch(pg_dsn) as net:
        switch = net.switch
        pan_hash = await switch.hsm.pan_lookup_hash(CARD_MAIN.pan)
        cards = switch.authorization.cards
        cards._cards[pan_hash] = None  # the stale negative entry of the race
        before = await switch.balance("ACC1")
        atm = await switch.atm()
        response, fields = await atm.withdraw(CARD_MAIN, 20_000)
        assert response.fields["39"] == "00"
        assert net.issuer.messages("0200") == []  # never routed
        assert (await switch.balance("ACC1"))[1] == before[1] - 20_000
        reversed_, _ = await atm.reverse(fields, reason="68")
        assert reversed_.fields["39"] == "00"
        assert await switch.balance("ACC1") == before


async def _pvv_card(net: NetworkedSwitch, *, pvki: str = "1") -> PvvCard:
    assert net.stand_in_pvk is not None
    data = await net.switch.hsm.pin_verification_data_test_mode(
        pvk=net.stand_in_pvk, pan=NETWORK_CARD.pan, pin=PIN, method="visa_pvv", pvki=pvki)
    return PvvCard(NETWORK_CARD.pan, NETWORK_CARD.expiry, pvki, data.value)


STAND_IN: dict[str, Any] = {"stand_in_floor_minor": 10_000}


async def test_stand_in_rules_come_before_the_pin(pg_dsn: str) -> None:
    """Network down. Above the floor the request would never stand in, so its PIN is never
    evaluated: 91 whether the PIN is right or wrong (the old order answered 55 for a wrong
    PIN and 91 for the right one: a PIN oracle for any amount)."""
    async with networked_switch(pg_dsn, issuer_up=False, stand_in_pvk=True,
                                demo_options=STAND_IN) as net:
        card = await _pvv_card(net)
        atm = await net.switch.atm()
        wrong, _ = await atm.withdraw(card, 50_000, pin="9999")
        right, _ = await atm.withdraw(card, 50_000)
        assert (wrong.fields["39"], right.fields["39"]) == ("91", "91")
        tries = await net.switch.db.fetchval("SELECT count(*) FROM stand_in_pin_tries")
        assert tries == 0


async def test_wrong_stand_in_pins_are_counted_then_75(pg_dsn: str) -> None:
    """Three wrong PINs in stand-in: 55, 55, 75; then even the right PIN is 75 (not
    evaluated) for the rest of the UTC day; each decline is advised to the issuer."""
    async with networked_switch(pg_dsn, issuer_up=False, stand_in_pvk=True,
                                demo_options=STAND_IN) as net:
        card = await _pvv_card(net)
        atm = await net.switch.atm()
        codes = []
        for _ in range(3):
            answer, _ = await atm.withdraw(card, 5_000, pin="9999")
            codes.append(answer.fields["39"])
        right, _ = await atm.withdraw(card, 5_000)
        assert codes == ["55", "55", "75"]
        assert right.fields["39"] == "75"
        advised = await net.switch.db.fetch(
            "SELECT kind, reason_code FROM network_advices ORDER BY advice_id")
        assert [(a["kind"], a["reason_code"]) for a in advised] == [
            ("stand_in_decline", "55"), ("stand_in_decline", "55"), ("stand_in_decline", "75"),
            ("stand_in_decline", "75")]


async def test_a_pvki_of_another_key_is_91_not_55(pg_dsn: str) -> None:
    """The card's track 2 names PVKI 2; the configured stand-in key is PVKI 1: the switch
    cannot check this PIN, so it is 91 (never 55, which would say the PIN was checked)."""
    async with networked_switch(pg_dsn, issuer_up=False, stand_in_pvk=True,
                                demo_options=STAND_IN) as net:
        card = await _pvv_card(net, pvki="2")
        atm = await net.switch.atm()
        wrong, _ = await atm.withdraw(card, 5_000, pin="9999")
        assert wrong.fields["39"] == "91"
