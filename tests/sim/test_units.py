"""Unit tests of the simulator's pure parts: the state table, the note mix, screens in both
languages, reply parsing (golden values written from spec 2/3), the scenario format, and the
store-and-forward file across a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.protocol.message import Message
from terminals.atm import replies
from terminals.atm.cash import CassetteView, plan_dispense
from terminals.atm.config import AtmConfig
from terminals.atm.firmware import AtmFirmware
from terminals.atm.screens import LANGUAGES, TEXTS, format_amount, screen
from terminals.atm.states import TRANSITIONS, Event, IllegalTransition, State, next_state
from terminals.hostlink.store_forward import StoreAndForward
from terminals.scenarios.customer import amount_text
from terminals.scenarios.loader import ScenarioError, load_scenario, parse_scenario

# -- state table ------------------------------------------------------------------------------


def test_every_state_has_a_handler_and_every_target_exists(tmp_path: Path) -> None:
    """The table and the firmware agree: each non-final state is handled, each move lands on a
    state of the table, and every state is reachable from IDLE."""
    firmware = AtmFirmware(AtmConfig(), None, None, None, None, tmp_path)  # type: ignore[arg-type]
    assert set(firmware._handlers) == set(State) - {State.STOPPED}
    reachable, frontier = {State.IDLE}, [State.IDLE]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            assert target in TRANSITIONS
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(State)


def test_an_event_the_state_does_not_allow_is_a_typed_error() -> None:
    assert next_state(State.MENU, Event.SELECTED_WITHDRAWAL) is State.WITHDRAWAL_AMOUNT
    with pytest.raises(IllegalTransition, match="'dispensed' is not allowed in state 'idle'"):
        next_state(State.IDLE, Event.DISPENSED)


# -- note mix ---------------------------------------------------------------------------------

CNY = (10_000, 5_000, 2_000, 1_000)


def test_mix_prefers_large_notes_and_backtracks() -> None:
    full = [CassetteView(d, 500) for d in CNY]
    assert plan_dispense(50_000, full) == (5, 0, 0, 0)
    only_50_20 = [CassetteView(10_000, 0), CassetteView(5_000, 10), CassetteView(2_000, 10),
                  CassetteView(1_000, 0, usable=False)]
    assert plan_dispense(6_000, only_50_20) == (0, 0, 3, 0)  # greedy 50 would strand 10
    assert plan_dispense(30_000, [CassetteView(10_000, 2, usable=True),
                                  CassetteView(5_000, 1), CassetteView(2_000, 0),
                                  CassetteView(1_000, 0)]) is None


@settings(max_examples=200)
@given(amount=st.integers(1, 400).map(lambda n: n * 1_000),
       notes=st.lists(st.integers(0, 80), min_size=4, max_size=4),
       usable=st.lists(st.booleans(), min_size=4, max_size=4))
def test_mix_pays_exactly_from_what_is_there(amount: int, notes: list[int],
                                             usable: list[bool]) -> None:
    cassettes = [CassetteView(d, n, u) for d, n, u in zip(CNY, notes, usable, strict=True)]
    plan = plan_dispense(amount, cassettes)
    if plan is None:
        return
    assert sum(c * d for c, d in zip(plan, CNY, strict=True)) == amount
    for count, cassette in zip(plan, cassettes, strict=True):
        assert count <= cassette.notes and (count == 0 or cassette.usable) and count <= 60
    assert sum(plan) <= 40


# -- screens and amounts ----------------------------------------------------------------------


def test_every_screen_exists_in_both_languages() -> None:
    for name, texts in TEXTS.items():
        assert set(texts) == set(LANGUAGES), name


def test_amounts_use_integer_minor_units() -> None:
    assert format_amount(123_456) == "CNY 1,234.56"
    assert format_amount(-5, "zh") == "-0.05元"
    assert amount_text(50_000) == "500" and amount_text(12_345) == "123.45"
    shown = screen("insufficient_cash", "zh", amount=format_amount(30_000, "zh"))
    assert shown.lines[0] == "抱歉，本机现金不足，无法支付 300.00元"


# -- replies (golden values from spec 2 and 3) ------------------------------------------------


def test_field_54_and_48_ms_and_pn() -> None:
    message = Message("0210", {
        "54": "0001156C000001370000" "0002156D000000000500",
        "48": "PN005王**" "MS033" "240131D000000010000ATM withdrawal",
    })
    assert replies.balances(message) == replies.Balances(1_370_000, -500)
    assert replies.payee_name(message) == "王**"
    [line] = replies.statement(message)
    assert (line.date, line.direction, line.amount, line.description) == (
        "240131", "D", 10_000, "ATM withdrawal")
    with pytest.raises(replies.ReplyFormatError):
        replies.balances(Message("0210", {"54": "0001156X000001370000"}))


# -- scenario format --------------------------------------------------------------------------


def test_bundled_demo_scenario_loads() -> None:
    scenario = load_scenario("demo")
    assert [s.language for s in scenario.sessions] == ["en", "zh"]
    assert {t.type for s in scenario.sessions for t in s.transactions} == {
        "balance", "withdrawal", "transfer", "mini_statement"}


@pytest.mark.parametrize(("document", "message"), [
    ({"sessions": []}, "at least one"),
    ({"sessions": [{"card": "12345"}]}, r"sessions\[0\].card"),
    ({"sessions": [{"card": "6228480000000000017=3012", "language": "fr"}]}, "language"),
    ({"sessions": [{"card": "6228480000000000017=3012",
                    "transactions": [{"type": "withdrawal"}]}]}, "amount"),
    ({"sessions": [{"card": "6228480000000000017=3012"}], "terminal": {"tmk": "00"}},
     "32 hex"),
    ({"sessions": [{"card": "6228480000000000017=3012"}], "colour": 1}, "colour"),
])
def test_scenario_errors_name_the_entry(document: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(document, "x")


def test_missing_scenario_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.toml")


# -- store-and-forward ------------------------------------------------------------------------

ADVICE = {"2": "6228480000000000017", "3": "010000", "4": "000000050000", "11": "000042",
          "14": "3012", "39": "68", "41": "ATM00001"}


def test_advices_survive_a_restart_and_repeat_with_the_same_fields(tmp_path: Path) -> None:
    store = StoreAndForward(tmp_path)
    first = store.add("0420", ADVICE, {"type": "withdrawal"})
    second = store.add("0220", {**ADVICE, "11": "000043"})
    assert first.mti_to_send == "0420"
    store.mark_sent(first)
    store.acknowledge(second)

    reopened = StoreAndForward(tmp_path)  # the terminal restarted
    [kept] = reopened.pending()
    assert (kept.mti, kept.mti_to_send, kept.fields) == ("0420", "0421", ADVICE)
    assert kept.context == {"type": "withdrawal"}
    on_disk = (tmp_path / "advices.jsonl").read_text()
    assert ADVICE["2"] not in on_disk and "3012" not in on_disk  # PAN and expiry encrypted
    assert (tmp_path / "advices.key").stat().st_mode & 0o777 == 0o600
    reopened.acknowledge(kept)
    assert StoreAndForward(tmp_path).pending() == []


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    store = StoreAndForward(tmp_path)
    store.add("0420", ADVICE)
    with (tmp_path / "advices.jsonl").open("a") as handle:
        handle.write(json.dumps({"op": "ack", "id": 1})[:9])  # crash mid-write
    assert len(StoreAndForward(tmp_path).pending()) == 1
