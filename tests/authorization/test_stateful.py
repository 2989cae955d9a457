"""Random sequences of 0200 / 0220 / 0420 / 0221 / 0421 with retransmissions against a running
switch (real TCP, real PostgreSQL), checking the account's ledger, available and held balances
against a simple model after every step (hypothesis draws the sequence)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from terminals.hostlink.financial import completion_advice, reversal_advice
from tests.authorization.harness import FIXTURE, PIN, CardData, running_switch

OPENING = 1_000_000
UNIT = 10_000
_examples = itertools.count(1)


@dataclasses.dataclass
class Txn:
    fields: dict[str, str]
    amount: int
    response: dict[str, str] | None = None
    state: str = "declined"  # declined | open | captured | released | unknown
    captured: int = 0
    reversed_amount: int = 0
    reversed: bool = False


@dataclasses.dataclass
class Model:
    txns: list[Txn] = dataclasses.field(default_factory=list)
    advices: list[tuple[str, dict[str, str], dict[str, str]]] = dataclasses.field(
        default_factory=list)

    def balances(self) -> tuple[int, int, int]:
        ledger = OPENING - sum(t.captured for t in self.txns) + sum(
            t.reversed_amount for t in self.txns)
        held = sum(t.amount for t in self.txns if t.state == "open")
        return ledger, ledger - held, held

    def complete(self, txn: Txn, amount: int) -> None:
        if txn.state == "open" and not txn.reversed:
            if amount > 0:
                txn.state, txn.captured = "captured", min(amount, txn.amount)
            else:
                txn.state = "released"

    def reverse(self, txn: Txn, dispensed: int | None) -> None:
        if txn.reversed or txn.state in ("declined", "released", "unknown"):
            txn.reversed = True
            return
        txn.reversed = True
        kept = min(dispensed or 0, txn.amount)
        if txn.state == "open":
            if kept > 0:
                txn.state, txn.captured = "captured", kept
            else:
                txn.state = "released"
            return
        give_back = txn.captured - txn.reversed_amount - kept
        if give_back > 0:
            txn.reversed_amount += give_back


def _fixture(n: int) -> tuple[dict[str, Any], CardData]:
    pan = f"62284899{n:010d}"
    card = CardData(pan + "0", "3012")
    fixture = {
        "accounts": [{"id": f"S{n}", "name": "Model", "currency": "156", "balance": OPENING}],
        "cards": [{"pan": card.pan, "expiry": "3012", "account": f"S{n}", "pin": PIN}],
        "terminals": FIXTURE["terminals"],
    }
    return fixture, card


OPERATIONS = ["withdraw", "withdraw", "retransmit", "complete", "reverse", "repeat_advice",
              "orphan_reversal"]


@settings(max_examples=30)
@given(data=st.data())
async def test_random_message_sequences_match_model(pg_dsn: str, data: st.DataObject) -> None:
    n = next(_examples)
    fixture, card = _fixture(n)
    model = Model()
    async with running_switch(pg_dsn, fixture=fixture) as switch:
        # A terminal's STAN keeps counting across examples (as it would across the day).
        atm = await switch.atm("ATM001", first_stan=n * 1000)
        now = dt.datetime.now(dt.UTC)
        for _ in range(data.draw(st.integers(4, 15), label="steps")):
            operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
            await _step(operation, data, atm, card, model, now)
            assert await switch.balance(f"S{n}") == model.balances(), operation
        await switch.ledger.check_invariants()


async def _step(operation: str, data: st.DataObject, atm: Any, card: CardData, model: Model,
                now: dt.datetime) -> None:
    approved = [t for t in model.txns if t.response is not None]
    if operation == "withdraw" or (operation != "orphan_reversal" and not approved):
        amount = UNIT * data.draw(st.integers(1, 25), label="units")
        txn = Txn(atm.request_fields(card, "010000", amount), amount)
        response = await atm.send("0200", txn.fields)
        _, available, _ = model.balances()
        expected = "00" if amount <= available else "51"
        assert response.fields["39"] == expected
        txn.response = dict(response.fields)
        txn.state = "open" if expected == "00" else "declined"
        model.txns.append(txn)
    elif operation == "retransmit":
        txn = data.draw(st.sampled_from(approved), label="txn")
        assert dict((await atm.send("0200", txn.fields)).fields) == txn.response
    elif operation == "complete":
        txn = data.draw(st.sampled_from(approved), label="txn")
        amount = UNIT * data.draw(st.integers(0, txn.amount // UNIT), label="final")
        advice = completion_advice(txn.fields, stan=atm.next_stan(), now=now,
                                   final_amount_minor=amount)
        response = await atm.send("0220", advice)
        assert response.fields["39"] == "00"
        model.complete(txn, amount)
        model.advices.append(("0221", advice, dict(response.fields)))
    elif operation == "reverse":
        txn = data.draw(st.sampled_from(approved), label="txn")
        partial = data.draw(st.booleans(), label="partial")
        dispensed = UNIT * data.draw(st.integers(0, txn.amount // UNIT)) if partial else None
        advice = reversal_advice(txn.fields, stan=atm.next_stan(), now=now,
                                 reason="32" if partial else "22", dispensed_minor=dispensed)
        response = await atm.send("0420", advice)
        assert response.fields["39"] == "00"
        model.reverse(txn, dispensed)
        model.advices.append(("0421", advice, dict(response.fields)))
    elif operation == "repeat_advice" and model.advices:
        mti, advice, first = data.draw(st.sampled_from(model.advices), label="advice")
        assert dict((await atm.send(mti, advice)).fields) == first
    elif operation == "orphan_reversal":
        fields = atm.request_fields(card, "010000", UNIT)
        response = await atm.send("0420", reversal_advice(fields, stan=atm.next_stan(), now=now,
                                                          reason="68"))
        assert response.fields["39"] == "00"
        assert (await atm.send("0200", fields)).fields["39"] == "94"
