"""A real switch (tests/authorization/harness.py) plus card networks and the test issuer, all
over real TCP on localhost, with the per-test PostgreSQL database."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

import trio

from switch.config import NetworksConfig
from switch.networks.acquiring import NetworkAcquirer
from switch.networks.base import NetworkServices, NetworkStatus
from switch.networks.registry import build_registry
from terminals.hostlink.financial import CardData
from tests.authorization.harness import RunningSwitch, running_switch
from tests.networks.issuer import ZAK_HEX, ZPK_HEX, IssuerRules, TestIssuer

NETWORK_CARD = CardData("4999990000000017", "3012")  # BIN 499999: routed to "demo"
NETWORK_CARD_2 = CardData("4999990000000025", "3012")
ORPHAN_CARD = CardData("5555550000000018", "3012")  # BIN 555555: routed to "ghost" (absent)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass
class NetworkedSwitch:
    switch: RunningSwitch
    issuer: TestIssuer
    acquirer: NetworkAcquirer
    stand_in_pvk: str | None = None

    @property
    def link(self) -> Any:
        return self.acquirer.registry.networks["demo"].network.link

    async def wait_status(self, status: NetworkStatus, timeout_s: float = 5.0) -> None:
        with trio.fail_after(timeout_s):
            while self.acquirer.registry.networks["demo"].status is not status:
                await trio.sleep(0.01)


async def wait_until(predicate: Any, timeout_s: float = 5.0) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.01)


@contextlib.asynccontextmanager
async def networked_switch(
    dsn: str,
    *,
    rules: IssuerRules | None = None,
    issuer_up: bool = True,
    mac: bool = True,
    demo_options: Mapping[str, Any] | None = None,
    deadline_s: float = 3.0,
    stand_in_pvk: bool = False,
    **switch_options: Any,
) -> AsyncIterator[NetworkedSwitch]:
    """Switch + network "demo" (kind iso_host) routed for BIN 499999 + a route to nowhere.
    ``switch_options`` go to ``running_switch`` (config, sweeper ...)."""
    issuer = TestIssuer(rules, zak_hex=ZAK_HEX if mac else None)
    async with running_switch(dsn, deadline_s=deadline_s, **switch_options) as switch:
        if issuer_up:
            port = await switch.nursery.start(issuer.serve)
        else:
            port = free_port()  # nothing listens there
        hsm = switch.hsm
        options: dict[str, Any] = {
            "kind": "iso_host",
            "host": "127.0.0.1",
            "port": port,
            "zpk": await hsm.import_clear_key_test_mode(ZPK_HEX, usage="P0"),
            "acquirer_id": "4321",
            "request_timeout_s": 1.0,
            "echo_idle_s": 30.0,
            "reconnect_backoff_min_s": 0.05,
            "reconnect_backoff_max_s": 0.2,
            "advice_retry_min_s": 0.05,
            "advice_retry_max_s": 0.1,
        }
        if mac:
            options["zak"] = await hsm.import_clear_key_test_mode(ZAK_HEX, usage="M3")
        else:
            options["insecure"] = True  # issue 11 item 2: no MAC key only when said so
        pvk = None
        if stand_in_pvk:  # the network's PIN verification key (Visa PVV), for stand-in
            pvk = options["stand_in_pvk"] = await hsm.generate_key("V2", algorithm="T")
        options.update(demo_options or {})
        config = NetworksConfig(
            routes={"499999": "demo", "555555": "ghost"}, instances={"demo": options}
        )
        registry = build_registry(config, NetworkServices(hsm=hsm))
        acquirer = NetworkAcquirer(registry, db=switch.db, hsm=hsm)
        switch.authorization.ctx.networks = acquirer
        await switch.nursery.start(acquirer.run)
        yield NetworkedSwitch(switch, issuer, acquirer, pvk)
