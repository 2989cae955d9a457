"""Issue 11 item 2: stand-in approves only what the policy allows (pure rules, each shown
failing on its own), and the per-card daily usage is counted from real PostgreSQL rows."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from switch.db.runtime import Database
from switch.networks import transactions
from switch.networks.stand_in import StandInLimits, StandInRequest, StandInUsage, refusal

TODAY = dt.date(2026, 11, 29)
LIMITS = StandInLimits(floor_minor=10_000, daily_max_minor=15_000, daily_count_max=2)
OK = StandInRequest("011000", 5_000, expiry="2611", pin_bearing=False, entry_mode="90")


def test_a_request_inside_every_rule_is_approved() -> None:
    assert refusal(LIMITS, OK, StandInUsage(), TODAY) is None
    assert refusal(LIMITS, OK, StandInUsage(1, 10_000), TODAY) is None


@pytest.mark.parametrize(
    ("change", "usage", "reason"),
    [
        ({"amount_minor": 10_001}, StandInUsage(), "above the floor"),
        ({"processing_code": "310000"}, StandInUsage(), "not a withdrawal"),
        ({"pin_bearing": True}, StandInUsage(), "PIN cannot be verified"),
        ({"entry_mode": "012"}, StandInUsage(), "key-entered"),
        ({"expiry": "2610"}, StandInUsage(), "expired"),
        ({"expiry": None}, StandInUsage(), "expired or no expiry"),
        ({"expiry": "2613"}, StandInUsage(), "expired or no expiry"),
        ({}, StandInUsage(2, 0), "daily stand-in count"),
        ({}, StandInUsage(1, 10_001), "daily stand-in amount"),
    ],
)
def test_each_rule_refuses_on_its_own(
    change: dict[str, object], usage: StandInUsage, reason: str
) -> None:
    request = dataclasses.replace(OK, **change)  # type: ignore[arg-type]
    refused = refusal(LIMITS, request, usage, TODAY)
    assert refused is not None and reason in refused


def test_no_floor_means_no_stand_in() -> None:
    assert refusal(StandInLimits(), OK, StandInUsage(), TODAY) == "no stand-in configured"


async def test_daily_usage_counts_only_this_cards_stand_ins_today(db: Database) -> None:
    now = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)

    async def row(stan: str, pan_hash: str, state: str, amount: int, network: str = "n") -> None:
        new = transactions.NewTransaction(
            network=network, terminal_id="ATM00001", stan=stan, transmission_dt="1129120000",
            acquirer_id="1", transmitted_at=now, pan_encrypted="x", pan_masked="x", expiry=None,
            processing_code="011000", amount_minor=amount, currency="156", from_account=None,
            to_account=None, acceptor={}, pan_hash=pan_hash)
        transaction_id = await transactions.open_transaction(db, new)
        await transactions.record_answer(db, transaction_id, state=state, response_code="00")

    await row("000001", "card-a", "stand_in", 3_000)
    await row("000002", "card-a", "stand_in", 4_000)
    await row("000003", "card-a", "approved", 9_000)  # not a stand-in
    await row("000004", "card-b", "stand_in", 5_000)  # another card
    await row("000005", "card-a", "stand_in", 6_000, network="other")  # another network
    assert await transactions.stand_in_usage_today(db, "n", "card-a", dt.datetime.now(dt.UTC)) \
        == (2, 7_000)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert await transactions.stand_in_usage_today(db, "n", "card-a", yesterday) == (0, 0)
