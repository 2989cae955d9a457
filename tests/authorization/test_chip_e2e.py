"""Chip cards (spec 11) through the running switch: real TCP, real PostgreSQL, the 0200 batch.

The card side is pyemv (``tests/emv/card.py``, an independent implementation): it computes the
ARQC a genuine card would, and verifies the ARPC the switch sends back.
"""

from __future__ import annotations

import warnings
from typing import Any

import trio
from pyemv import ac as pyemv_ac

from switch.emv.tlv import encode_tlv_hex
from switch.protocol.field48 import decode_tags
from terminals.hostlink.financial import CardData, chip_request_fields
from tests.authorization.harness import FIXTURE, PIN, running_switch
from tests.emv.card import IMK, PAN, PSN, TRACK2, card_tags, session_key

CHIP_CARD = CardData(PAN, "2812")
CHIP_FIXTURE: dict[str, Any] = {
    **FIXTURE,
    "accounts": [*FIXTURE["accounts"],
                 {"id": "CHIP1", "name": "Chip", "currency": "156", "balance": 1_000_000}],
    "cards": [*FIXTURE["cards"],
              {"pan": PAN, "expiry": "2812", "account": "CHIP1", "pin": PIN,
               "emv": {"imk_ac": IMK, "psn": PSN}}],
}


def chip_fields(atm: Any, *, atc: int, amount: int = 10_000, pin: str = PIN,
                tags: dict[str, bytes] | None = None, **changes: str) -> dict[str, str]:
    fields = atm.request_fields(CHIP_CARD, "011000", amount, pin=pin)
    icc = tags if tags is not None else card_tags(atc=atc, amount=f"{amount:012d}")
    chip = chip_request_fields(fields, track2=TRACK2, psn=PSN, icc_data_hex=encode_tlv_hex(icc))
    chip.update(changes)
    return chip


def arpc_of(response: Any) -> tuple[bytes, bytes] | None:
    field55 = response.fields.get("55")
    if field55 is None:
        return None
    value = bytes.fromhex(field55)
    assert value[:2] == b"\x91\x0a"  # tag 91, 10 bytes: ARPC || ARC
    return value[2:10], value[10:12]


def verify_arpc(atc: int, arqc: bytes, arpc: bytes, arc: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pyemv_ac.generate_arpc_1(session_key(atc), arqc, arc)
    return expected == arpc


async def _tries(switch: Any) -> int:
    return int(await switch.db.fetchval(
        "SELECT pin_tries FROM cards c JOIN card_chips k USING (card_id)"))


async def test_chip_withdrawal_approved_with_an_arpc_the_card_accepts(pg_dsn: str) -> None:
    async with running_switch(pg_dsn, fixture=CHIP_FIXTURE) as switch:
        atm = await switch.atm("ATM001")
        fields = chip_fields(atm, atc=7)
        response = await atm.send("0200", fields)
        assert response.fields["39"] == "00"
        arpc, arc = arpc_of(response) or (b"", b"")
        assert arc == b"00"
        assert verify_arpc(7, card_tags(atc=7)["9F26"], arpc, arc)
        assert "23" not in response.fields
        assert await switch.balance("CHIP1") == (1_000_000, 990_000, 10_000)
        # An exact retransmission gets its original 0210 (5.5), ARPC included, not 59.
        repeat = await atm.send("0200", fields)
        assert dict(repeat.fields) == dict(response.fields)


async def test_each_chip_fraud_is_59_with_no_effect_and_no_pin_try(pg_dsn: str) -> None:
    async with running_switch(pg_dsn, fixture=CHIP_FIXTURE) as switch:
        atm = await switch.atm("ATM001")
        assert (await atm.send("0200", chip_fields(atm, atc=10))).fields["39"] == "00"
        corrupted = card_tags(atc=11)
        corrupted["9F26"] = bytes(b ^ 0x01 for b in corrupted["9F26"])
        cases = {
            "corrupted ARQC": chip_fields(atm, atc=11, tags=corrupted),
            "wrong PSN": chip_fields(atm, atc=12, **{"23": "002"}),
            "4 vs 9F02": chip_fields(atm, atc=13, tags=card_tags(atc=13, amount="000000020000")),
            "replayed ATC": chip_fields(atm, atc=10),
            "lower ATC": chip_fields(atm, atc=9),
        }
        for name, fields in cases.items():
            response = await atm.send("0200", fields)
            assert response.fields["39"] == "59", name
            assert "55" not in response.fields, name
        # Wrong PIN with forged chip data: never evaluated, no try spent.
        forged = chip_fields(atm, atc=11, tags=corrupted, pin="9999")
        assert (await atm.send("0200", forged)).fields["39"] == "59"
        assert await _tries(switch) == 0
        assert await switch.balance("CHIP1") == (1_000_000, 990_000, 10_000)


async def test_chip_card_by_stripe_is_05_asking_for_the_chip(pg_dsn: str) -> None:
    async with running_switch(pg_dsn, fixture=CHIP_FIXTURE) as switch:
        atm = await switch.atm("ATM001")
        stripe = atm.request_fields(CHIP_CARD, "011000", 10_000)
        response = await atm.send("0200", stripe)
        assert response.fields["39"] == "05"
        assert "insert" in decode_tags(response.fields["48"])["TX"].lower()
        assert await switch.balance("CHIP1") == (1_000_000, 1_000_000, 0)


async def test_a_decline_after_a_passed_cryptogram_carries_an_arpc_over_its_own_arc(
    pg_dsn: str,
) -> None:
    async with running_switch(pg_dsn, fixture=CHIP_FIXTURE) as switch:
        atm = await switch.atm("ATM001")
        fields = chip_fields(atm, atc=20, amount=2_000_000)  # 20,000.00 > the balance
        response = await atm.send("0200", fields)
        code = response.fields["39"]
        assert code in ("51", "61")
        arpc, arc = arpc_of(response) or (b"", b"")
        assert arc == code.encode()
        assert verify_arpc(20, card_tags(atc=20, amount="000002000000")["9F26"], arpc, arc)
        wrong_pin = await atm.send("0200", chip_fields(atm, atc=21, pin="9999"))
        assert wrong_pin.fields["39"] == "55" and arpc_of(wrong_pin) is not None


async def test_concurrent_requests_with_one_atc_pass_at_most_once(pg_dsn: str) -> None:
    async with running_switch(pg_dsn, fixture=CHIP_FIXTURE) as switch:
        atms = [await switch.atm(t) for t in ("ATM001", "ATM002", "ATM003")]
        codes: list[str] = []

        async def send(atm: Any) -> None:
            codes.append((await atm.send("0200", chip_fields(atm, atc=30))).fields["39"])

        async with trio.open_nursery() as nursery:
            for atm in atms:
                nursery.start_soon(send, atm)
        assert sorted(codes) == ["00", "59", "59"]
        assert await switch.balance("CHIP1") == (1_000_000, 990_000, 10_000)
