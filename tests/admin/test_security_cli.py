"""Issue 18's bypasses tried through the CLI, in-process against the per-test PostgreSQL: one
operator's ``cards`` verbs cannot make a lost, stolen or closed card active (nor can re-loading
or re-issuing it), ``reset-tries`` changes only the counter, ``users add`` makes only the
bootstrap pair of approvers, and a change whose audit row cannot be written does not happen."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from switch.cli import main
from tests.authorization.harness import CARD_CLOSED, CARD_LOST, CARD_MAIN, CARD_STOLEN, FIXTURE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def env(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> list[str]:
    monkeypatch.setenv("ATM_SWITCH_ACTOR", "one-operator")
    monkeypatch.delenv("ATM_SWITCH_HSM_TEST_MODE", raising=False)
    fixture = tmp_path / "fixture.json"
    fixture.write_text(json.dumps(FIXTURE, ensure_ascii=False), encoding="utf-8")
    args = ["--data-dir", str(tmp_path / "data"), "--dsn", pg_dsn]
    assert run(capsys, "db", "init", *args)[0] == 0
    assert run(capsys, "fixtures", "load", str(fixture), *args)[0] == 0
    return args


def card(tmp_path: Path, pan: str) -> list[str]:
    path = tmp_path / f"pan-{pan[-4:]}.txt"
    path.write_text(pan + "\n")
    return ["--pan-file", str(path)]


def status(capsys: pytest.CaptureFixture[str], env: list[str], pan_args: list[str]) -> str:
    code, out, _ = run(capsys, "cards", "show", *pan_args, "--json", *env)
    assert code == 0
    return str(json.loads(out)["status"])


def test_stolen_block_unblock_stays_stolen(env: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # The review: stolen -> block -> unblock gave active, by one card_services user.
    stolen = card(tmp_path, CARD_STOLEN.pan)
    code, _, err = run(capsys, "cards", "block", *stolen, *env)
    assert code == 1 and "reported stolen is final" in err and "Traceback" not in err
    code, _, err = run(capsys, "cards", "unblock", *stolen, *env)
    assert code == 1 and "second person" in err
    assert status(capsys, env, stolen) == "stolen"


def test_closed_block_reset_tries_stays_closed(env: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # The review: closed -> block -> reset-tries gave active.
    closed = card(tmp_path, CARD_CLOSED.pan)
    for verb in ("block", "unblock", "lost", "stolen"):
        code, _, err = run(capsys, "cards", verb, *closed, *env)
        assert code == 1 and "closed card stays closed" in err, verb
    code, out, _ = run(capsys, "cards", "reset-tries", *closed, "--json", *env)
    assert code == 0 and json.loads(out)["status"] == "closed"


def test_lost_block_unblock_reset_tries_never_active(env: list[str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    lost = card(tmp_path, CARD_LOST.pan)
    for verb in ("block", "unblock", "reset-tries", "unblock"):
        run(capsys, "cards", verb, *lost, *env)
        assert status(capsys, env, lost) == "lost", verb
    assert run(capsys, "cards", "stolen", *lost, *env)[0] == 0  # worse is allowed
    assert status(capsys, env, lost) == "stolen"


def test_reset_tries_leaves_a_blocked_card_blocked(env: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    main_card = card(tmp_path, CARD_MAIN.pan)
    assert run(capsys, "cards", "block", *main_card, *env)[0] == 0
    code, out, _ = run(capsys, "cards", "reset-tries", *main_card, "--json", *env)
    assert code == 0 and (json.loads(out)["status"], json.loads(out)["pin_tries"]) == (
        "blocked", 0)
    assert run(capsys, "cards", "unblock", *main_card, *env)[0] == 0
    assert status(capsys, env, main_card) == "active"


def test_reloading_or_reissuing_does_not_reopen_a_card(
    env: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same PAN loaded again as active must not bring a closed or stolen card back.
    for reported in (CARD_CLOSED, CARD_STOLEN):
        again = tmp_path / f"again-{reported.pan[-4:]}.json"
        again.write_text(json.dumps({"cards": [{"pan": reported.pan, "expiry": "3012",
                                                "account": "ACC1", "pin": "1234"}]}))
        code, _, err = run(capsys, "fixtures", "load", str(again), *env)
        assert code != 0 and "Traceback" not in err
        assert status(capsys, env, card(tmp_path, reported.pan)) != "active"
    monkeypatch.setenv("ATM_SWITCH_HSM_TEST_MODE", "1")
    code, _, err = run(capsys, "cards", "issue", *card(tmp_path, CARD_STOLEN.pan), "--expiry",
                       "3012", "--account", "ACC1", *env)
    assert code == 1 and "second person" in err
    assert status(capsys, env, card(tmp_path, CARD_STOLEN.pan)) == "stolen"


def test_users_add_makes_only_the_bootstrap_pair_of_approvers(
    env: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The review: one security officer made a second officer alone. From the CLI only the
    # first two approving accounts; every later one needs a second person in the back office.
    def add(name: str, role: str) -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a long passphrase 1\n"))
        code, _, err = run(capsys, "users", "add", name, "--role", role, *env)
        return code, err

    assert add("first-officer", "security_officer")[0] == 0
    assert add("first-cards", "card_services")[0] == 0
    for role in ("security_officer", "admin", "card_services"):
        code, err = add(f"third-{role.replace('_', '-')}", role)
        assert code != 0 and "second person" in err and "Traceback" not in err, role
    assert add("an-operator", "operator")[0] == 0  # approves nothing: no second person
    code, out, _ = run(capsys, "users", "list", "--json", *env)
    assert {u["username"] for u in json.loads(out)} == {"first-officer", "first-cards",
                                                        "an-operator"}


def test_a_cli_change_whose_audit_row_fails_does_not_happen(
    env: list[str], tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str],
) -> None:
    async def refuse_audit() -> None:
        connection = await asyncpg.connect(pg_dsn)
        try:
            await connection.execute(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.action LIKE 'card.status.%' OR NEW.action LIKE 'terminal.%' THEN"
                " RAISE EXCEPTION 'audit disk full'; END IF; RETURN NEW; END $$")
            await connection.execute(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW"
                " EXECUTE FUNCTION refuse_audit()")
        finally:
            await connection.close()

    asyncio.run(refuse_audit())
    main_card = card(tmp_path, CARD_MAIN.pan)
    code, _, err = run(capsys, "cards", "block", *main_card, *env)
    assert code != 0 and "nothing was changed" in err and "Traceback" not in err
    assert status(capsys, env, main_card) == "active"
    code, _, err = run(capsys, "terminals", "disable", "ATM001", *env)
    assert code != 0 and "nothing was changed" in err
    code, out, _ = run(capsys, "terminals", "list", "--json", *env)
    rows = {row["terminal_id"]: row["status"] for row in json.loads(out)}
    assert rows["ATM001"] == "enabled"
