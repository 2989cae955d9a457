"""The load-test population is a pure function of the index: every generator process and
the fixture file agree on ids, PANs, PINs and TMKs, in the fixture format of spec 9."""

from __future__ import annotations

from loadtest.population import fixtures, luhn_check_digit, terminal


def test_luhn_check_digit_by_hand() -> None:
    # 7992739871 -> check digit 3 (the classic worked example of the Luhn algorithm).
    assert luhn_check_digit("7992739871") == "3"


def test_fixture_document_matches_the_terminals() -> None:
    document = fixtures(3, seed="s")
    assert [t["id"] for t in document["terminals"]] == ["LT000000", "LT000001", "LT000002"]
    for index, card in enumerate(document["cards"]):
        expected = terminal(index, 3, seed="s")
        assert card["pan"] == expected.pan and card["pin"] == expected.pin
        assert card["account"] == expected.account_id
        assert document["terminals"][index]["tmk"] == expected.tmk.hex().upper()
        assert luhn_check_digit(card["pan"][:-1]) == card["pan"][-1]
        assert len(card["pin"]) == 4 and card["pin"].isdigit()
    assert {a["id"] for a in document["accounts"]} == {"LA000000", "LA000001", "LA000002"}
    assert all(a["balance"] < 10**12 for a in document["accounts"])  # fits field 54
    assert terminal(2, 3, seed="s").payee_account_id == "LA000000"


def test_a_single_terminal_still_has_someone_to_pay() -> None:
    document = fixtures(1)
    assert terminal(0, 1).payee_account_id == "LA000001"
    assert {a["id"] for a in document["accounts"]} == {"LA000000", "LA000001"}


def test_terminals_only_for_the_idle_connection_run() -> None:
    assert set(fixtures(2, cards=False)) == {"terminals"}
