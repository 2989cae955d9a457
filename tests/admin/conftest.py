"""Fixtures for the back office: a real admin server on a TCP port over a fresh database, one
user per role, and a logged-in HTTP client per role."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import trio

from ledger_adapter.postgres import PostgresLedger
from switch.admin.context import AdminContext
from switch.admin.custody import CustodyBox
from switch.admin.roles import ROLES
from switch.admin.server import serve_admin
from switch.admin.users import create_user
from switch.authorization.issuing import issuer_pvk, upsert_card
from switch.db.runtime import Database
from switch.hsm import SoftwareHsm

TEST_LMK = bytes(range(32))  # a fixed test LMK; never a production key
PASSWORD = "correct horse battery"  # >= 12 characters
PAN = "6225880123456789"
SECOND_PAN = "6225880198761234"


@dataclass
class AdminServer:
    base_url: str
    ctx: AdminContext

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)

    async def login(self, username: str, password: str = PASSWORD) -> str:
        async with self.client() as client:
            answer = await client.post("/api/session",
                                       json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token


@pytest.fixture
def hsm() -> SoftwareHsm:
    return SoftwareHsm(TEST_LMK, test_mode=True)


async def seed(db: Database, hsm: SoftwareHsm) -> None:
    """One user per role (named after it, plus a second card_services and security officer),
    two accounts, two cards."""
    for role in ROLES:
        await create_user(db, role.replace("_", "-"), role, PASSWORD)
    await create_user(db, "card-services-2", "card_services", PASSWORD)
    await create_user(db, "security-officer-2", "security_officer", PASSWORD)
    ledger = PostgresLedger(db)
    await ledger.open_account("ACC1", name="Alice", currency="156", balance=100_000)
    await ledger.open_account("ACC2", name="Bob", currency="156", balance=5_000)
    pvk = await issuer_pvk(db, hsm)
    for pan, account in ((PAN, "ACC1"), (SECOND_PAN, "ACC2")):
        mailer = await hsm.issue_pin_mailer_test_mode(pvk=pvk, pan=pan)
        await upsert_card(db, hsm, pan=pan, expiry="3012", account_id=account,
                          verification=mailer.verification)


async def record_transactions(db: Database, count: int) -> None:
    """Answered 0200s as the authorization pipeline stores them (auth_messages), for the
    transaction search, the daily report and the console's charts: every fifth declined 51."""
    card_id = await db.fetchval("SELECT min(card_id) FROM cards")
    for n in range(1, count + 1):
        code = "51" if n % 5 == 0 else "00"
        await db.execute(
            "INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt,"
            " acquirer_id, fingerprint, state, processing_code, amount_minor, card_id,"
            " response_code, response_fields, effect, answered_at) VALUES ('0200', 'ATM00001',"
            " $1, '1129120000', '00000001', 'f', $7, '011000', $2, $3, $4, $5, $6, now())",
            f"{n:06d}", 10_000 * n, card_id, code,
            json.dumps({"37": f"{n:012d}", "39": code}),
            json.dumps({"hold_id": n} if code == "00" else {"declined": "insufficient funds"}),
            "approved" if code == "00" else "declined",
        )


@pytest.fixture
async def admin_server(db: Database, hsm: SoftwareHsm, nursery: trio.Nursery
                       ) -> AsyncIterator[AdminServer]:
    await seed(db, hsm)
    ctx = AdminContext(db, hsm, CustodyBox())
    host, port = await nursery.start(serve_admin, ctx, "127.0.0.1", 0)
    yield AdminServer(f"http://{host}:{port}", ctx)


async def record_reversal(db: Database, stan: str, rrn: str, reason: str) -> None:
    """A recorded 0420 as engine v3 stores it: its own row in state 'recorded', field 37 and
    the reason (field 39) in their columns, the original's STAN in ``original_stan``."""
    card_id = await db.fetchval("SELECT min(card_id) FROM cards")
    await db.execute(
        "INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt,"
        " acquirer_id, fingerprint, state, processing_code, amount_minor, currency, card_id,"
        " response_code, response_fields, rrn, reason, original_stan, answered_at)"
        " VALUES ('0420', 'ATM00001', $1, '1129120500', '00000001', 'f', 'recorded', '011000',"
        " 10000, '156', $2, '00', '{}', $3, $4, '000001', now())",
        stan, card_id, rrn, reason)
