"""The operations CLI of spec 9 and the administration commands, run in-process against the
per-test PostgreSQL (``--dsn``): exact ``accounts show --json`` keys, idempotent fixture
loading, audited admin actions, clear errors with non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switch.cli import main
from tests.authorization.harness import FIXTURE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def env(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("ATM_SWITCH_ACTOR", "tester")
    monkeypatch.delenv("ATM_SWITCH_HSM_TEST_MODE", raising=False)
    fixture = tmp_path / "fixture.json"
    fixture.write_text(json.dumps(FIXTURE, ensure_ascii=False), encoding="utf-8")
    return ["--data-dir", str(tmp_path / "data"), "--dsn", pg_dsn]


def test_fixtures_accounts_show_and_admin(env: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    fixture = str(tmp_path / "fixture.json")
    assert run(capsys, "db", "init", *env)[0] == 0
    for _ in range(2):  # loading twice is fine and moves no money
        code, out, _ = run(capsys, "fixtures", "load", fixture, *env)
        assert code == 0 and "8 card(s)" in out
    code, out, _ = run(capsys, "accounts", "show", "ACC1", "--json", *env)
    assert code == 0
    assert json.loads(out) == {"id": "ACC1", "currency": "156", "ledger_balance": 1_370_000,
                               "available_balance": 1_370_000, "held": 0}
    assert (tmp_path / "data" / "lmk.key").stat().st_mode & 0o777 == 0o600

    code, out, _ = run(capsys, "accounts", "freeze", "ACC2", "--json", *env)
    assert code == 0 and json.loads(out)["status"] == "frozen"
    code, _, err = run(capsys, "accounts", "freeze", "ACC2", *env)  # issue 20: no-op refused
    assert code == 1 and "already frozen: nothing changed" in err
    pan_file = tmp_path / "pan.txt"  # PANs never on the command line (issue 11 item 5)
    pan_file.write_text("6228480000000000017\n")
    code, out, _ = run(capsys, "cards", "lost", "--pan-file", str(pan_file), "--json", *env)
    assert code == 0 and json.loads(out)["status"] == "lost"
    assert "6228480000000000017" not in out and json.loads(out)["pan"] == "622848*********0017"
    code, _, err = run(capsys, "cards", "lost", "--pan-file", str(pan_file), *env)
    assert code == 1 and "already lost: nothing changed" in err  # and not audited (below)
    code, out, _ = run(capsys, "reports", "audit", "--json", *env)
    actions = [row["action"] for row in json.loads(out)]
    assert actions[:2] == ["card.status.lost", "account.status.frozen"]
    assert all(row["actor"] == "tester" for row in json.loads(out))
    numeric = tmp_path / "numeric.json"
    numeric.write_text(json.dumps({"accounts": [{"id": "N1", "name": "n", "currency": 156,
                                                 "balance": 7}]}))
    assert run(capsys, "fixtures", "load", str(numeric), *env)[0] == 0
    code, out, _ = run(capsys, "accounts", "show", "N1", "--json", *env)
    assert json.loads(out)["currency"] == "156"
    code, out, _ = run(capsys, "accounts", "open", "NEW1", "--name", "新账户", "--balance", "500",
                       *env)
    assert code == 0
    code, out, _ = run(capsys, "accounts", "show", "NEW1", "--json", *env)
    assert json.loads(out)["ledger_balance"] == 500


def test_cli_errors_are_clear_and_nonzero(env: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fixtures", "load", str(tmp_path / "missing.json"), *env)
    assert code != 0 and "not found" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cards": [{"pan": "12", "expiry": "3012", "account": "X",
                                          "pin": "1234"}]}))
    code, _, err = run(capsys, "fixtures", "load", str(bad), *env)
    assert code != 0 and "cards[0]" in err
    code, _, err = run(capsys, "accounts", "show", "NOPE", "--json", *env)
    assert code != 0 and "NOPE" in err
    (tmp_path / "pan.txt").write_text("6228480000000000017\n")
    code, _, err = run(capsys, "cards", "issue", "--pan-file", str(tmp_path / "pan.txt"),
                       "--expiry",
                       "3012", "--account", "ACC1", *env)
    assert code != 0 and "test mode" in err


def test_card_issue_in_test_mode_prints_mailer(env: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, "fixtures", "load", str(tmp_path / "fixture.json"), *env)[0] == 0
    monkeypatch.setenv("ATM_SWITCH_HSM_TEST_MODE", "1")
    (tmp_path / "pan.txt").write_text("6228480000000000108\n")
    code, out, _ = run(capsys, "cards", "issue", "--pan-file", str(tmp_path / "pan.txt"),
                       "--expiry",
                       "3012", "--account", "ACC1", "--json", *env)
    assert code == 0
    issued = json.loads(out)
    assert len(issued["pin_mailer"]) == 4 and issued["pin_mailer"].isdigit()
    assert issued["created"] is True
    code, out, _ = run(capsys, "cards", "reset-tries", "--pan-file", str(tmp_path / "pan.txt"),
                       "--json", *env)
    assert code == 0 and json.loads(out)["pin_tries"] == 0
