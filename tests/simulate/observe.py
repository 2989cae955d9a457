"""Read the final state from PostgreSQL (directly, not through the fault proxy).

Only what the spec makes observable or the issue names: the recorded messages with their
answer and commit order (``auth_messages``; ``commit_seq`` when the column exists, else
``id``), balances (spec 9's three figures plus the pending credit), daily counters, card
status and PIN tries, and ``ledger_check_invariants()``. Columns are looked up by name, so a
reshaped table degrades to "not compared" instead of a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import Database
from tests.simulate.model import Key
from tests.simulate.world import ACCOUNTS, card_by_masked_pan

acquirer_digits = 11


def normal_key(terminal: str, stan: str, transmission_dt: str, acquirer: str) -> Key:
    return (terminal.strip(), stan, transmission_dt, acquirer.zfill(acquirer_digits))


@dataclass(frozen=True, slots=True)
class Row:
    message_class: str
    key: Key
    code: str | None
    state: str | None
    order: tuple[int, int]  # (commit_seq or id, id)


@dataclass(slots=True)
class FinalState:
    rows: list[Row]
    ordered_by: str  # "commit_seq" or "id"
    balances: dict[str, tuple[int, int, int]]  # account -> (ledger, held, pending credit)
    counters: dict[tuple[str, str, str], tuple[int, int]] | None  # (card, kind, day) -> sums
    cards: dict[str, tuple[str, int]]  # card -> (status, PIN tries)
    invariant_rows: list[str]
    notes: list[str] = field(default_factory=list)


async def _columns(db: Database, table: str) -> set[str]:
    rows = await db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table)
    return {row["column_name"] for row in rows}


async def read_rows(db: Database) -> tuple[list[Row], str]:
    columns = await _columns(db, "auth_messages")
    ordered_by = "commit_seq" if "commit_seq" in columns else "id"
    state = "state" if "state" in columns else "NULL::text"
    records = await db.fetch(
        f"SELECT message_class, terminal_id, stan, transmission_dt, acquirer_id, response_code,"
        f" {state} AS state, id, {ordered_by} AS seq FROM auth_messages")
    rows = [Row(r["message_class"],
                normal_key(r["terminal_id"], r["stan"], r["transmission_dt"], r["acquirer_id"]),
                r["response_code"], r["state"],
                (r["seq"] if r["seq"] is not None else 2**62, r["id"]))
            for r in records]
    rows.sort(key=lambda row: row.order)
    return rows, ordered_by


async def read_final_state(db: Database) -> FinalState:
    rows, ordered_by = await read_rows(db)
    notes: list[str] = []
    ledger = PostgresLedger(db)
    balances = {}
    for account in ACCOUNTS:
        value = await ledger.balance(account)
        balances[account] = (value.ledger, value.held, value.pending_credit)
    cards: dict[str, tuple[str, int]] = {}
    card_ids: dict[str, str] = {}
    for record in await db.fetch("SELECT card_id, pan_masked, status, pin_tries FROM cards"):
        name = card_by_masked_pan(record["pan_masked"])
        if name is not None:
            cards[name] = (record["status"], record["pin_tries"])
            card_ids[str(record["card_id"])] = name
    counters = await _read_counters(db, card_ids, notes)
    invariants = [str(dict(r)) for r in await db.fetch("SELECT * FROM ledger_check_invariants()")]
    return FinalState(rows, ordered_by, balances, counters, cards, invariants, notes)


async def _read_counters(db: Database, card_ids: dict[str, str], notes: list[str]
                         ) -> dict[tuple[str, str, str], tuple[int, int]] | None:
    """Daily counters keyed ``card:<id>`` (withdrawals) and ``card:<id>:transfer``."""
    if not await _columns(db, "ledger_daily_counters"):
        notes.append("daily counters not compared: no ledger_daily_counters table")
        return None
    counters: dict[tuple[str, str, str], tuple[int, int]] = {}
    for record in await db.fetch("SELECT counter_id, day, amount, count"
                                 " FROM ledger_daily_counters"):
        parts: list[Any] = str(record["counter_id"]).split(":")
        if len(parts) < 2 or parts[0] != "card" or parts[1] not in card_ids:
            continue
        kind = "transfer" if parts[2:] == ["transfer"] else "withdrawal"
        if record["amount"] or record["count"]:
            counters[(card_ids[parts[1]], kind, record["day"].isoformat())] = (
                record["amount"], record["count"])
    return counters
