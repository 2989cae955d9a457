"""Issue 11 item 4: the owner migrates, ``serve`` runs as a role that can only use what it
needs (real PostgreSQL roles), and the LMK is guarded on disk and kept from children."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from switch.cli import main
from switch.config import Config
from switch.db.roles import APP_ROLE_DEFAULT, app_dsn
from switch.hsm import lmk as lmk_module
from switch.hsm.errors import LmkError
from switch.hsm.lmk import create_lmk, load_lmk


async def denied(dsn: str, statement: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        return True
    finally:
        await conn.close()
    return False


async def role_flags(dsn: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb,"
            " pg_has_role(current_user, 'pg_read_server_files', 'USAGE') AS files"
            " FROM pg_roles WHERE rolname = current_user")
    finally:
        await conn.close()


def test_db_init_creates_a_restricted_application_role(empty_dsn: str, tmp_path: Path) -> None:
    # Goal: after db init the application role can read and write ledger rows but cannot
    # read server files, create objects, change the schema's bookkeeping or be a superuser.
    assert main(["db", "init", "--data-dir", str(tmp_path), "--dsn", empty_dsn]) == 0
    app = app_dsn(empty_dsn, APP_ROLE_DEFAULT)
    flags = asyncio.run(role_flags(app))
    assert flags["current_user"] == APP_ROLE_DEFAULT
    assert not (flags["rolsuper"] or flags["rolcreaterole"] or flags["rolcreatedb"])
    assert not flags["files"]
    for statement in (
        "SELECT pg_read_file('PG_VERSION')",
        "SELECT pg_ls_dir('.')",
        "CREATE TABLE intruder (x int)",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')",
        "UPDATE installation SET mode = 'test'",
        "DROP TABLE terminals",
        "CREATE ROLE sidekick",
    ):
        assert asyncio.run(denied(app, statement)), statement
    assert not asyncio.run(denied(app, "INSERT INTO terminals (terminal_id) VALUES ('T1')"))
    assert not asyncio.run(denied(app, "SELECT count(*) FROM terminals"))
    # The owner's DSN itself stays a superuser here (it is the one that migrates).
    assert asyncio.run(role_flags(empty_dsn))["rolsuper"]


def test_serve_refuses_a_privileged_role(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Goal: pointed at a superuser DSN for the application, serve stops with a clear error.
    assert main(["db", "init", "--data-dir", str(tmp_path), "--dsn", pg_dsn]) == 0
    monkeypatch.setenv("ATM_SWITCH_DATABASE_APP_DSN", pg_dsn)
    code = main(["serve", "--data-dir", str(tmp_path), "--dsn", pg_dsn, "--port", "0",
                 "--metrics-port", "0"])
    err = capsys.readouterr().err
    assert code != 0 and "refusing to serve as database role" in err and "rolsuper" in err


def test_app_dsn_drops_the_owner_password() -> None:
    derived = app_dsn("postgresql://owner:s3cret@db.example:5432/atm?sslmode=require", "atm_app")
    assert derived == "postgresql://atm_app@db.example:5432/atm?sslmode=require"
    with pytest.raises(ValueError):
        app_dsn("postgresql://o@h/d", "x; DROP ROLE postgres")


def test_lmk_file_must_be_private_and_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATM_SWITCH_LMK", raising=False)
    config = Config(data_dir=tmp_path)
    path = create_lmk(config)
    assert load_lmk(config)
    path.chmod(0o640)
    with pytest.raises(LmkError, match="group or others"):
        load_lmk(config)
    path.chmod(0o604)
    with pytest.raises(LmkError, match="group or others"):
        load_lmk(config)
    path.chmod(0o600)
    if os.geteuid() == 0:  # as root the test can hand the file to another user
        os.chown(path, 65534, -1)
        with pytest.raises(LmkError, match="owned by uid 65534"):
            load_lmk(config)


def test_lmk_creation_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    create_lmk(Config(data_dir=tmp_path))
    assert len(synced) >= 2  # the file and its directory


def test_lmk_from_the_environment_never_reaches_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Goal: once read, the LMK is gone from os.environ, so a child process cannot see it,
    # while this process keeps using it.
    value = secrets.token_hex(32).upper()
    monkeypatch.setattr(lmk_module, "_taken_from_environment", {})
    monkeypatch.setenv("ATM_SWITCH_LMK", value)
    config = Config(data_dir=tmp_path)
    assert load_lmk(config).hex().upper() == value
    assert "ATM_SWITCH_LMK" not in os.environ
    child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.environ))"],
                           capture_output=True, text=True, check=True)
    assert "ATM_SWITCH_LMK" not in child.stdout and value not in child.stdout
    assert load_lmk(config).hex().upper() == value  # still usable here


def test_the_cli_takes_the_lmk_out_of_the_environment_before_any_child_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Goal: building the configuration (the first thing every command does, before it starts
    # the embedded PostgreSQL) already removes the LMK from os.environ.
    import argparse

    from switch.commands.common import build_config

    value = secrets.token_hex(32).upper()
    monkeypatch.setattr(lmk_module, "_taken_from_environment", {})
    monkeypatch.setenv("ATM_SWITCH_LMK", value)
    config = build_config(argparse.Namespace(data_dir=str(tmp_path)))
    assert "ATM_SWITCH_LMK" not in os.environ
    assert load_lmk(config).hex().upper() == value
