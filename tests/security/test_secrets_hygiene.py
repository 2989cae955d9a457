"""Issue 11 item 5: secrets never leak by accident: object reprs, log lines, database
errors in logs, and the command line (PANs and DSN passwords)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import asyncpg
import pytest

from ops.logs import JsonFormatter
from ops.masking import masked_repr
from switch.cli import main
from switch.protocol.masking import scrub_text
from terminals.atm.session import CustomerSession
from terminals.devices.pinpad import PinEntryRequest, PinPadStatus, PinResult
from terminals.hostlink.financial import CardData
from terminals.hostlink.keys import TerminalKeySet
from tests.conftest import find_leaks

PAN = "6228480000000000017"
TRACK2 = f"{PAN}=30121010000000"
PIN_BLOCK = "0123456789ABCDEF"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.mark.parametrize(
    "value",
    [
        CustomerSession(track2=TRACK2, pan=PAN, expiry="3012", pin_block=PIN_BLOCK),
        CardData(pan=PAN, expiry="3012"),
        TerminalKeySet(tmk=TMK, tpk=TMK, tak=TMK),
        PinResult(PinPadStatus.OK, PIN_BLOCK),
        PinEntryRequest(pan=PAN),
    ],
    ids=lambda v: type(v).__name__,
)
def test_reprs_mask_card_data_and_keys(value: object) -> None:
    # Goal: repr (what a traceback, a debugger or an f-string shows) has no secret.
    shown = repr(value)
    assert PAN not in shown and PIN_BLOCK not in shown and TMK.hex() not in shown.lower()
    assert find_leaks(shown) == [], shown
    if hasattr(value, "pan"):
        assert "622848*********0017" in shown  # still useful: 6 + 4


def test_masked_repr_fails_closed_on_unknown_secret_names() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Anything:
        __repr__ = masked_repr
        zpk_under_lmk: str
        card_pan: str
        amount: int
        note: str

    shown = repr(Anything("ABCDEF0123456789", PAN, 100, f"pan {PAN}"))
    assert "ABCDEF0123456789" not in shown and PAN not in shown and "amount=100" in shown


def test_scrub_text_masks_free_text() -> None:
    text = scrub_text(f"card {PAN} track {TRACK2} fields {{'52': '{PIN_BLOCK}'}} amount "
                      "000000010000 stan 000001")
    assert find_leaks(text) == [] and "000000010000" in text and "000001" in text


async def _unique_violation_with_a_pan(dsn: str) -> BaseException:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE t (pan text PRIMARY KEY)")
        await conn.execute("INSERT INTO t VALUES ($1)", PAN)
        try:
            await conn.execute("INSERT INTO t VALUES ($1)", PAN)
        except asyncpg.UniqueViolationError as exc:
            return exc
    finally:
        await conn.close()
    raise AssertionError("no error")


def test_database_errors_are_logged_without_their_row_values(pg_dsn: str) -> None:
    # Goal: asyncpg's DETAIL quotes the duplicate key (a PAN here); the log line must not.
    error = asyncio.run(_unique_violation_with_a_pan(pg_dsn))
    assert PAN in str(getattr(error, "detail", ""))  # the driver really carries it
    try:
        raise RuntimeError("ledger call failed") from error
    except RuntimeError as wrapped:
        record = logging.LogRecord("atm.test", logging.ERROR, __file__, 1, "failed: %s",
                                   (f"{error}; {error.detail}",),  # type: ignore[attr-defined]
                                   (RuntimeError, wrapped, wrapped.__traceback__))
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert PAN not in line and find_leaks(line) == []
    assert entry["exception"] == "RuntimeError" and "UniqueViolationError" in entry["traceback"]
    assert record.exc_info is not None and record.exc_info[1] is not None


def test_leak_scanner_catches_a_pan_in_a_log_line() -> None:
    # Goal: the suite-wide scanner (tests/conftest.py) is able to fail: feed it a record.
    from tests.conftest import LeakScanner

    scanner = LeakScanner()
    scanner.emit(logging.makeLogRecord({"msg": "card %s", "args": (PAN,), "levelno": 20}))
    scanner.emit(logging.makeLogRecord({"msg": "x", "reason": TRACK2, "levelno": 20}))
    scanner.emit(logging.makeLogRecord({"msg": f"fields {{'52': '{PIN_BLOCK}'}}"}))
    scanner.emit(logging.makeLogRecord({"msg": "stan 000001 amount 000000010000"}))
    assert len(scanner.hits) == 3
    assert ["PAN"] == find_leaks(scanner.hits[0].split(" in ", 1)[1])


def test_no_pan_and_no_dsn_password_on_the_command_line(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Goal: cards commands read the PAN from stdin or a file (no PAN argument exists), and a
    # DSN carrying a password is refused on the command line but accepted from a file.
    data = ["--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit):
        main(["cards", "show", PAN, *data, "--dsn", pg_dsn])
    capsys.readouterr()
    with_password = pg_dsn.replace("postgres:@", "postgres:hunter2@")
    assert main(["terminals", "list", *data, "--dsn", with_password]) != 0
    err = capsys.readouterr().err
    assert "password" in err and "hunter2" not in err
    (tmp_path / "dsn").write_text(pg_dsn + "\n")
    assert main(["terminals", "list", *data, "--dsn-file", str(tmp_path / "dsn")]) == 0
    assert main(["db", "init", *data, "--dsn", pg_dsn]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(PAN + "\n"))
    assert main(["cards", "show", *data, "--dsn", pg_dsn]) != 0
    err = capsys.readouterr().err
    assert "no card" in err.lower() or "not found" in err.lower() or "no such" in err.lower(), err
