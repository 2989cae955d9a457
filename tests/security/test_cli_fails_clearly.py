"""Issue 11 item 6 and spec 9: every command on an uninitialised data directory or database
says so and how to fix it, exits non-zero and prints no traceback; every configured number
has a range; ``fixtures load`` only on a ``db init --mode test`` installation.

The list of commands is read from the real argument parser, so a command added later is
covered without editing this test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from switch.cli import build_parser, main
from switch.config import NUMBER_RANGES, ConfigError, load_config

# Commands that make an installation (or are self-contained) and so succeed on an empty one.
# `db standby` works on PostgreSQL cluster directories of its own (``--primary-pgdata``), not
# on an installation's data directory or DSN (docs/deployment.md).
INITIALISERS = {("db", "init"), ("keys", "init"), ("demo",), ("db", "standby", "create"),
                ("db", "standby", "promote"), ("db", "standby", "status"),
                # a backup file is checked or restored on its own (docs/admin.md)
                ("backup", "verify"), ("backup", "restore")}
PAN = "6228480000000000017"
# A value for each positional or required option, by its destination name.
SAMPLE_VALUES = {
    "pan": "6228480000000000017",
    "expiry": "3012",
    "account": "ACC1",
    "account_id": "ACC1",
    "terminal_id": "ATM00001",
    "name": "n",
    "usage": "K0",
    "date": "2026-11-22",
    "username": "alice",
    "user": "alice",
}


def leaf_commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable sub-command path of ``parser`` with its parser."""
    children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not children:
        yield prefix, parser
        return
    for action in children:
        for name, child in action.choices.items():
            yield from leaf_commands(child, (*prefix, name))


def argv_for(path: tuple[str, ...], parser: argparse.ArgumentParser, fixture: Path) -> list[str]:
    argv = list(path)
    for action in parser._actions:
        value = SAMPLE_VALUES.get(action.dest, str(fixture) if action.dest == "file" else "X")
        if action.choices:
            value = str(next(iter(action.choices)))
        if not action.option_strings and action.nargs != 0:
            argv.append(value)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


def all_commands(fixture: Path) -> list[list[str]]:
    commands = [
        argv_for(path, parser, fixture)
        for path, parser in leaf_commands(build_parser())
        if path not in INITIALISERS
    ]
    assert len(commands) >= 20  # accounts, cards, keys, reports, terminals, fixtures, serve...
    return commands


@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps({"accounts": [{"id": "A1", "name": "a", "currency": "156",
                                              "balance": 1}]}))
    return path


def test_every_command_on_an_empty_data_directory(tmp_path: Path, fixture_file: Path) -> None:
    # Goal: one clear line naming the fix, non-zero, no traceback, nothing created. Method:
    # each command as a child process with no DSN and an empty --data-dir (serve included:
    # it must not start an embedded PostgreSQL there).
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for argv in all_commands(fixture_file):
        result = subprocess.run(
            [sys.executable, "-m", "switch.cli", *argv, "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=120, input=PAN + "\n", cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "ATM_SWITCH_OPS_METRICS_PORT": "0",
                 "ATM_SWITCH_HSM_TEST_MODE": "1"},  # so that cards issue gets that far
        )
        assert result.returncode != 0, argv
        assert "Traceback" not in result.stderr, (argv, result.stderr)
        assert "db init" in result.stderr, (argv, result.stderr)
        assert list(data_dir.iterdir()) == [], (argv, list(data_dir.iterdir()))


def test_every_command_on_an_empty_database(
    empty_dsn: str, tmp_path: Path, fixture_file: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Goal: the same with --dsn to a database that exists but was never initialised
    # (today `accounts show X --json` printed asyncpg's UndefinedTableError there).
    monkeypatch.setenv("ATM_SWITCH_HSM_TEST_MODE", "1")
    data_dir = tmp_path / "data"
    takes_dsn = {path for path, parser in leaf_commands(build_parser())
                 if any("--dsn" in a.option_strings for a in parser._actions)}
    for argv in all_commands(fixture_file):
        if argv[0] == "keys" or not any(tuple(argv[:n]) in takes_dsn for n in (1, 2, 3)):
            continue  # the LMK commands and other commands without a database (covered above)
        monkeypatch.setattr("sys.stdin", io.StringIO(PAN + "\n"))
        print("command:", argv)  # shown with a failure
        code = main([*argv, "--data-dir", str(data_dir), "--dsn", empty_dsn])
        err = capsys.readouterr().err
        assert code != 0, argv
        assert "db init" in err and "Traceback" not in err, (argv, err)
        assert "not initialised" in err or "no LMK" in err, (argv, err)
    assert asyncio.run(table_count(empty_dsn)) == 0  # nothing was created


async def table_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        await conn.close()


@pytest.mark.parametrize("key", sorted(NUMBER_RANGES))
def test_every_number_has_a_range(key: str) -> None:
    # Goal: zero, negative, NaN and infinite values are refused with the key's name.
    section, name = key.split(".")
    env_name = f"ATM_SWITCH_{section.upper()}_{name.upper()}"
    low, high = NUMBER_RANGES[key]
    bad = ["nan", "inf", str(high * 10 + 1), "-1"]
    if low > 0:
        bad.append("0")
    for value in bad:
        try:
            load_config(environ={env_name: value})
        except ConfigError as exc:
            assert key in str(exc) or env_name.lower() in str(exc).lower() or value in str(exc)
        else:
            raise AssertionError(f"{key}={value} accepted")
    if not key.startswith("database.pool_size"):  # those two are also checked as a pair
        load_config(environ={env_name: str(int(low) if float(low).is_integer() else low)})
    assert math.isfinite(high)


def test_a_nan_deadline_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "ATM_SWITCH_SERVER_REQUEST_DEADLINE_S": "nan"},
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "server.request_deadline_s must be a finite number" in result.stderr


def test_fixtures_load_only_on_a_test_installation(
    empty_dsn: str, tmp_path: Path, fixture_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Goal (spec 9): a plain db init makes a production installation, where fixtures load
    # exits non-zero and changes nothing; the mode cannot be switched to test afterwards.
    data = ["--data-dir", str(tmp_path / "data"), "--dsn", empty_dsn]
    assert main(["db", "init", "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "production"
    before = asyncio.run(row_counts(empty_dsn))
    assert main(["fixtures", "load", str(fixture_file), *data]) != 0
    err = capsys.readouterr().err
    assert "test installation" in err and "--mode test" in err
    assert asyncio.run(row_counts(empty_dsn)) == before
    assert main(["db", "init", "--mode", "test", *data]) != 0
    assert "cannot be changed" in capsys.readouterr().err
    assert main(["db", "init", *data]) == 0  # re-running a plain init keeps production


def test_fixtures_load_on_a_test_installation(
    empty_dsn: str, tmp_path: Path, fixture_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data"), "--dsn", empty_dsn]
    assert main(["db", "init", "--mode", "test", *data]) == 0
    assert main(["db", "init", *data]) == 0  # idempotent, stays a test installation
    assert main(["fixtures", "load", str(fixture_file), *data]) == 0
    assert "1 account(s)" in capsys.readouterr().out


async def row_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = [row["tablename"] for row in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in tables}
    finally:
        await conn.close()
