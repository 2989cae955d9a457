"""Admission (spec 10): sign-on deadline, the not-signed-on cap, 58 before sign-on, TLS.

The timing rules run on Trio's MockClock over in-memory streams, with the real
dispatcher and network management in front of an in-memory terminal directory;
the same rules are then checked over real TCP and real TLS against a switch on a
real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from ops.metrics import SwitchMetrics
from switch.certs import Credential, issue_ca, issue_server, issue_terminal, main
from switch.config import ServerConfig
from switch.dispatch import Dispatcher
from switch.netmgmt import NetworkManagement
from switch.protocol import Message, decode_message, encode_frame, encode_message
from switch.server import SwitchServer
from switch.session import Session, SessionRegistry
from terminals.hostlink.connection import HostConnection, HostConnectionClosed
from tests.core.conftest import StartSwitch, connect, register_terminals
from tests.core.test_netmgmt import WITHDRAWAL_FIELDS
from tests.core.test_server import assert_closed_by_server, read_frames


class Directory:
    """The terminal registry in memory: every listed terminal is enabled."""

    cache_ttl_s = 2.0

    def __init__(self, *terminal_ids: str) -> None:
        self.enabled = set(terminal_ids)

    async def status(
        self, terminal_id: str, *, max_age_s: float, last_known_ok: bool = True
    ) -> str | None:
        return "enabled" if terminal_id in self.enabled else None


class Switch:
    """A SwitchServer fed in-memory streams (no listener), with the real dispatcher."""

    def __init__(self, nursery: trio.Nursery, **settings: Any) -> None:
        self.sessions = SessionRegistry()
        self.dispatcher = Dispatcher(
            NetworkManagement(Directory("ATM00001", "ATM00002"), self.sessions)  # type: ignore[arg-type]
        )
        self.macs: list[str | None] = []
        self.dispatcher.set_response_mac(self._mac)
        self.metrics = SwitchMetrics(CollectorRegistry())
        self.server = SwitchServer(
            dataclasses.replace(ServerConfig(), **settings),
            self.dispatcher,
            self.metrics,
            self.sessions,
        )
        self.nursery = nursery

    async def _mac(self, request: Message, session: Session, mac_input: bytes) -> str:
        self.macs.append(request.terminal_id)  # a key of this terminal would be used here
        return "0" * 16

    @contextlib.asynccontextmanager
    async def connect(self, terminal_id: str) -> AsyncIterator[HostConnection]:
        client, server = trio.testing.memory_stream_pair()
        self.server.start_connection(server, "memory", self.nursery)
        link = HostConnection(client, terminal_id=terminal_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run_reader)
            try:
                yield link
            finally:
                await link.aclose()
                nursery.cancel_scope.cancel()

    def errors(self, kind: str) -> float:
        value: float = self.metrics.sample("atm_protocol_errors_total", kind=kind) or 0.0
        return value


async def wait_closed(link: HostConnection) -> float:
    """Wait until the switch closes ``link``; return the (mock) time it happened."""
    with trio.fail_after(1000):
        while not link.closed:
            await trio.sleep(0.05)
    return trio.current_time()


async def test_sign_on_deadline_is_not_extended_by_echoes_or_keep_alives(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: a peer that never signs on is closed 10 s after accept, however busy it keeps
    # the line. Method: echo and send empty frames every second; MockClock measures.
    switch = Switch(nursery)
    start = trio.current_time()
    async with switch.connect("ATM00001") as link:
        answers = []
        while not link.closed and trio.current_time() - start < 30:
            with contextlib.suppress(HostConnectionClosed):
                await link.send_bytes(b"\x00\x00")
                answers.append((await link.echo()).response_code)
            await trio.sleep(1.0)
        closed_at = await wait_closed(link)
    assert 10.0 <= closed_at - start < 11.1
    assert set(answers) == {"58"} and len(answers) >= 9
    assert switch.errors("sign_on_deadline") == 1
    assert switch.server.connection_count == 0


async def test_a_terminal_that_signs_on_is_not_bound_by_the_deadline(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: the deadline ends at sign-on (the next limit is the 180 s idle timeout).
    switch = Switch(nursery)
    async with switch.connect("ATM00001") as link:
        await trio.sleep(9.0)
        assert (await link.sign_on()).response_code == "00"
        await trio.sleep(60.0)
        assert (await link.echo()).response_code == "00"
        assert not link.closed
    assert switch.errors("sign_on_deadline") == 0


async def test_not_signed_on_cap_evicts_the_oldest_and_spares_terminals(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: with a cap of 3, each new idle connection closes the oldest idle one, and a
    # terminal that signed on survives any number of them.
    switch = Switch(nursery, not_signed_on_max=3)
    async with contextlib.AsyncExitStack() as stack:
        idle = [await stack.enter_async_context(switch.connect("ATM00002")) for _ in range(3)]
        await trio.sleep(0.1)
        assert not any(link.closed for link in idle)
        terminal = await stack.enter_async_context(switch.connect("ATM00001"))
        await wait_closed(idle[0])  # the terminal's connection counted at once: oldest out
        assert (await terminal.sign_on()).response_code == "00"
        assert switch.server.not_signed_on_count == 2
        for _ in range(10):
            idle.append(await stack.enter_async_context(switch.connect("ATM00002")))
            await trio.sleep(0.1)
        assert (await terminal.echo()).response_code == "00"
        assert [link.closed for link in idle] == [True] * 10 + [False] * 3
        assert switch.errors("not_signed_on_evicted") == 10
        assert switch.server.not_signed_on_count == 3


async def test_before_sign_on_only_0800_is_processed_even_when_shedding(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # Goal: a 0200/0220/0420 before sign-on gets 58 without a MAC and no key of the
    # terminal in field 41 is used, also when the switch is full and sheds with 91.
    switch = Switch(nursery)
    switch.server.inflight_total_max = 0  # everything that reaches the shedding check: 91
    async with switch.connect("ATM00001") as link:
        for mti in ("0200", "0220", "0420", "0221"):
            answer = await link.request(mti, WITHDRAWAL_FIELDS, mac=False)
            assert (answer.response_code, answer.mac) == ("58", None), mti
        assert switch.macs == []
        assert switch.errors("before_sign_on") == 4
        # An 0800 is processed (and, here, shed: the sign-on check came first).
        assert (await link.sign_on()).response_code == "91"
    assert switch.macs == []


async def test_before_sign_on_a_response_or_unreadable_message_closes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    switch = Switch(nursery)
    async with switch.connect("ATM00001") as link:
        await link.send_payload(encode_message("0210", {"11": "000001", "39": "00"}))
        await wait_closed(link)
    async with switch.connect("ATM00001") as link:
        await link.send_payload(b"02\xff\xfejunk")
        await wait_closed(link)


# ---- real TCP and real TLS against a switch on PostgreSQL ------------------------------


@pytest.fixture
async def terminals(db: Any) -> None:
    await register_terminals(db, "ATM00001", "ATM00002")


async def test_real_tcp_deadline_and_cap(
    start_switch: StartSwitch, terminals: None, realtime_clock: trio.testing.MockClock
) -> None:
    # Goal: over real sockets, idle peers are evicted and timed out while a terminal works.
    # Method: real TCP and PostgreSQL; the clock jumps over the 10 s sign-on deadline once the
    # terminal has signed on and nothing is in flight, instead of sleeping through it.
    app = await start_switch(sign_on_deadline_s=10.0, not_signed_on_max=2)
    host, port = app.server.addresses[0]
    first = await trio.open_tcp_stream(host, port)
    second = await trio.open_tcp_stream(host, port)
    async with connect(app, "ATM00001") as link:
        await assert_closed_by_server(first)  # the third not-signed-on connection evicts it
        assert (await link.sign_on()).response_code == "00"
        realtime_clock.jump(10.0)
        started = trio.current_time()
        await assert_closed_by_server(second)  # the 10 s sign-on deadline
        assert trio.current_time() - started < 1.0  # closed by the jump, not by waiting
        assert app.metrics.sample("atm_protocol_errors_total", kind="sign_on_deadline") == 1
        realtime_clock.jump(1.2)  # the signed-on terminal is past its own deadline too
        assert (await link.echo()).response_code == "00"
    before = await trio.open_tcp_stream(host, port)
    await before.send_all(
        encode_frame(
            encode_message(
                "0200", {**WITHDRAWAL_FIELDS, "7": "0615103000", "11": "000001", "41": "ATM00001"}
            )
        )
    )
    (refused,) = await read_frames(before, 1)
    assert decode_message(refused).response_code == "58"
    assert decode_message(refused).mac is None
    await before.aclose()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and terminal certificates, made by the CLI."""
    directory = tmp_path_factory.mktemp("pki")
    assert main(["ca", str(directory)]) == 0
    assert main(["ca", str(directory)]) == 1  # never replaces a CA
    assert main(["server", str(directory), "localhost", "127.0.0.1"]) == 0
    assert main(["terminal", str(directory), "ATM00001"]) == 0
    assert (directory / "ATM00001.key").stat().st_mode & 0o777 == 0o600
    return directory


def client_context(pki: Path, terminal: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if terminal is not None:
        context.load_cert_chain(str(pki / f"{terminal}.pem"), str(pki / f"{terminal}.key"))
    return context


async def test_tls_client_certificate_binds_field_41(
    start_switch: StartSwitch,
    terminals: None,
    pki: Path,
    tmp_path: Path,
    realtime_clock: trio.testing.MockClock,
) -> None:
    # Goal: with client certificates required, field 41 must equal the certificate CN;
    # a client without a certificate, or one that never handshakes, is closed (the clock
    # jumps over the 5 s handshake deadline).
    app = await start_switch(
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.pem"),
        tls_handshake_timeout_s=5.0,
    )
    with_cert = client_context(pki, "ATM00001")
    async with connect(app, "ATM00001", ssl_context=with_cert, server_hostname="127.0.0.1") as link:
        assert (await link.sign_on()).response_code == "00"
        assert (await link.echo()).response_code == "00"
    async with connect(app, "ATM00002", ssl_context=with_cert, server_hostname="127.0.0.1") as link:
        assert (await link.sign_on()).response_code == "58"  # ATM00001's certificate
    # A certificate from another CA is refused in the handshake.
    rogue_ca = issue_ca("rogue")
    rogue_ca_dir = tmp_path / "rogue"
    issue_terminal(rogue_ca, "ATM00002").save(rogue_ca_dir, "ATM00002")
    rogue = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    rogue.load_cert_chain(str(rogue_ca_dir / "ATM00002.pem"), str(rogue_ca_dir / "ATM00002.key"))
    for context in (client_context(pki, None), rogue):
        refused = False
        try:
            async with connect(
                app, "ATM00002", ssl_context=context, server_hostname="127.0.0.1"
            ) as link:
                await link.sign_on()
        except* (HostConnectionClosed, trio.BrokenResourceError, ssl.SSLError):
            refused = True
        assert refused
    # A peer that opens TCP and never starts TLS is closed at the handshake deadline.
    with trio.fail_after(5):  # the refused connections are gone: the next one is the silent one
        while app.server.connection_count:
            await trio.sleep(0.01)
    refused_before = app.metrics.sample("atm_protocol_errors_total", kind="tls_handshake") or 0
    assert refused_before >= 2  # the two refused certificates
    host, port = app.server.addresses[0]
    silent = await trio.open_tcp_stream(host, port)
    with trio.fail_after(5):
        while app.server.connection_count < 1:
            await trio.sleep(0.01)
    realtime_clock.jump(4.5)
    await trio.testing.wait_all_tasks_blocked()
    assert app.server.connection_count == 1  # not before the deadline
    realtime_clock.jump(0.6)
    started = trio.current_time()
    await assert_closed_by_server(silent)
    assert trio.current_time() - started < 1.0  # closed by the jump, not by waiting
    assert app.metrics.sample("atm_protocol_errors_total", kind="tls_handshake") == (
        refused_before + 1)


def test_certificate_helpers_refuse_bad_input() -> None:
    ca = issue_ca()
    with pytest.raises(ValueError):
        issue_terminal(ca, "TOO-LONG-ID")
    with pytest.raises(ValueError):
        issue_server(ca, ())
    assert "key_pem" not in repr(Credential(b"c", b"secret"))
