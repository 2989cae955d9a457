"""End to end over real TCP with real PostgreSQL: an ATM -> the switch -> a card network (the
test issuer) and back. Each test drives the terminal side with the project's own client and
checks both the terminal's answer and what reached the network."""

from __future__ import annotations

import dataclasses

import trio

from switch.networks.base import NetworkStatus
from tests.authorization.harness import CARD_MAIN, CARD_UNKNOWN, PIN, running_switch
from tests.networks.harness import (
    NETWORK_CARD,
    NETWORK_CARD_2,
    ORPHAN_CARD,
    networked_switch,
    wait_until,
)
from tests.networks.issuer import ZPK_HEX, IssuerRules


async def _queue(db, state: str = "queued") -> list[dict]:
    rows = await db.fetch("SELECT * FROM network_advices WHERE state = $1 ORDER BY advice_id",
                          state)
    return [dict(row) for row in rows]


async def test_routed_approval_translates_the_pin_and_is_idempotent(pg_dsn: str) -> None:
    """Approved by the network: 00 with the network's 38; PIN re-encrypted under the ZPK;
    a repeat of the 0200 gets the stored answer without asking the network again."""
    async with networked_switch(pg_dsn) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        response, fields = await atm.withdraw(NETWORK_CARD, 50_000)
        assert response.fields["39"] == "00", response.fields
        assert response.fields["38"] == "AB1234"
        sent = net.issuer.messages("0200")
        assert len(sent) == 1
        outbound = sent[0].fields
        assert outbound["2"] == NETWORK_CARD.pan and "35" not in outbound
        assert outbound["52"] != fields["52"]  # translated, not passed through
        assert net.issuer.pins_seen == ["1234"]
        assert outbound["41"] == "ATM001  " and outbound["32"] == "4321"
        assert net.issuer.mac_failures == 0 and "64" in outbound
        again, _ = await atm.exchange(_reencode(atm, fields))
        assert again.fields["39"] == "00" and again.fields["38"] == "AB1234"
        assert len(net.issuer.messages("0200")) == 1


def _reencode(atm, fields):
    from terminals.hostlink.financial import encode_request

    return encode_request("0200", fields, atm.keys)


async def test_routed_declines_map_to_terminal_codes(pg_dsn: str) -> None:
    """Wrong PIN -> 55, over balance -> 51, a code the terminal spec lacks (62) -> 05."""
    rules = IssuerRules(balance_minor=100_000, decline_pans={NETWORK_CARD_2.pan: "62"})
    async with networked_switch(pg_dsn, rules=rules) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        wrong_pin, _ = await atm.withdraw(NETWORK_CARD, 10_000, pin="9999")
        assert wrong_pin.fields["39"] == "55"
        too_much, _ = await atm.withdraw(NETWORK_CARD, 200_000)
        assert too_much.fields["39"] == "51"
        unknown_code, _ = await atm.withdraw(NETWORK_CARD_2, 10_000)
        assert unknown_code.fields["39"] == "05"
        assert "38" not in unknown_code.fields


async def test_network_down_answers_91(pg_dsn: str) -> None:
    """Nothing listens where the network should be: 91, and nothing to reverse."""
    async with networked_switch(pg_dsn, issuer_up=False) as net:
        atm = await net.switch.atm()
        response, _ = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "91"
        assert await _queue(net.switch.db) == []


async def test_no_answer_in_time_answers_91_and_reverses_at_the_network(pg_dsn: str) -> None:
    """The issuer answers after the network deadline: the terminal gets 91 and the switch
    sends a 0420 (reason 68) naming the 0200 until the issuer acknowledges it."""
    rules = IssuerRules(answer_delay_s=1.5)
    async with networked_switch(pg_dsn, rules=rules) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        response, _ = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "91"
        await wait_until(lambda: net.issuer.messages("042"))
        reversal = net.issuer.messages("042")[0].fields
        original = net.issuer.messages("0200")[0].fields
        assert reversal["39"] == "68"
        assert reversal["90"][:20] == "0200" + original["11"] + original["7"]
        await wait_until(lambda: net.acquirer.senders["demo"].delivered == 1)


async def test_route_to_unregistered_network_answers_92(pg_dsn: str) -> None:
    async with networked_switch(pg_dsn) as net:
        atm = await net.switch.atm()
        response, _ = await atm.withdraw(ORPHAN_CARD, 10_000)
        assert response.fields["39"] == "92"
        assert net.issuer.messages("0200") == []


async def test_network_signed_off_answers_92_until_it_signs_on(pg_dsn: str) -> None:
    """The network's own 0800/002 stops traffic (92); its 0800/001 resumes it."""
    async with networked_switch(pg_dsn) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        await net.issuer.send_network("002")
        await net.wait_status(NetworkStatus.SIGNED_OFF)
        response, _ = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "92"
        await net.issuer.send_network("001")
        await net.wait_status(NetworkStatus.SIGNED_ON)
        response, _ = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "00"


async def test_no_route_stays_14(pg_dsn: str) -> None:
    """A card outside every route is 14 exactly as without networks; on-us cards unaffected."""
    async with networked_switch(pg_dsn) as net:
        atm = await net.switch.atm()
        response, _ = await atm.withdraw(CARD_UNKNOWN, 10_000)
        assert response.fields["39"] == "14"
        on_us, _ = await atm.withdraw(CARD_MAIN, 10_000)
        assert on_us.fields["39"] == "00"
        assert net.issuer.messages("02") == []


async def test_without_networks_a_card_not_on_file_is_14(pg_dsn: str) -> None:
    async with running_switch(pg_dsn) as switch:
        assert switch.authorization.ctx.networks is None
        atm = await switch.atm()
        response, _ = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "14"


async def test_completion_is_stored_and_repeated_until_acknowledged(pg_dsn: str) -> None:
    """The issuer ignores the first two advices: the switch sends 0220, 0221, 0221 with the
    same fields, stops once acknowledged, and the terminal's own repeat adds nothing."""
    rules = IssuerRules(ignore_first_advices=2)
    async with networked_switch(pg_dsn, rules=rules,
                                demo_options={"advice_timeout_s": 0.3}) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        response, original = await atm.withdraw(NETWORK_CARD, 30_000)
        assert response.fields["39"] == "00"
        completion = await atm.complete(original, 20_000)
        assert completion.fields["39"] == "00"
        await wait_until(lambda: net.acquirer.senders["demo"].delivered == 1)
        advices = net.issuer.messages("022")
        assert [m.mti for m in advices] == ["0220", "0221", "0221"]
        first = dict(advices[0].fields)
        for repeat in advices[1:]:
            # Same fields, STAN included; only the MTI (and so the MAC) differs.
            assert {k: v for k, v in repeat.fields.items() if k != "128"} == {
                k: v for k, v in first.items() if k != "128"}
        assert first["4"] == "000000020000" and first["38"] == "AB1234"
        assert first["90"][:10] == "0200" + net.issuer.messages("0200")[0].fields["11"]
        assert await _queue(net.switch.db) == []
        assert len(await _queue(net.switch.db, "acknowledged")) == 1
        repeat = await atm.complete(original, 20_000, mti="0221",
                                    fields=_advice_fields_of(completion, original))
        assert repeat.fields["39"] == "00"
        await trio.sleep(0.3)
        assert len(net.issuer.messages("022")) == 3


def _advice_fields_of(completion, original):
    """The first advice's fields again (a terminal's 0221 repeats them exactly)."""
    fields = {k: v for k, v in completion.fields.items() if k not in ("39", "15", "64", "128")}
    fields["2"] = original.get("2") or original["35"].split("=")[0]
    fields["14"] = original["35"].split("=")[1][:4]
    return fields


async def test_reversal_of_a_routed_withdrawal_is_forwarded_once(pg_dsn: str) -> None:
    async with networked_switch(pg_dsn) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        response, original = await atm.withdraw(NETWORK_CARD, 30_000)
        assert response.fields["39"] == "00"
        first, _ = await atm.reverse(original, reason="32", dispensed=10_000)
        second, _ = await atm.reverse(original, reason="17")
        assert first.fields["39"] == second.fields["39"] == "00"
        await wait_until(lambda: net.acquirer.senders["demo"].delivered == 1)
        await trio.sleep(0.2)
        reversals = net.issuer.messages("042")
        assert len(reversals) == 1
        assert reversals[0].fields["39"] == "32"
        assert reversals[0].fields["95"].startswith("000000010000")


async def test_no_stand_in_for_a_pin_the_switch_cannot_verify(pg_dsn: str) -> None:
    """Network down, 50.00 under the floor of 100.00: issue 11 item 2 declines stand-in for a
    PIN-bearing withdrawal (the switch holds no PIN verification data for another issuer's
    cards), so it is 91 and nothing is queued; the policy itself is tested in
    tests/security/test_stand_in.py."""
    async with networked_switch(pg_dsn, issuer_up=False,
                                demo_options={"stand_in_floor_minor": 10_000}) as net:
        atm = await net.switch.atm()
        small, _ = await atm.withdraw(NETWORK_CARD, 5_000)
        assert small.fields["39"] == "91"
        large, _ = await atm.withdraw(NETWORK_CARD, 20_000)
        assert large.fields["39"] == "91"
        assert len(await _queue(net.switch.db)) == 0


@dataclasses.dataclass(frozen=True)
class PvvCard:
    """A network card whose track 2 carries a Visa PVKI + PVV after the service code."""

    pan: str
    expiry: str
    pvki: str
    pvv: str

    @property
    def track2(self) -> str:
        return f"{self.pan}={self.expiry}101{self.pvki}{self.pvv}0"


async def test_stand_in_verifies_the_pin_with_the_networks_key(pg_dsn: str) -> None:
    """Issue 11 item 2: with the network's PIN verification key configured, a PIN-bearing
    withdrawal under the floor stands in once its PIN verifies against the PVV of track 2 (a
    wrong PIN is 55, not approved); the stand-in approval and the stand-in decline are both
    advised to the network (issue 21 failure 5: declines too, as real stand-in does)."""
    async with networked_switch(pg_dsn, issuer_up=False, stand_in_pvk=True,
                                demo_options={"stand_in_floor_minor": 10_000}) as net:
        assert net.stand_in_pvk is not None
        data = await net.switch.hsm.pin_verification_data_test_mode(
            pvk=net.stand_in_pvk, pan=NETWORK_CARD.pan, pin=PIN, method="visa_pvv", pvki="1")
        card = PvvCard(NETWORK_CARD.pan, NETWORK_CARD.expiry, "1", data.value)
        atm = await net.switch.atm()
        wrong, _ = await atm.withdraw(card, 5_000, pin="9999")
        assert wrong.fields["39"] == "55"
        approved, _ = await atm.withdraw(card, 5_000)
        assert approved.fields["39"] == "00"
        assert approved.fields["38"].startswith("S")
        above_floor, _ = await atm.withdraw(card, 20_000)
        assert above_floor.fields["39"] == "91"
        # A card without a PVV on its stripe cannot have its PIN checked: still 91.
        plain, _ = await atm.withdraw(NETWORK_CARD_2, 5_000)
        assert plain.fields["39"] == "91"
        queued = await _queue(net.switch.db)
        assert [(a["kind"], a["reason_code"]) for a in queued] == [
            ("stand_in_decline", "55"), ("stand_in", None)]


async def test_link_reconnects_after_the_network_drops_it(pg_dsn: str) -> None:
    async with networked_switch(pg_dsn) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        await net.issuer.drop_connections()
        await wait_until(lambda: net.issuer.connections == 2)
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        response, _ = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "00"


async def test_no_clear_pan_or_pin_block_at_rest(pg_dsn: str) -> None:
    """PCI: the network tables hold the PAN encrypted and masked only, never a PIN block."""
    async with networked_switch(pg_dsn) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        atm = await net.switch.atm()
        response, fields = await atm.withdraw(NETWORK_CARD, 10_000)
        assert response.fields["39"] == "00"
        await atm.complete(fields)
        await wait_until(lambda: net.acquirer.senders["demo"].delivered == 1)
        dump = await net.switch.db.fetchval(
            "SELECT (SELECT json_agg(t)::text FROM network_transactions t)"
            " || (SELECT json_agg(a)::text FROM network_advices a)"
        )
        assert NETWORK_CARD.pan not in dump and fields["52"] not in dump
        assert ZPK_HEX not in dump and "499999******0017" in dump


async def test_a_request_left_pending_by_a_dead_process_is_reversed(pg_dsn: str) -> None:
    """A network transaction still pending long after its deadline (its process died between
    sending and recording) gets a 0420 (reason 68) at the network."""
    async with networked_switch(pg_dsn) as net:
        await net.wait_status(NetworkStatus.SIGNED_ON)
        db = net.switch.db
        token = await net.switch.hsm.encrypt_pan(NETWORK_CARD.pan)
        await db.execute(
            "INSERT INTO network_transactions (network, terminal_id, stan, transmission_dt,"
            " acquirer_id, transmitted_at, pan_encrypted, pan_masked, processing_code,"
            " amount_minor, currency, created_at) VALUES ('demo', 'ATM001', '000077',"
            " '0314092653', '00000123456', now(), $1, '499999******0017', '010000', 7000,"
            " '156', now() - interval '10 minutes')",
            token,
        )
        assert await net.acquirer.reverse_stale() == 1
        await wait_until(lambda: net.issuer.messages("042"))
        reversal = net.issuer.messages("042")[0].fields
        assert reversal["39"] == "68" and reversal["4"] == "000000007000"
        assert reversal["2"] == NETWORK_CARD.pan
        assert await net.acquirer.reverse_stale() == 0


async def test_switch_app_installs_networks_from_config(pg_dsn: str) -> None:
    """The app's extension list wires [networks] in after authorization."""
    from switch.app import SwitchApp
    from switch.config import Config, NetworksConfig, OpsConfig, ServerConfig
    from switch.db.runtime import open_database
    from switch.hsm import SoftwareHsm
    from tests.authorization.harness import TEST_LMK

    networks = NetworksConfig(routes={"499999": "demo"}, instances={
        "demo": {"kind": "iso_host", "host": "127.0.0.1", "port": 9, "insecure": True}})
    config = Config(server=ServerConfig(port=0), ops=OpsConfig(metrics_port=0),
                    networks=networks)
    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=2) as db:
        app = SwitchApp(config, db, hsm=SoftwareHsm(TEST_LMK))
        installed = app.install_extensions()
        assert installed == ["switch.authorization", "switch.networks", "ops.install"]
        assert app.authorization.ctx.networks is app.networks
        plain = SwitchApp(Config(server=ServerConfig(port=0)), db, hsm=SoftwareHsm(TEST_LMK))
        plain.install_extensions()
        assert plain.authorization.ctx.networks is None
