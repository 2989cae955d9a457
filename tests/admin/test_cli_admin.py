"""The back-office CLI in-process against the per-test PostgreSQL: ``users add`` (password on
stdin, argon2id stored), CSV import validated line by line and applied all-or-nothing, export
with masked PANs, ``backup create``/``verify`` and ``lmk-export`` on a data directory."""

from __future__ import annotations

import io
import json
from pathlib import Path

import asyncpg
import pytest

from switch.cli import main
from switch.db.runtime import Database


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "",
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def env(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("ATM_SWITCH_HSM_TEST_MODE", "1")
    return ["--data-dir", str(tmp_path / "data"), "--dsn", pg_dsn]


def fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    import asyncio

    async def go() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(dsn)
        try:
            return list(await connection.fetch(query))
        finally:
            await connection.close()

    return asyncio.run(go())


def test_users_add_stores_an_argon2id_hash(env: list[str], pg_dsn: str,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "users", "add", "alice", "--role", "card_services", *env,
                       stdin="a long enough password\n", monkeypatch=monkeypatch)
    assert code == 0 and "alice" in out
    [row] = fetch(pg_dsn, "SELECT role, password_hash FROM admin_users")
    assert row["role"] == "card_services"
    assert row["password_hash"].startswith("$argon2id$")
    assert "a long enough password" not in row["password_hash"]
    code, _, err = run(capsys, "users", "add", "bob", "--role", "auditor", *env,
                       stdin="short\n", monkeypatch=monkeypatch)
    assert code != 0 and "12" in err


def test_csv_import_reports_every_bad_line_and_applies_all_or_nothing(
        env: list[str], pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "init", *env)[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,name,currency,balance\n"
                   "A1,Alice,156,1000\n"
                   "A 2,Bob,156,5\n"
                   "A3,Carol,15,-4\n"
                   "A1,Again,156,1\n")
    code, out, _ = run(capsys, "import", "accounts", str(bad), "--json", *env)
    assert code == 1
    errors = json.loads(out)["errors"]
    assert {(e["line"], e["field"]) for e in errors} == {
        (3, "account_id"), (4, "currency"), (4, "balance"), (5, "account_id")}
    assert fetch(pg_dsn, "SELECT 1 FROM ledger_accounts WHERE account_id = 'A1'") == []

    good = tmp_path / "good.csv"
    good.write_text("account_id,name,currency,balance\nA1,Alice,156,1000\nA2,鲍勃,156,5\n")
    assert run(capsys, "import", "accounts", str(good), "--dry-run", *env)[0] == 0
    assert fetch(pg_dsn, "SELECT 1 FROM ledger_accounts WHERE account_id = 'A1'") == []
    assert run(capsys, "import", "accounts", str(good), *env)[0] == 0
    code, out, _ = run(capsys, "accounts", "show", "A1", "--json", *env)
    assert json.loads(out)["ledger_balance"] == 1000

    cards = tmp_path / "cards.csv"
    cards.write_text("pan,expiry,account_id,pin_method,pin_value\n"
                     "6225880123456789,3012,A1,ibm3624,1234\n"
                     "6225880123450000,3013,NOPE,ibm3624,1234\n")
    code, out, _ = run(capsys, "import", "cards", str(cards), "--json", *env)
    assert code == 1
    assert {(e["line"], e["field"]) for e in json.loads(out)["errors"]} == {(3, "expiry")}
    cards.write_text("pan,expiry,account_id,pin_method,pin_value\n"
                     "6225880123456789,3012,A1,ibm3624,1234\n")
    assert run(capsys, "import", "cards", str(cards), *env)[0] == 0
    exported = tmp_path / "cards-out.csv"
    assert run(capsys, "export", "cards", str(exported), *env)[0] == 0
    text = exported.read_text()
    assert "6225880123456789" not in text and "622588******6789" in text
    code, out, _ = run(capsys, "export", "accounts", "-", *env)
    assert code == 0 and "A2,鲍勃,156,active,5,5,0" in out


def test_a_clear_pin_column_is_refused_outside_test_mode(
        env: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATM_SWITCH_HSM_TEST_MODE")
    assert run(capsys, "db", "init", *env)[0] == 0
    cards = tmp_path / "cards.csv"
    cards.write_text("pan,expiry,account_id,pin\n6225880123456789,3012,A1,1234\n")
    code, out, _ = run(capsys, "import", "cards", str(cards), "--json", *env)
    assert code == 1
    assert json.loads(out)["errors"][0]["field"] == "pin"


def test_backup_create_verify_and_lmk_export(env: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "db", "init", *env)[0] == 0
    archive = tmp_path / "b.tar"
    code, out, _ = run(capsys, "backup", "create", str(archive), "--json", *env)
    assert code == 0 and json.loads(out)["lmk_kcv"]
    assert run(capsys, "backup", "verify", str(archive), *env)[0] == 0
    lmk = (tmp_path / "data" / "lmk.key").read_text().strip()
    assert lmk.encode() not in archive.read_bytes()
    files = [tmp_path / f"custodian-{n}.txt" for n in (1, 2, 3)]
    code, out, _ = run(capsys, "backup", "lmk-export", "--component-files",
                       *map(str, files), *env[:2])
    assert code == 0 and out.count("written to") == 3 and lmk not in out
    values = [line.split(": ", 1)[1] for f in files for line in f.read_text().splitlines()
              if line.startswith("component: ")]
    assert len(values) == 3 and not any(value in out for value in values)  # issue 18
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)


def test_admin_process_serves_the_api_and_console(env: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``atm-switch admin`` as a real process: it migrates, listens, answers, and stops."""
    import subprocess
    import sys
    import time
    import urllib.request

    assert run(capsys, "db", "init", *env)[0] == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "switch.cli", "admin", "--port", "0", *env],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://" in line, process.stderr.read() if process.stderr else ""
        base = line.split("listening on ", 1)[1].strip().rstrip("/")
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            assert json.loads(answer.read()) == {"status": "ok"}
        with urllib.request.urlopen(f"{base}/login", timeout=10) as answer:
            assert "ATM" in answer.read().decode()
        try:
            urllib.request.urlopen(f"{base}/api/terminals", timeout=10)
            raise AssertionError("anonymous request allowed")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        process.terminate()
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()


async def test_apply_is_one_transaction(db: Database) -> None:
    """A conflict only the database sees (an account opened meanwhile in another currency)
    undoes the whole apply: the first, valid row is not left behind."""
    from ledger_adapter.postgres import PostgresLedger
    from switch.admin import csv_io

    await PostgresLedger(db).open_account("B2", name="Bob", currency="840", balance=0)
    rows = [{"account_id": "B1", "name": "Ann", "currency": "156", "balance": "10"},
            {"account_id": "B2", "name": "Bob", "currency": "156", "balance": "5"}]
    with pytest.raises(asyncpg.PostgresError):
        await csv_io.apply_accounts(db, rows)
    assert await db.fetchval("SELECT count(*) FROM ledger_accounts WHERE account_id = 'B1'") == 0
    assert await csv_io.apply_accounts(db, rows[:1]) == 1
    assert await csv_io.apply_accounts(db, rows[:1]) == 1  # idempotent: nothing new
    assert (await PostgresLedger(db).balance("B1")).ledger == 10  # opened once, not twice


def test_restore_with_lmk_components_into_a_new_data_directory(
        env: list[str], pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore on a new machine: the custodians key in their LMK components; the LMK is
    installed (0600) and the restored database is usable there."""
    import asyncio

    from tests.conftest import dsn_for_database

    assert run(capsys, "db", "init", *env)[0] == 0
    assert run(capsys, "accounts", "open", "R1", "--name", "r", "--balance", "70", *env)[0] == 0
    archive = tmp_path / "b.tar"
    assert run(capsys, "backup", "create", str(archive), *env)[0] == 0
    files = [tmp_path / "custodian-a.txt", tmp_path / "custodian-b.txt"]
    code, out, _ = run(capsys, "backup", "lmk-export", "--component-files",
                       *map(str, files), *env[:2])
    components = "\n".join(
        " ".join(line.split(": ", 1)[1] for line in f.read_text().splitlines()
                 if line.startswith(("component: ", "kcv: "))) for f in files)

    async def create_empty() -> None:
        connection = await asyncpg.connect(pg_dsn)
        try:
            await connection.execute('CREATE DATABASE "restored_cli"')
        finally:
            await connection.close()

    asyncio.run(create_empty())
    mistyped = ("1" if components[0] != "1" else "2") + components[1:]
    target = dsn_for_database(pg_dsn, "restored_cli")
    new_dir = tmp_path / "new-machine"
    new_env = ["--data-dir", str(new_dir), "--dsn", target]
    code, _, err = run(capsys, "backup", "restore", str(archive), "--lmk-components",
                       *new_env, stdin=mistyped + "\n",
                       monkeypatch=monkeypatch)
    assert code != 0 and "check value" in err  # a mistyped component is caught by its KCV
    assert not (new_dir / "lmk.key").exists()
    code, out, err = run(capsys, "backup", "restore", str(archive), "--lmk-components",
                         *new_env, stdin=components + "\n", monkeypatch=monkeypatch)
    assert code == 0, err
    assert (new_dir / "lmk.key").stat().st_mode & 0o777 == 0o600
    assert (new_dir / "lmk.key").read_text() == (tmp_path / "data" / "lmk.key").read_text()
    code, out, _ = run(capsys, "accounts", "show", "R1", "--json", *new_env)
    assert code == 0 and json.loads(out)["ledger_balance"] == 70
    code, _, err = run(capsys, "backup", "restore", str(archive), *new_env)
    assert code != 0 and "not empty" in err
