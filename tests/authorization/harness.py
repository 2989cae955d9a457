"""A real switch for end-to-end tests: the core server on a TCP port 0, the real HSM, the
PostgreSQL ledger on the per-test database, authorization installed; and an ATM client built
from the project's own terminal helpers (terminals/hostlink) speaking real TCP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import trio

from ledger_adapter import Ledger
from ops.metrics import SwitchMetrics
from switch.authorization.context import AuthContext
from switch.authorization.fixtures import load_fixtures
from switch.authorization.service import Authorization
from switch.config import AuthorizationConfig, ServerConfig
from switch.db.notifications import Notifications
from switch.db.runtime import Database, open_database
from switch.dispatch import Dispatcher
from switch.hsm import SoftwareHsm
from switch.netmgmt import NetworkManagement, TerminalDirectory
from switch.protocol.message import Message, encode_message
from switch.server import SwitchServer
from switch.session import SessionRegistry
from terminals.hostlink.connection import HostConnection
from terminals.hostlink.financial import (
    CardData,
    TerminalIdentity,
    completion_advice,
    encode_request,
    financial_request,
    reversal_advice,
)
from terminals.hostlink.keys import TerminalKeySet

TMK1 = "0123456789ABCDEFFEDCBA9876543210"
TMK2 = "89ABCDEF0123456776543210FEDCBA98"
TMK3 = "1F2E3D4C5B6A79880011223344556677"
TMK_AES = "000102030405060708090A0B0C0D0E0F"

CARD_MAIN = CardData("6228480000000000017", "3012")
CARD_SECOND = CardData("6228480000000000025", "3012")
CARD_LOST = CardData("6228480000000000033", "3012")
CARD_STOLEN = CardData("6228480000000000041", "3012")
CARD_CLOSED = CardData("6228480000000000058", "3012")
CARD_EXPIRED = CardData("6228480000000000066", "2001")
CARD_FROZEN_ACCOUNT = CardData("6228480000000000074", "3012")
CARD_LIMITED = CardData("6228480000000000082", "3012")
CARD_UNKNOWN = CardData("6228480000000000090", "3012")
PIN = "1234"

FIXTURE: dict[str, Any] = {
    "accounts": [
        {"id": "ACC1", "name": "王小明", "currency": "156", "balance": 1_370_000},
        {"id": "ACC2", "name": "Smith Jones", "currency": "156", "balance": 500_000},
        {"id": "FROZEN1", "name": "Frozen", "currency": "156", "balance": 100_000,
         "status": "frozen"},
        {"id": "CLOSED1", "name": "Closed", "currency": "156", "balance": 0, "status": "closed"},
        {"id": "LIM1", "name": "Limited", "currency": "156", "balance": 10_000_000},
    ],
    "cards": [
        {"pan": CARD_MAIN.pan, "expiry": CARD_MAIN.expiry, "account": "ACC1", "pin": PIN},
        {"pan": CARD_SECOND.pan, "expiry": "3012", "account": "ACC2", "pin": "4321"},
        {"pan": CARD_LOST.pan, "expiry": "3012", "account": "ACC1", "pin": PIN, "status": "lost"},
        {"pan": CARD_STOLEN.pan, "expiry": "3012", "account": "ACC1", "pin": PIN,
         "status": "stolen"},
        {"pan": CARD_CLOSED.pan, "expiry": "3012", "account": "ACC1", "pin": PIN,
         "status": "closed"},
        {"pan": CARD_EXPIRED.pan, "expiry": "2001", "account": "ACC1", "pin": PIN},
        {"pan": CARD_FROZEN_ACCOUNT.pan, "expiry": "3012", "account": "FROZEN1", "pin": PIN},
        {"pan": CARD_LIMITED.pan, "expiry": "3012", "account": "LIM1", "pin": PIN,
         "limits": {"withdrawal_max": 500_000, "daily_withdrawal_max": 600_000,
                    "daily_withdrawal_count": 2}},
    ],
    "terminals": [{"id": "ATM001", "tmk": TMK1}, {"id": "ATM002", "tmk": TMK2},
                  {"id": "ATM003", "tmk": TMK3},
          {"id": "ATMAES1", "tmk": TMK_AES, "key_type": "aes"}],
}
TMKS = {"ATM001": TMK1, "ATM002": TMK2, "ATM003": TMK3, "ATMAES1": TMK_AES}
KEY_TYPES = {"ATMAES1": "aes"}
# One LMK per test process: a database keeps handles (the issuer PVK) across switch restarts.
TEST_LMK = os.urandom(32)


def make_ledger(db: Database) -> Ledger:
    from ledger_adapter.postgres import PostgresLedger

    return PostgresLedger(db)


@dataclasses.dataclass
class RunningSwitch:
    address: tuple[str, int]
    db: Database
    hsm: SoftwareHsm
    ledger: Ledger
    authorization: Authorization
    server: SwitchServer
    nursery: trio.Nursery

    async def atm(self, terminal_id: str = "ATM001", *, key_exchange: bool = True,
                  first_stan: int = 1) -> Atm:
        return await connect_atm(self.nursery, self.address, terminal_id,
                                 key_exchange=key_exchange, first_stan=first_stan)

    async def balance(self, account: str) -> tuple[int, int, int]:
        value = await self.ledger.balance(account)
        return value.ledger, value.available, value.held


async def connect_atm(
    nursery: trio.Nursery, address: tuple[str, int], terminal_id: str, *,
    key_exchange: bool = True, keys: TerminalKeySet | None = None, first_stan: int = 1,
) -> Atm:
    """Connect, sign on and (by default) exchange keys; ``keys`` reuses a terminal's keys."""
    stream = await trio.open_tcp_stream(*address)
    link = HostConnection(stream, terminal_id=terminal_id, first_stan=first_stan,
                          response_timeout_s=15.0)
    nursery.start_soon(link.run_reader)
    atm = Atm(link, TerminalIdentity(terminal_id),
              keys or TerminalKeySet.from_tmk_hex(TMKS.get(terminal_id, TMK1),
                                                  KEY_TYPES.get(terminal_id, "tdes")))
    response = await atm.network("001")
    assert response.fields["39"] == "00", response.fields
    if key_exchange:
        await atm.key_exchange()
    return atm


@contextlib.asynccontextmanager
async def running_switch(
    dsn: str,
    *,
    fixture: Mapping[str, Any] = FIXTURE,
    config: AuthorizationConfig | None = None,
    deadline_s: float = 5.0,
    ledger_factory: Any = make_ledger,
    sweeper: bool = False,
    load_fixture: bool = True,
    void_journal_path: Any = None,
) -> AsyncIterator[RunningSwitch]:
    """Start the switch in this test's nursery; stop it afterwards. ``load_fixture=False``
    starts it again on a database an earlier run left (a restart)."""
    async with open_database(dsn, pool_size_min=2, pool_size_max=10) as db:
        hsm = SoftwareHsm(TEST_LMK, test_mode=True)
        ledger = ledger_factory(db)
        if load_fixture:
            await load_fixtures(db, hsm, make_ledger(db), fixture)
        ctx = AuthContext(config=config or AuthorizationConfig(), db=db, hsm=hsm, ledger=ledger,
                          request_deadline_s=deadline_s, void_journal_path=void_journal_path)
        sessions = SessionRegistry()
        directory = TerminalDirectory(db)
        network = NetworkManagement(directory, sessions)
        dispatcher = Dispatcher(network)
        service = Authorization(ctx)
        service.register(dispatcher)
        network.add_sign_on_step(service.keys.refresh)  # as install() does
        hub = Notifications(db)  # as in switch/app.py: caches dropped by NOTIFY
        service.subscribe(hub, directory)
        server_config = ServerConfig(host="127.0.0.1", port=0, request_deadline_s=deadline_s + 1)
        server = SwitchServer(server_config, dispatcher, SwitchMetrics(), sessions)
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            addresses = await nursery.start(server.run)
            if sweeper:
                await nursery.start(service.run_background)
            yield RunningSwitch(addresses[0], db, hsm, ledger, service, server, nursery)
            nursery.cancel_scope.cancel()


class Atm:
    """One terminal over the project's own host-link client (``HostConnection``): sign-on, key
    exchange, requests built and MAC'd by ``terminals.hostlink``, response MACs checked."""

    def __init__(self, link: HostConnection, identity: TerminalIdentity,
                 keys: TerminalKeySet) -> None:
        self.link = link
        self.identity = identity
        self.keys = keys
        self.last_raw: bytes | None = None
        link.check_response = self._check_mac

    async def _check_mac(self, message: Message, raw: bytes) -> None:
        self.last_raw = raw
        if self.keys.tak is not None and not message.mti.startswith("08"):
            self.keys.verify_response_mac(raw)

    def next_stan(self) -> str:
        return self.link.next_stan()

    async def exchange(self, payload: bytes, stan: str | None = None
                       ) -> tuple[Message, bytes | None]:
        """Send encoded bytes; the response and its raw bytes (when it carried a MAC)."""
        self.last_raw = None
        message = await self.link.request_encoded(payload)
        return message, self.last_raw

    async def network(self, code: str) -> Message:
        return await self.link.network_request(code)

    async def key_exchange(self) -> None:
        response = await self.network("161")
        self.keys = self.keys.after_key_exchange(response.fields)

    async def send(self, mti: str, fields: Mapping[str, str], *, mac: bool = True,
                   check_mac: bool = True) -> Message:
        payload = encode_request(mti, fields, self.keys) if mac else encode_message(mti, fields)
        message, _ = await self.exchange(payload)
        code = message.fields.get("39")
        if check_mac and self.keys.tak is not None:
            # Spec 8: every answer but 30 and 58 carries a MAC (checked by the hook above).
            assert (message.mac is None) == (code in ("30", "58")), message.fields
        return message

    def request_fields(self, card: CardData, processing_code: str, amount: int, *,
                       pin: str | None = PIN, stan: str | None = None, **extra: Any
                       ) -> dict[str, str]:
        return financial_request(
            self.identity, card, stan=stan or self.next_stan(), processing_code=processing_code,
            amount_minor=amount, now=dt.datetime.now(dt.UTC),
            pin_block=self.keys.pin_block(pin, card.pan) if pin is not None else None, **extra,
        )

    async def withdraw(
        self, card: CardData, amount: int, **kw: Any
    ) -> tuple[Message, dict[str, str]]:
        fields = self.request_fields(card, "010000", amount, **kw)
        return await self.send("0200", fields), fields

    async def complete(self, original: Mapping[str, str], amount: int | None = None,
                       mti: str = "0220", fields: dict[str, str] | None = None) -> Message:
        advice = fields or completion_advice(original, stan=self.next_stan(),
                                             now=dt.datetime.now(dt.UTC),
                                             final_amount_minor=amount)
        return await self.send(mti, advice)

    async def reverse(self, original: Mapping[str, str], reason: str = "68",
                      dispensed: int | None = None) -> tuple[Message, dict[str, str]]:
        advice = reversal_advice(original, stan=self.next_stan(), now=dt.datetime.now(dt.UTC),
                                 reason=reason, dispensed_minor=dispensed)
        return await self.send("0420", advice), advice

    async def aclose(self) -> None:
        await self.link.aclose()
