"""Units of the chip side of the simulator: field 55 and the chip 0200 built from known values
(golden bytes written by hand from spec 11's table), tag 91 read back, the scenario format's chip
and [expect] errors, the chip cards' ATC memory, and the demo's chip gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from switch.commands import demo
from terminals.atm.chip import ChipApplication, field55, issuer_authentication_data
from terminals.atm.session import is_chip_service_code
from terminals.hostlink.financial import chip_request_fields
from terminals.scenarios.expect import ExpectationError, parse_expectation
from terminals.scenarios.loader import ScenarioError, parse_scenario
from terminals.scenarios.wallet import ChipWallet

CHIP_TRACK2 = "6228480000000000108=30122200000000"


def application() -> ChipApplication:
    app = ChipApplication(bytes.fromhex("A000000333010101"), {
        "57": bytes.fromhex("6228480000000000108D30122200000000"),
        "5F34": b"\x01", "82": bytes.fromhex("1800"),
        "8C": b"", "8D": b""})
    app.arqc_tags = {
        "9F26": bytes.fromhex("1122334455667788"), "9F27": b"\x80",
        "9F10": bytes.fromhex("06010A03A00000"), "9F37": bytes.fromhex("CAFEBABE"),
        "9F36": bytes.fromhex("0005"), "95": bytes.fromhex("0000040000"),
        "9A": bytes.fromhex("261129"), "9C": b"\x01", "9F02": bytes.fromhex("000000050000"),
        "9F03": bytes(6), "5F2A": bytes.fromhex("0156"), "9F1A": bytes.fromhex("0156")}
    return app


def test_field55_golden() -> None:
    expected = ("9F26081122334455667788" "9F270180" "9F100706010A03A00000" "9F3704CAFEBABE"
                "9F36020005" "95050000040000" "9A03261129" "9C0101" "9F0206000000050000"
                "9F0306000000000000" "5F2A020156" "82021800" "9F1A020156")
    assert field55(application()) == expected
    assert application().track2 == CHIP_TRACK2 and application().psn == "01"


def test_chip_request_fields() -> None:
    fields = chip_request_fields({"22": "021", "35": "x", "4": "000000050000"},
                                 track2=CHIP_TRACK2, psn="01", icc_data_hex="9C0101")
    assert fields == {"22": "051", "23": "001", "35": CHIP_TRACK2, "4": "000000050000",
                      "55": "9C0101"}
    with pytest.raises(ValueError):
        chip_request_fields({}, track2=CHIP_TRACK2, psn="1", icc_data_hex="")


def test_issuer_authentication_data() -> None:
    # Spec 11's response 55: 91 0A + ARPC (8) + ARC "00" (3030).
    assert issuer_authentication_data("910A" "0102030405060708" "3030") == bytes.fromhex(
        "01020304050607083030")
    assert issuer_authentication_data(None) is None
    assert issuer_authentication_data("9105AABBCCDDEE") is None  # wrong length
    assert issuer_authentication_data("91") is None  # malformed


def test_chip_service_code() -> None:
    assert is_chip_service_code(CHIP_TRACK2)
    assert is_chip_service_code("6228480000000000017=30126010000000")
    assert not is_chip_service_code("6228480000000000017=30121010000000")


def session(**extra: object) -> dict[str, object]:
    return {"card": CHIP_TRACK2, "transactions": [{"type": "balance"}], **extra}


@pytest.mark.parametrize(("document", "message"), [
    ({"sessions": [session(chip={"imk_ac": "00"})]}, "sessions[0].chip.imk_ac"),
    ({"sessions": [session(chip={"imk_ac": "0" * 32, "psn": "1"})]}, "sessions[0].chip.psn"),
    ({"sessions": [session(chip={"imk_ac": "0" * 32, "pin": "1"})]}, "sessions[0].chip must"),
    ({"sessions": [session()], "requires": ["nfc"]}, "requires must list"),
    ({"sessions": [session()], "expect": {"codes": []}}, "expect: unknown key(s): codes"),
    ({"sessions": [session()], "expect": {"cash_paid_out": "1"}}, "expect.cash_paid_out"),
])
def test_scenario_errors_name_the_entry(document: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(document, "x")
    assert message in str(raised.value)


def test_expectation_transactions_only_known_keys() -> None:
    with pytest.raises(ExpectationError):
        parse_expectation({"transactions": [{"colour": "red"}]})


def test_wallet_keeps_atcs_across_runs_and_never_lowers_them(tmp_path: Path) -> None:
    scenario = parse_scenario({"sessions": [session(chip={"imk_ac": "0" * 32, "atc": 3})]}, "x")
    first = ChipWallet(tmp_path)
    card = first.card_for(scenario.sessions[0])
    assert card is not None and card.atc == 3
    assert first.card_for(scenario.sessions[0]) is card  # the same card comes back
    card.atc = 9
    first.save()
    assert "6228480000000000108" not in (tmp_path / "chip_cards.json").read_text()
    again = ChipWallet(tmp_path).card_for(scenario.sessions[0])
    assert again is not None and again.atc == 9


def test_demo_adds_the_chip_card_only_when_the_switch_supports_chip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import switch.authorization

    monkeypatch.setattr(switch.authorization, "CHIP_CARDS_SUPPORTED", False, raising=False)
    assert demo.switch_supports_chip() is False
    assert all("emv" not in card for card in demo.demo_fixture(chip=False)["cards"])
    monkeypatch.setattr(switch.authorization, "CHIP_CARDS_SUPPORTED", True, raising=False)
    assert demo.switch_supports_chip() is True
    assert [c["pan"] for c in demo.demo_fixture(chip=True)["cards"] if "emv" in c] == [
        demo.DEMO_CHIP_PAN]
    from terminals.scenarios.loader import load_scenario

    scenario = demo.with_chip_withdrawal(load_scenario("demo"))
    assert scenario.sessions[-1].chip is not None and scenario.expect is None
    assert [card.kind for card in demo.demo_cards(chip=True)] == ["stripe", "stripe", "chip"]
