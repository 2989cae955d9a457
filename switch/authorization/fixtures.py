"""``fixtures load``: test data (spec 9) turned into ledger accounts, cards and terminal keys.

Fixture files hold clear PINs and TMKs by definition, so loading them always uses the HSM in
test mode for the duration of the load, whatever ``hsm.test_mode`` says (the switch that then
serves keeps its configured mode). Nothing clear is stored: PINs become IBM 3624 offsets under
the issuer PVK, TMKs become LMK handles.

Loading is idempotent and brings the database to the file's state: an existing account keeps
its balance (re-loading never moves money) but takes the file's status; an existing card takes
the file's expiry, status, account, limits and PIN, and its PIN try counter is reset; a terminal
is (re-)enabled, and its working keys are kept when its TMK is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger_adapter import AccountNotFound, Ledger
from switch.authorization import audit
from switch.authorization.issuing import CardAdminError, issuer_pvk, upsert_card
from switch.authorization.limits import LimitsError
from switch.db.runtime import Database
from switch.emv.store import ChipDataError, load_card_chip, parse_emv_fixture
from switch.hsm.errors import HsmError
from switch.hsm.software import SoftwareHsm

ACCOUNT_STATUSES = ("active", "frozen", "closed")
KEY_TYPES = {"tdes": "T", "aes": "A"}
# Values spec 9 shows as strings that a hand-written file may give as JSON numbers.
NUMERIC_TEXT_KEYS = frozenset({"currency", "pan", "expiry"})


class FixtureError(ValueError):
    """The fixture file is not what spec 9 describes; the message names the entry."""


@dataclass(frozen=True, slots=True)
class FixtureSummary:
    accounts: int
    cards: int
    terminals: int

    def as_dict(self) -> dict[str, int]:
        return {"accounts": self.accounts, "cards": self.cards, "terminals": self.terminals}


def _entries(document: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    entries = document.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FixtureError(f"{name} must be a list of objects")
    return entries


def _text(entry: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if key in NUMERIC_TEXT_KEYS and isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(3 if key == "currency" else 0)
    if not isinstance(value, str) or not value:
        raise FixtureError(f"{where}.{key} must be a non-empty string")
    return value


def _int(entry: Mapping[str, Any], key: str, where: str) -> int:
    value = entry.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FixtureError(f"{where}.{key} must be an integer (minor units)")
    return value


async def load_fixtures(
    db: Database, hsm: SoftwareHsm, ledger: Ledger, document: Any
) -> FixtureSummary:
    if not isinstance(document, dict):
        raise FixtureError("the fixture file must hold a JSON object")
    accounts = _entries(document, "accounts")
    cards = _entries(document, "cards")
    terminals = _entries(document, "terminals")
    for index, entry in enumerate(accounts):
        await _load_account(ledger, entry, f"accounts[{index}]")
    for index, entry in enumerate(terminals):
        await _load_terminal(db, hsm, entry, f"terminals[{index}]")
    for index, entry in enumerate(cards):
        await _load_card(db, hsm, ledger, entry, f"cards[{index}]")
    return FixtureSummary(len(accounts), len(cards), len(terminals))


async def _load_account(ledger: Ledger, entry: Mapping[str, Any], where: str) -> None:
    account_id = _text(entry, "id", where)
    status = _text(entry, "status", where, "active")
    if status not in ACCOUNT_STATUSES:
        raise FixtureError(f"{where}.status must be one of {', '.join(ACCOUNT_STATUSES)}")
    currency = _text(entry, "currency", where)
    if not (currency.isdigit() and len(currency) == 3):
        raise FixtureError(f'{where}.currency must be an ISO 4217 numeric code like "156"')
    balance = _int(entry, "balance", where)
    if balance < 0:
        raise FixtureError(f"{where}.balance must not be negative")
    account = await ledger.open_account(
        account_id,
        name=_text(entry, "name", where),
        currency=currency,
        balance=balance,
        status="active",
    )
    if account.status != status:
        await ledger.set_account_status(account_id, status)


async def _load_terminal(
    db: Database, hsm: SoftwareHsm, entry: Mapping[str, Any], where: str
) -> None:
    terminal_id = _text(entry, "id", where)
    if len(terminal_id) > 8:
        raise FixtureError(f"{where}.id must be at most 8 characters (field 41)")
    key_type = _text(entry, "key_type", where, "tdes")
    if key_type not in KEY_TYPES:
        raise FixtureError(f"{where}.key_type must be tdes or aes")
    try:
        tmk = await hsm.import_clear_key_test_mode(
            _text(entry, "tmk", where), usage="K0", algorithm=KEY_TYPES[key_type]
        )
        kcv = await hsm.key_check_value(tmk)
    except (HsmError, ValueError) as exc:
        raise FixtureError(f"{where}.tmk: {exc}") from exc
    before = await db.fetchrow(
        "SELECT t.status, t.key_type, k.tmk_kcv FROM terminals t"
        " LEFT JOIN terminal_keys k USING (terminal_id) WHERE t.terminal_id = $1",
        terminal_id,
    )
    async with db.transaction() as tx:  # the terminal, its keys and the audit row together
        await tx.execute(
            "INSERT INTO terminals (terminal_id, key_type, status) VALUES ($1, $2, 'enabled')"
            " ON CONFLICT (terminal_id) DO UPDATE SET key_type = excluded.key_type,"
            " status = 'enabled', updated_at = now()",
            terminal_id,
            key_type,
        )
        await tx.execute(
            "INSERT INTO terminal_keys (terminal_id, tmk, key_type, tmk_kcv, updated_at)"
            " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (terminal_id) DO UPDATE SET"
            " tmk = excluded.tmk, key_type = excluded.key_type, tmk_kcv = excluded.tmk_kcv,"
            " tpk = CASE WHEN terminal_keys.tmk_kcv = excluded.tmk_kcv"
            " AND terminal_keys.key_type = excluded.key_type THEN terminal_keys.tpk END,"
            " tak = CASE WHEN terminal_keys.tmk_kcv = excluded.tmk_kcv"
            " AND terminal_keys.key_type = excluded.key_type THEN terminal_keys.tak END,"
            " updated_at = now()",
            terminal_id,
            tmk,
            key_type,
            kcv,
        )
        after = {"status": "enabled", "key_type": key_type, "tmk_kcv": kcv}
        await audit.record(
            tx,
            action="fixtures.terminal",
            subject=f"terminal:{terminal_id}",
            before=dict(before) if before else None,
            after=after,
        )


async def _load_card(
    db: Database, hsm: SoftwareHsm, ledger: Ledger, entry: Mapping[str, Any], where: str
) -> None:
    pan = _text(entry, "pan", where)
    account_id = _text(entry, "account", where)
    try:
        await ledger.get_account(account_id)
    except AccountNotFound as exc:
        raise FixtureError(f"{where}.account {account_id!r} is not an account") from exc
    limits = entry.get("limits") or {}
    if not isinstance(limits, dict):
        raise FixtureError(f"{where}.limits must be an object")
    try:  # Section 11: optional chip data, checked before anything is written.
        emv = None if entry.get("emv") is None else parse_emv_fixture(entry["emv"])
    except ChipDataError as exc:
        raise FixtureError(f"{where}.{exc}") from exc
    try:
        verification = await hsm.pin_verification_data_test_mode(
            pvk=await issuer_pvk(db, hsm), pan=pan, pin=_text(entry, "pin", where)
        )
        card, _ = await upsert_card(
            db,
            hsm,
            pan=pan,
            expiry=_text(entry, "expiry", where),
            account_id=account_id,
            verification=verification,
            status=_text(entry, "status", where, "active"),
            limits=limits,
            action="fixtures.card",
        )
        await load_card_chip(db, hsm, card.card_id, emv)
    except (CardAdminError, LimitsError, HsmError) as exc:
        raise FixtureError(f"{where}: {exc}") from exc
