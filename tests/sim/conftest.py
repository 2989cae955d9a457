"""A real switch (SwitchApp with authorization, the software HSM and the PostgreSQL ledger) on a
free TCP port over the per-test database, loaded with the simulator's test cards."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switch.commands.demo import demo_config, in_process_switch
from switch.config import Config
from switch.db.runtime import Database

TMK = "0123456789ABCDEFFEDCBA9876543210"
MAIN_PAN, WRONG_PIN_PAN, LOST_PAN = "6228480000000000017", "6228480000000000025", \
    "6228480000000000033"
ACCOUNT, PAYEE, OTHER = "SIM-A", "SIM-B", "SIM-C"
FIXTURE: dict[str, Any] = {
    "accounts": [
        {"id": ACCOUNT, "name": "王小明", "currency": "156", "balance": 1_000_000},
        {"id": PAYEE, "name": "Smith Jones", "currency": "156", "balance": 100_000},
        {"id": OTHER, "name": "Other", "currency": "156", "balance": 100_000},
    ],
    "cards": [
        {"pan": MAIN_PAN, "expiry": "3012", "account": ACCOUNT, "pin": "1234"},
        {"pan": WRONG_PIN_PAN, "expiry": "3012", "account": OTHER, "pin": "1234"},
        {"pan": LOST_PAN, "expiry": "3012", "account": OTHER, "pin": "1234", "status": "lost"},
    ],
    "terminals": [{"id": "ATM00001", "tmk": TMK}],
}


def track2(pan: str) -> str:
    return f"{pan}=30121010000000"


@dataclasses.dataclass
class SimSwitch:
    host: str
    port: int
    app: Any

    async def balance(self, account: str = ACCOUNT) -> tuple[int, int, int]:
        value = await self.app.ledger.balance(account)
        return value.ledger, value.available, value.held


@pytest.fixture
async def switch(db: Database, tmp_path: Path) -> AsyncIterator[SimSwitch]:
    config = demo_config(Config(), tmp_path / "switch")
    async with in_process_switch(config, db, FIXTURE) as (app, address):
        yield SimSwitch(address[0], address[1], app)


def scenario_document(*sessions: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A scenario as the TOML file would hold it, with fast timeouts for tests."""
    terminal = {"id": "ATM00001", "tmk": TMK, "customer_timeout_s": 5.0,
                "card_take_timeout_s": 2.0, "cash_take_timeout_s": 2.0,
                **top.pop("terminal", {})}
    return {"name": "test", "terminal": terminal, "sessions": list(sessions), **top}
