"""``card_chips`` on real PostgreSQL: fixtures load ``cards[].emv``, the ATC record is atomic.

Goal: the chip data of section 9/11 is stored under the LMK (an E0 handle, never the clear
IMK), loading clears the accepted ATC, a malformed ``emv`` fails the load with a clear
message and writes nothing for that card, and of any number of racing records of one ATC
exactly one wins. Method: the per-test PostgreSQL database of tests/conftest.py, the real
fixture loader and ledger, a real SoftwareHsm; races run as concurrent Trio tasks on a pool.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import trio

from ledger_adapter.postgres import PostgresLedger
from switch.authorization.fixtures import FixtureError, load_fixtures
from switch.db.runtime import Database
from switch.emv.checks import Fraud, Passed, check_chip
from switch.emv.store import (
    RECORD_ACCEPTED_ATC_SQL,
    chip_on_file,
    record_accepted_atc,
)
from switch.hsm import SoftwareHsm
from tests.emv.card import IMK, PAN, PSN, card_tags, chip_0200

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning:pyemv"
)

STRIPE_PAN = "6225880123456797"
FIXTURE: dict[str, Any] = {
    "accounts": [{"id": "ACC1", "name": "王小明", "currency": "156", "balance": 1_000_000}],
    "cards": [
        {"pan": PAN, "expiry": "2812", "account": "ACC1", "pin": "1234",
         "emv": {"imk_ac": IMK, "psn": PSN}},
        {"pan": STRIPE_PAN, "expiry": "2812", "account": "ACC1", "pin": "1234"},
    ],
}  # fmt: skip


async def _card_id(db: Database, hsm: SoftwareHsm, pan: str) -> int:
    card_id: int = await db.fetchval(
        "SELECT card_id FROM cards WHERE pan_hash = $1", await hsm.pan_lookup_hash(pan)
    )
    return card_id


async def _load(db: Database, hsm: SoftwareHsm, document: dict[str, Any]) -> None:
    await load_fixtures(db, hsm, PostgresLedger(db), document)


async def test_emv_is_loaded_under_the_lmk_as_a_non_exportable_e0_key(
    db: Database, hsm: SoftwareHsm
) -> None:
    await _load(db, hsm, FIXTURE)
    chip = await chip_on_file(db, await _card_id(db, hsm, PAN))
    assert chip is not None
    assert (chip.psn, chip.atc_accepted) == (PSN, None)
    info = await hsm.key_info(chip.imk_ac)
    assert (info.usage, info.mode_of_use, info.exportability) == ("E0", "X", "N")
    rows = await db.fetch("SELECT * FROM card_chips")
    assert len(rows) == 1
    stored = json.dumps([dict(r) for r in rows], default=str).upper()
    assert IMK not in stored
    assert await chip_on_file(db, await _card_id(db, hsm, STRIPE_PAN)) is None


async def test_atc_record_grows_only_and_reloading_clears_it(
    db: Database, hsm: SoftwareHsm
) -> None:
    await _load(db, hsm, FIXTURE)
    card_id = await _card_id(db, hsm, PAN)
    assert [await record_accepted_atc(db, card_id, atc) for atc in (5, 5, 4, 6, 0)] == [
        True,
        False,
        False,
        True,
        False,
    ]
    chip = await chip_on_file(db, card_id)
    assert chip is not None and chip.atc_accepted == 6
    await _load(db, hsm, FIXTURE)  # loading the card clears its record (section 11)
    chip = await chip_on_file(db, card_id)
    assert chip is not None and chip.atc_accepted is None
    assert await record_accepted_atc(db, card_id, 1)
    assert not await record_accepted_atc(db, await _card_id(db, hsm, STRIPE_PAN), 1)


async def test_a_fixture_without_emv_makes_the_card_a_stripe_card_again(
    db: Database, hsm: SoftwareHsm
) -> None:
    await _load(db, hsm, FIXTURE)
    document = copy.deepcopy(FIXTURE)
    del document["cards"][0]["emv"]
    await _load(db, hsm, document)
    assert await chip_on_file(db, await _card_id(db, hsm, PAN)) is None


@pytest.mark.parametrize(
    ("emv", "message"),
    [
        ("0123", "cards[0].emv must be an object"),
        ({"psn": "01"}, "cards[0].emv.imk_ac must be 32 hexadecimal"),
        ({"imk_ac": IMK[:-2], "psn": "01"}, "cards[0].emv.imk_ac must be 32 hexadecimal"),
        ({"imk_ac": IMK + "00" * 8, "psn": "01"}, "cards[0].emv.imk_ac must be 32 hexadecimal"),
        ({"imk_ac": "G" + IMK[1:], "psn": "01"}, "cards[0].emv.imk_ac must be 32 hexadecimal"),
        ({"imk_ac": IMK}, "cards[0].emv.psn must be 2 digits"),
        ({"imk_ac": IMK, "psn": 1}, "cards[0].emv.psn must be 2 digits"),
        ({"imk_ac": IMK, "psn": "1"}, "cards[0].emv.psn must be 2 digits"),
        ({"imk_ac": IMK, "psn": "0x"}, "cards[0].emv.psn must be 2 digits"),
    ],
)
async def test_malformed_emv_fails_the_load_clearly_and_writes_no_card(
    db: Database, hsm: SoftwareHsm, emv: Any, message: str
) -> None:
    document = copy.deepcopy(FIXTURE)
    document["cards"][0]["emv"] = emv
    with pytest.raises(FixtureError, match=message.replace("[", r"\[").replace("]", r"\]")):
        await _load(db, hsm, document)
    assert await db.fetchval("SELECT count(*) FROM cards") == 0
    assert await db.fetchval("SELECT count(*) FROM card_chips") == 0


async def test_racing_records_of_one_atc_let_exactly_one_pass(
    db: Database, hsm: SoftwareHsm
) -> None:
    await _load(db, hsm, FIXTURE)
    card_id = await _card_id(db, hsm, PAN)
    wins: list[int] = []

    async def record(atc: int) -> None:
        if await record_accepted_atc(db, card_id, atc):
            wins.append(atc)

    async with trio.open_nursery() as nursery:
        for _ in range(24):
            nursery.start_soon(record, 9)
    assert wins == [9]
    # Mixed ATCs racing: whatever the interleaving, the record ends at the greatest.
    async with trio.open_nursery() as nursery:
        for atc in (12, 10, 15, 11, 15, 13, 14):
            nursery.start_soon(record, atc)
    assert max(wins) == 15 and wins.count(15) == 1
    chip = await chip_on_file(db, card_id)
    assert chip is not None and chip.atc_accepted == 15


async def test_check_then_conditional_record_passes_an_atc_once(
    db: Database, hsm: SoftwareHsm
) -> None:
    """The integration in miniature: read, check, then the conditional record decides races."""
    await _load(db, hsm, FIXTURE)
    card_id = await _card_id(db, hsm, PAN)
    fields = chip_0200(card_tags(atc=3))
    outcomes: list[str] = []

    async def authorize() -> None:
        chip = await chip_on_file(db, card_id)
        result = await check_chip(fields, chip, hsm)
        if isinstance(result, Passed):
            recorded = await db.fetchval(RECORD_ACCEPTED_ATC_SQL, card_id, result.atc)
            outcomes.append("passed" if recorded is not None else "59 replay (raced)")
        else:
            assert isinstance(result, Fraud)
            outcomes.append("59 " + result.reason)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(authorize)
    assert outcomes.count("passed") == 1
    assert len(outcomes) == 8
    await authorize()  # later: the accepted ATC on file makes it a replay at check time
    assert "replay" in outcomes[-1]
