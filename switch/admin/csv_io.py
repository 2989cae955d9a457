"""Bulk import and export of accounts and cards as CSV.

Import validates the whole file first and reports every bad line (line number, field, reason)
without changing anything; only a file with no error is applied, and then in ONE database
transaction, so a failure half-way (a conflict found only by the database, an outage) leaves
nothing applied. Rows go through the owners' own entry points: the ledger's SQL function
``ledger_open_account`` (the same call ``PostgresLedger.open_account`` makes) and
:func:`switch.authorization.issuing.upsert_card` (which also writes the audit table), run on the
transaction's connection: both are plain SQL plus pure HSM computations, so they run unchanged
inside the transaction. Both are idempotent: importing the same file twice changes nothing.

PINs: a card row carries PIN verification data (IBM 3624 offset or Visa PVV computed by the
issuer under this switch's PVK), never a PIN; a clear ``pin`` column is accepted only by an HSM
in test mode (test installations). Export writes PANs masked (first 6 + last 4).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from ledger_adapter import AccountNotFound
from switch.authorization.issuing import issuer_pvk, upsert_card
from switch.authorization.wiring import open_ledger
from switch.db.runtime import Database
from switch.hsm.software import SoftwareHsm
from switch.hsm.verification_data import PinVerificationData

ROWS_MAX: Final = 100_000  # one file; bigger imports are split
FIELD_CHARS_MAX: Final = 200
ACCOUNT_COLUMNS: Final = ("account_id", "name", "currency", "balance")
CARD_COLUMNS: Final = ("pan", "expiry", "account_id")
CARD_PIN_COLUMNS: Final = ("pin_method", "pin_value", "pvki", "pin", "status")
_ACCOUNT_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PAN: Final = re.compile(r"^[0-9]{12,19}$")
_EXPIRY: Final = re.compile(r"^[0-9]{2}(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class Checked:
    rows: list[dict[str, str]]
    errors: list[LineError]


def _read(text: str, required: tuple[str, ...], optional: tuple[str, ...]) -> Checked:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    errors = [LineError(1, name, "missing column") for name in required if name not in header]
    errors += [LineError(1, name, "unknown column") for name in header
               if name not in required + optional]
    rows: list[dict[str, str]] = []
    if errors:
        return Checked(rows, errors)
    for row in reader:
        if len(rows) >= ROWS_MAX:
            errors.append(LineError(reader.line_num, "-", f"more than {ROWS_MAX} rows"))
            break
        if None in row or any(v is None for v in row.values()):
            errors.append(LineError(reader.line_num, "-", "wrong number of fields"))
            continue
        rows.append({k: v.strip() for k, v in row.items()} | {"_line": str(reader.line_num)})
    return Checked(rows, errors)


def check_accounts(text: str) -> Checked:
    checked = _read(text, ACCOUNT_COLUMNS, ())
    seen: set[str] = set()
    for row in checked.rows:
        line, errs = int(row["_line"]), checked.errors
        if not _ACCOUNT_ID.match(row["account_id"]):
            errs.append(LineError(line, "account_id", "1-64 of A-Z a-z 0-9 _ . : -"))
        elif row["account_id"] in seen:
            errs.append(LineError(line, "account_id", "appears twice in the file"))
        seen.add(row["account_id"])
        if not 1 <= len(row["name"]) <= FIELD_CHARS_MAX:
            errs.append(LineError(line, "name", f"1-{FIELD_CHARS_MAX} characters"))
        if not re.fullmatch(r"[0-9]{3}", row["currency"]):
            errs.append(LineError(line, "currency", "ISO 4217 numeric, 3 digits"))
        if not re.fullmatch(r"[0-9]{1,15}", row["balance"]):
            errs.append(LineError(line, "balance", "a non-negative integer in minor units"))
    return checked


async def check_accounts_against(db: Database, checked: Checked) -> None:
    """An account already open in another currency is an error, not a silent skip."""
    ledger = open_ledger(db)
    for row in checked.rows:
        try:
            existing = await ledger.get_account(row["account_id"])
        except AccountNotFound:
            continue
        if existing.currency != row["currency"]:
            checked.errors.append(LineError(int(row["_line"]), "currency",
                                            f"account exists in currency {existing.currency}"))


async def apply_accounts(db: Database, rows: list[dict[str, str]]) -> int:
    """Open every account in one transaction (all or nothing)."""

    async def in_transaction(connection: asyncpg.Connection) -> int:
        async with connection.transaction():
            for row in rows:
                await connection.fetchrow(
                    "SELECT * FROM ledger_open_account($1, $2, $3, $4, 'active', 'customer')",
                    row["account_id"], row["name"], row["currency"], int(row["balance"]))
        return len(rows)

    return await db.run(in_transaction)


def check_cards(text: str, *, test_mode: bool) -> Checked:
    checked = _read(text, CARD_COLUMNS, CARD_PIN_COLUMNS)
    seen: set[str] = set()
    for row in checked.rows:
        line, errs = int(row["_line"]), checked.errors
        pan = row["pan"]
        if not _PAN.match(pan):
            errs.append(LineError(line, "pan", "12-19 digits"))
        elif pan in seen:
            errs.append(LineError(line, "pan", "appears twice in the file"))
        seen.add(pan)
        if not _EXPIRY.match(row["expiry"]):
            errs.append(LineError(line, "expiry", "YYMM"))
        if not _ACCOUNT_ID.match(row["account_id"]):
            errs.append(LineError(line, "account_id", "1-64 of A-Z a-z 0-9 _ . : -"))
        if row.get("status", "active") not in ("active", "blocked", "lost", "stolen", "closed"):
            errs.append(LineError(line, "status", "active, blocked, lost, stolen or closed"))
        errs.extend(_check_pin_columns(row, line, test_mode))
    return checked


def _check_pin_columns(row: dict[str, str], line: int, test_mode: bool) -> list[LineError]:
    if row.get("pin"):
        if not test_mode:
            return [LineError(line, "pin", "clear PINs are imported only in test installations")]
        if row.get("pin_value"):
            return [LineError(line, "pin", "give pin or pin_value, not both")]
        return [] if re.fullmatch(r"[0-9]{4,12}", row["pin"]) else [
            LineError(line, "pin", "4-12 digits")]
    method = row.get("pin_method", "")
    if method not in ("ibm3624", "visa_pvv"):
        return [LineError(line, "pin_method", "ibm3624 or visa_pvv")]
    if not re.fullmatch(r"[0-9]{4,12}", row.get("pin_value", "")):
        return [LineError(line, "pin_value", "the offset or PVV digits")]
    if method == "visa_pvv" and not re.fullmatch(r"[0-9]", row.get("pvki", "")):
        return [LineError(line, "pvki", "one digit for a Visa PVV")]
    return []


async def check_cards_against(db: Database, checked: Checked) -> None:
    ledger = open_ledger(db)
    for row in checked.rows:
        try:
            await ledger.get_account(row["account_id"])
        except AccountNotFound:
            checked.errors.append(LineError(int(row["_line"]), "account_id", "no such account"))


async def apply_cards(db: Database, hsm: SoftwareHsm, rows: list[dict[str, str]]) -> int:
    """Insert or update every card in one transaction (all or nothing), audited per card."""

    async with db.transaction() as tx:
        pvk = await issuer_pvk(tx, hsm)
        for row in rows:
            await upsert_card(tx, hsm, pan=row["pan"], expiry=row["expiry"],
                              account_id=row["account_id"],
                              verification=await _verification(hsm, pvk, row),
                              status=row.get("status") or "active", action="card.import")
    return len(rows)


async def _verification(hsm: SoftwareHsm, pvk: str, row: dict[str, str]) -> PinVerificationData:
    if row.get("pin"):  # test installations only (checked before, refused by the HSM too)
        return await hsm.pin_verification_data_test_mode(pvk=pvk, pan=row["pan"],
                                                         pin=row["pin"])
    method = row["pin_method"]
    return PinVerificationData(method, pvk, row["pin_value"],
                               row.get("pvki") if method == "visa_pvv" else None)


async def export_accounts(db: Database) -> str:
    ledger = open_ledger(db)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("account_id", "name", "currency", "status", "ledger_balance",
                     "available_balance", "held"))
    for row in await db.fetch("SELECT account_id FROM ledger_accounts WHERE kind = 'customer'"
                              " ORDER BY account_id"):
        account = await ledger.get_account(row["account_id"])
        balance = await ledger.balance(row["account_id"])
        writer.writerow((account.account_id, account.name, account.currency, account.status,
                         balance.ledger, balance.available, balance.held))
    return out.getvalue()


async def export_cards(db: Database) -> str:
    """Cards with masked PANs only (the stored ``pan_masked``), never PIN data."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("card_id", "pan", "expiry", "status", "account_id", "pin_tries"))
    for row in await db.fetch("SELECT card_id, pan_masked, expiry, status, account_id, pin_tries"
                              " FROM cards ORDER BY card_id"):
        writer.writerow((row["card_id"], row["pan_masked"], row["expiry"], row["status"],
                         row["account_id"], row["pin_tries"]))
    return out.getvalue()


def summary(errors: list[LineError]) -> list[dict[str, Any]]:
    return [{"line": e.line, "field": e.field, "reason": e.reason} for e in errors]
