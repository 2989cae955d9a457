"""Issue 18 admission rules: a connect flood cannot evict a terminal that proved who it is
(client certificate) or whose sign-on is still being looked up, and the not-signed-on cap also
holds per source address, so a flood from one address evicts only its own connections.

In-memory streams with named peers on Trio's MockClock, the real dispatcher and network
management; the certificate rule over real TLS against a switch on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio
import trio.testing
from prometheus_client import CollectorRegistry

from ops.metrics import SwitchMetrics
from switch.config import ServerConfig
from switch.dispatch import Dispatcher
from switch.netmgmt import NetworkManagement
from switch.server import SwitchServer
from switch.session import Session, SessionRegistry
from terminals.hostlink.connection import HostConnection
from tests.core.conftest import StartSwitch, connect
from tests.core.test_server import assert_closed_by_server
from tests.core.test_server_admission import client_context, pki, terminals, wait_closed

__all__ = ["pki", "terminals"]  # fixtures used below


class SlowDirectory:
    """The terminal registry, answering after ``delay_s`` (a slow database)."""

    cache_ttl_s = 2.0

    def __init__(self, delay_s: float, *terminal_ids: str) -> None:
        self.delay_s = delay_s
        self.enabled = set(terminal_ids)

    async def status(
        self, terminal_id: str, *, max_age_s: float, last_known_ok: bool = True
    ) -> str | None:
        await trio.sleep(self.delay_s)
        return "enabled" if terminal_id in self.enabled else None


class Switch:
    def __init__(self, nursery: trio.Nursery, delay_s: float = 0.0, **settings: Any) -> None:
        self.sessions = SessionRegistry()
        directory = SlowDirectory(delay_s, "ATM00001", "ATM00002")
        self.dispatcher = Dispatcher(NetworkManagement(directory, self.sessions))  # type: ignore[arg-type]
        self.dispatcher.set_response_mac(self._mac)
        self.metrics = SwitchMetrics(CollectorRegistry())
        self.server = SwitchServer(dataclasses.replace(ServerConfig(), **settings),
                                   self.dispatcher, self.metrics, self.sessions)
        self.nursery = nursery

    async def _mac(self, request: Any, session: Session, mac_input: bytes) -> str:
        return "0" * 16

    @contextlib.asynccontextmanager
    async def connect(self, peer: str, terminal_id: str = "ATM00002"
                      ) -> AsyncIterator[HostConnection]:
        client, server = trio.testing.memory_stream_pair()
        self.server.start_connection(server, peer, self.nursery)
        link = HostConnection(client, terminal_id=terminal_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run_reader)
            try:
                yield link
            finally:
                await link.aclose()
                nursery.cancel_scope.cancel()


def test_peer_host_drops_the_port() -> None:
    from switch.server import peer_host  # here, so the file runs against the older server

    assert peer_host("10.0.0.7:4123") == "10.0.0.7"
    assert peer_host("[2001:db8::1]:4123") == "2001:db8::1"
    assert peer_host("memory") == "memory"


async def test_a_flood_from_one_address_evicts_only_its_own_connections(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: an ATM connecting from 10.0.0.1 and not yet signed on survives 50 connections
    # from 10.9.9.9, whether the per-address cap (4) or the global cap (6) is reached.
    switch = Switch(nursery, not_signed_on_max=6, not_signed_on_per_address_max=4)
    async with contextlib.AsyncExitStack() as stack:
        atm = await stack.enter_async_context(switch.connect("10.0.0.1:5000", "ATM00001"))
        neighbour = await stack.enter_async_context(switch.connect("10.0.0.2:5000"))
        flood = [await stack.enter_async_context(switch.connect(f"10.9.9.9:{6000 + n}"))
                 for n in range(50)]
        await trio.sleep(0.5)
        assert not atm.closed and not neighbour.closed
        assert sum(not link.closed for link in flood) == 4  # its own cap
        assert (await atm.sign_on()).response_code == "00"
    assert switch.metrics.sample("atm_protocol_errors_total", kind="not_signed_on_evicted") == 46


async def test_the_global_cap_evicts_from_the_crowded_address(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: with the default per-address cap (32) out of reach, the global cap (6) alone: the
    # oldest not-signed-on connection is the ATM, yet the flood's own connections are closed.
    switch = Switch(nursery, not_signed_on_max=6)
    async with contextlib.AsyncExitStack() as stack:
        atm = await stack.enter_async_context(switch.connect("10.0.0.1:5000", "ATM00001"))
        flood = [await stack.enter_async_context(switch.connect(f"10.9.9.9:{6000 + n}"))
                 for n in range(20)]
        await trio.sleep(0.5)
        assert not atm.closed
        assert sum(not link.closed for link in flood) == 5
        assert (await atm.sign_on()).response_code == "00"


async def test_a_slow_sign_on_is_not_evicted_by_a_connect_flood(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: the directory takes 3 s to answer; while the ATM's sign-on waits, 20 connections
    # from other addresses arrive (global cap 4). The ATM must still be signed on.
    switch = Switch(nursery, delay_s=3.0, not_signed_on_max=4)
    async with contextlib.AsyncExitStack() as stack:
        atm = await stack.enter_async_context(switch.connect("10.0.0.1:5000", "ATM00001"))
        answered: list[str] = []

        async def sign_on() -> None:
            answered.append((await atm.sign_on()).response_code)

        nursery.start_soon(sign_on)
        await trio.sleep(0.5)  # the 0800 is in flight, the lookup sleeps
        for n in range(20):
            await stack.enter_async_context(switch.connect(f"10.8.{n}.1:6000"))
            await trio.sleep(0.05)
        await trio.sleep(5.0)
        assert answered == ["00"] and not atm.closed
        assert (await atm.echo()).response_code == "00"


async def test_a_client_certificate_is_never_evicted(
    start_switch: StartSwitch, terminals: None, pki: Path
) -> None:
    # Goal: over real TLS, an ATM that presented a valid certificate and has not signed on
    # yet stays connected while idle peers that never finish a handshake churn the cap (2).
    app = await start_switch(
        tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.pem"), tls_handshake_timeout_s=5.0,
        not_signed_on_max=2, sign_on_deadline_s=20.0)
    host, port = app.server.addresses[0]
    context: ssl.SSLContext = client_context(pki, "ATM00001")
    async with connect(app, "ATM00001", ssl_context=context,
                       server_hostname="127.0.0.1") as link:
        assert (await link.echo()).response_code == "58"  # handshake done, not signed on
        idle = [await trio.open_tcp_stream(host, port) for _ in range(6)]
        for stream in idle[:4]:  # each newer idle socket evicts an older idle one
            await assert_closed_by_server(stream)
        assert (await link.sign_on()).response_code == "00"
        for stream in idle:
            await stream.aclose()
    assert (app.metrics.sample("atm_protocol_errors_total", kind="not_signed_on_evicted") or 0) >= 4


async def test_when_nothing_is_evictable_the_newcomer_is_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: two sign-ons in flight fill a cap of 2; a third connection is the one closed.
    switch = Switch(nursery, delay_s=3.0, not_signed_on_max=2)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(switch.connect("10.0.0.1:1", "ATM00001"))
        second = await stack.enter_async_context(switch.connect("10.0.0.2:1", "ATM00002"))
        codes: list[str] = []

        async def sign_on(link: HostConnection) -> None:
            codes.append((await link.sign_on()).response_code)

        nursery.start_soon(sign_on, first)
        nursery.start_soon(sign_on, second)
        await trio.sleep(0.5)
        third = await stack.enter_async_context(switch.connect("10.0.0.3:1"))
        await wait_closed(third)
        await trio.sleep(4.0)
        assert codes == ["00", "00"]
