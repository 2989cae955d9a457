"""Chip cards end to end: the simulated ATM (firmware, drivers, the card reader emulator holding
an emulated chip card, on real ptys) against the in-test issuer over real TCP, which checks every
ARQC and makes every ARPC with `pyemv` (tests/sim/chip_issuer.py). The real switch answers chip
0200s once the lead wires spec 11 into its authorization; until then this is the host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyemv
import pytest
import trio

from terminals.scenarios.loader import parse_scenario
from terminals.scenarios.runner import run_scenario
from tests.sim.chip_issuer import MANDATORY, ChipIssuer, IssuerCard
from tests.sim.conftest import TMK, scenario_document

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")

IMK = "00112233445566778899AABBCCDDEEFF"
CHIP_PAN, STRIPE_PAN = "6228480000000000108", "6228480000000000017"
CHIP_TRACK2 = f"{CHIP_PAN}=30122200000000"
STRIPE_TRACK2 = f"{STRIPE_PAN}=30121010000000"


@pytest.fixture
async def issuer() -> AsyncIterator[tuple[ChipIssuer, int]]:
    host = ChipIssuer(bytes.fromhex(TMK), {
        CHIP_PAN: IssuerCard(CHIP_PAN, "1234", 1_000_000, bytes.fromhex(IMK), "01"),
        STRIPE_PAN: IssuerCard(STRIPE_PAN, "1234", 1_000_000),
    })
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.serve)
        yield host, port
        nursery.cancel_scope.cancel()


def chip_session(*transactions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"card": CHIP_TRACK2, "language": "en", "pins": ["1234"],
            "chip": {"imk_ac": IMK, "psn": "01", "atc": 4}, "transactions": list(transactions),
            **extra}


async def play(port: int, tmp_path: Path, *sessions: dict[str, Any], **top: Any
               ) -> dict[str, Any]:
    scenario = parse_scenario(scenario_document(*sessions, **top), "chip")
    return await run_scenario(scenario, host="127.0.0.1", port=port, data_dir=tmp_path / "atm",
                              durable_journal=False)


async def test_chip_withdrawal_approved_with_a_tc(issuer: tuple[ChipIssuer, int],
                                                  tmp_path: Path) -> None:
    """The 0200 carries 22 = 051, 23, 35 from tag 57 and a 55 with every mandatory tag; the
    issuer's pyemv check passes, its pyemv ARPC is accepted by the card (TC), notes go out and
    the 0220 completes the hold."""
    host, port = issuer
    result = await play(port, tmp_path, chip_session({"type": "withdrawal", "amount": 50_000}))
    [record] = result["transactions"]
    assert (record["response_code"], record["outcome"], record["cryptogram"]) == (
        "00", "approved", "TC")
    assert record["dispensed"] == result["cash_paid_out"] == 50_000
    [request] = host.requests("0200")
    assert (request["22"], request["23"], request["35"]) == ("051", "001", CHIP_TRACK2)
    tags = pyemv.tlv.decode(bytes.fromhex(request["55"]), simple=True)
    assert {tag: len(tags[tag]) for tag in MANDATORY} == MANDATORY
    assert tags["9F36"] == b"\x00\x05" and tags["9F02"].hex() == request["4"]
    assert len(host.requests("0220")) == 1 and host.requests("0420") == []
    assert result["advices_pending"] == 0
    assert host.cards[CHIP_PAN].balance == 1_000_000 - 50_000
    [card] = result["chip_cards"].values()
    assert card["decisions"][-1] == {"atc": 5, "requested": "TC", "returned": "TC",
                                     "arpc_verified": True}


@pytest.mark.parametrize("flaw", ["corrupt_arpc", "omit_arpc"])
async def test_card_rejecting_the_arpc_stops_the_dispense(
    issuer: tuple[ChipIssuer, int], tmp_path: Path, flaw: str
) -> None:
    """After a 00 whose ARPC the card cannot verify (or that has none), the card returns an
    AAC: no note leaves, and the 0420 says 22; the hold is released."""
    host, port = issuer
    setattr(host.cards[CHIP_PAN], flaw, True)
    result = await play(port, tmp_path, chip_session({"type": "withdrawal", "amount": 30_000}))
    [record] = result["transactions"]
    assert (record["response_code"], record["outcome"], record["cryptogram"]) == (
        "00", "card_declined", "AAC")
    assert record["reversal_reason"] == "22" and result["cash_paid_out"] == 0
    [reversal] = host.requests("0420")
    assert reversal["39"] == "22" and reversal["37"] == host.requests("0200")[0]["37"]
    assert host.requests("0220") == [] and host.holds == {}
    assert host.cards[CHIP_PAN].balance == 1_000_000


async def test_decline_carries_an_arpc_and_the_card_ends_with_an_aac(
    issuer: tuple[ChipIssuer, int], tmp_path: Path
) -> None:
    host, port = issuer
    host.cards[CHIP_PAN].answer = "51"
    result = await play(port, tmp_path, chip_session({"type": "withdrawal", "amount": 30_000}))
    [record] = result["transactions"]
    assert (record["response_code"], record["outcome"], record["cryptogram"]) == (
        "51", "declined", "AAC")
    assert host.requests("0420") == [] and result["cash_paid_out"] == 0
    [card] = result["chip_cards"].values()
    assert card["decisions"][-1]["arpc_verified"] is True  # the ARPC over ARC 51 verified


async def test_every_transaction_of_a_session_gets_a_fresh_atc(
    issuer: tuple[ChipIssuer, int], tmp_path: Path
) -> None:
    """Balance, withdrawal, then a second visit of the same card: ATCs 5, 6, 7 and the card's
    memory keeps 7 in the terminal's data directory for the next run."""
    host, port = issuer
    result = await play(port, tmp_path,
                        chip_session({"type": "balance"}, {"type": "withdrawal", "amount": 10_000}),
                        chip_session({"type": "balance"}, language="zh"))
    assert [t["response_code"] for t in result["transactions"]] == ["00", "00", "00"]
    atcs = [pyemv.tlv.decode(bytes.fromhex(r["55"]), simple=True)["9F36"]
            for r in host.requests("0200")]
    assert atcs == [b"\x00\x05", b"\x00\x06", b"\x00\x07"]
    again = await play(port, tmp_path, chip_session({"type": "balance"}))
    assert again["transactions"][0]["response_code"] == "00"  # ATC 8: no replay


async def test_mute_chip_is_not_read_by_stripe(issuer: tuple[ChipIssuer, int],
                                               tmp_path: Path) -> None:
    """No ATR from a card whose service code says chip: the card is returned unread, no 0200
    (spec 11: no fallback)."""
    host, port = issuer
    result = await play(port, tmp_path, chip_session({"type": "balance"}),
                        faults={"card_reader.chip_mute": {"at": [1]}})
    assert result["sessions"][0]["card_outcome"] == "returned"
    assert result["transactions"] == [] and host.requests("0200") == []


async def test_chip_silent_at_the_second_generate_ac(issuer: tuple[ChipIssuer, int],
                                                     tmp_path: Path) -> None:
    host, port = issuer
    result = await play(port, tmp_path, chip_session({"type": "withdrawal", "amount": 20_000}),
                        faults={"card_reader.chip_no_answer": {"at": [2]}})
    [record] = result["transactions"]
    assert (record["outcome"], record["cryptogram"], record["reversal_reason"]) == (
        "card_declined", "none", "22")
    assert result["cash_paid_out"] == 0 and host.cards[CHIP_PAN].balance == 1_000_000


async def test_chip_silent_at_the_first_generate_ac_sends_nothing(
    issuer: tuple[ChipIssuer, int], tmp_path: Path
) -> None:
    host, port = issuer
    result = await play(port, tmp_path, chip_session({"type": "withdrawal", "amount": 20_000}),
                        faults={"card_reader.chip_no_answer": {"at": [1]}})
    [record] = result["transactions"]
    assert record["outcome"] == "chip_error" and host.requests("0200") == []
    assert result["sessions"][0]["card_outcome"] == "returned"


async def test_stripe_cards_are_unchanged_and_a_stripe_only_reader_gets_05(
    issuer: tuple[ChipIssuer, int], tmp_path: Path
) -> None:
    host, port = issuer
    stripe = {"card": STRIPE_TRACK2, "language": "en", "pins": ["1234"],
              "transactions": [{"type": "balance"}]}
    result = await play(port, tmp_path, stripe)
    [request] = host.requests("0200")
    assert (request["22"], "23" in request, "55" in request) == ("021", False, False)
    assert result["transactions"][0]["response_code"] == "00"
    no_chip = await play(port, tmp_path / "b", chip_session({"type": "balance"}),
                         terminal={"chip_reader": False})
    assert host.requests("0200")[-1]["22"] == "021"
    assert no_chip["transactions"][0]["response_code"] == "05"


async def test_replayed_atc_gets_59_and_the_card_is_returned_at_once(
    issuer: tuple[ChipIssuer, int], tmp_path: Path
) -> None:
    """The issuer already accepted a higher ATC (spec 11 replay rule): 59, the card goes back to
    the customer without a second transaction, and nothing is reversed or dispensed."""
    host, port = issuer
    host.cards[CHIP_PAN].atc_accepted = 100
    result = await play(port, tmp_path, chip_session({"type": "withdrawal", "amount": 20_000},
                                                     {"type": "balance"}))
    [record] = result["transactions"]
    assert (record["response_code"], record["cryptogram"]) == ("59", "AAC")
    assert "reversal_reason" not in record and result["cash_paid_out"] == 0
    assert result["sessions"][0]["card_outcome"] == "returned"
    assert len(host.requests("0200")) == 1 and host.requests("0420") == []
