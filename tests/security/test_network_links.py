"""Issue 11 item 2: a card-network peer that misbehaves ends its link (which reconnects with
backoff), never the process; sends run under a deadline; links speak TLS with client
certificates; a network without a MAC key needs ``insecure = true``.

A hand-written peer on real TCP (and real TLS) plays the network and misbehaves on purpose;
the link is the real ``IsoHostNetwork`` with a software HSM holding the zone MAC key.
Backoff and deadlines run on Trio's MockClock (``autojump_clock``): the peer is a task of the
same Trio run over loopback, so no real I/O is waited for while the clock jumps.
"""

from __future__ import annotations

import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from switch.certs import issue_ca, issue_server, issue_terminal
from switch.hsm.primitives.mac import retail_mac
from switch.hsm.software import SoftwareHsm
from switch.networks.base import NetworkConfigError, NetworkServices, NetworkStatus
from switch.networks.iso_host import IsoHostNetwork
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import Message, decode_message, encode_message
from switch.protocol.responses import response_fields, response_mti

ZAK_HEX = "1111111111111111FEDCBA9876543210"
ZAK = bytes.fromhex(ZAK_HEX)
Behaviour = Callable[[Message, trio.abc.Stream], Awaitable[None]]


class Peer:
    """Answers sign-on and echo; hands every 0200 to ``behaviour``; counts connections."""

    def __init__(self, behaviour: Behaviour, ssl_context: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self.ssl_context = ssl_context
        self.connections = 0
        self.client_names: list[str] = []
        self.read = True

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        for listener in listeners:  # a small receive buffer: "not reading" shows quickly
            listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, raw: trio.SocketStream) -> None:
        stream: trio.abc.Stream = raw
        if self.ssl_context is not None:
            tls = trio.SSLStream(raw, self.ssl_context, server_side=True)
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError:
                return
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            self.client_names.append(subject["commonName"])
            stream = tls
        self.connections += 1
        decoder = FrameDecoder()
        try:
            async for data in stream:
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    message = decode_message(frame)
                    if message.mti == "0800":
                        fields = response_fields(message, "00")
                        await stream.send_all(encode_frame(encode_message("0810", fields)))
                    else:
                        await self.behaviour(message, stream)
                        if not self.read:
                            await trio.sleep_forever()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def macced_answer(request: Message, code: str = "00", *, key: bytes = ZAK) -> bytes:
    fields = response_fields(request, code)
    return encode_message(response_mti(request.mti), fields,
                          mac=lambda data: retail_mac(key, data).hex().upper())


async def good(request: Message, stream: trio.abc.Stream) -> None:
    await stream.send_all(encode_frame(macced_answer(request)))


async def network(port: int, **options: Any) -> IsoHostNetwork:
    hsm = SoftwareHsm(secrets.token_bytes(32), test_mode=True)
    zak = await hsm.import_clear_key_test_mode(ZAK_HEX, usage="M3")
    settings = {"host": "127.0.0.1", "port": port, "zak": zak, "reconnect_backoff_min_s": 0.05,
                "reconnect_backoff_max_s": 0.1, "send_timeout_s": 0.5, **options}
    return IsoHostNetwork.from_options("net", settings, NetworkServices(hsm=hsm))


REQUEST = {"2": "4999990000000001", "3": "011000", "4": "000000010000", "41": "ATMSWTCH",
           "49": "156"}


async def ask(net: IsoHostNetwork, timeout_s: float = 1.0) -> Message | Exception:
    try:
        message, _ = await net.link.request("0200", REQUEST,
                                             deadline=trio.current_time() + timeout_s)
        return message
    except Exception as exc:  # what the caller (the acquirer) sees
        return exc


async def reconnected(net: IsoHostNetwork, peer: Peer, connections: int) -> None:
    with trio.fail_after(10):
        while peer.connections < connections or net.status is not NetworkStatus.SIGNED_ON:
            await trio.sleep(0.02)


async def junk(request: Message, stream: trio.abc.Stream) -> None:
    await stream.send_all(encode_frame(b"0210\xff\xfenot a message"))


async def bad_mac(request: Message, stream: trio.abc.Stream) -> None:
    await stream.send_all(encode_frame(macced_answer(request, key=bytes(16))))


async def no_mac(request: Message, stream: trio.abc.Stream) -> None:
    answer = encode_message(response_mti(request.mti), response_fields(request, "00"))
    await stream.send_all(encode_frame(answer))


async def unsolicited_request(request: Message, stream: trio.abc.Stream) -> None:
    await stream.send_all(encode_frame(encode_message("0200", REQUEST | {"11": "000777"})))


async def answer_to_nothing(request: Message, stream: trio.abc.Stream) -> None:
    stray = dict(request.fields) | {"11": "999998"}
    await stream.send_all(encode_frame(macced_answer(Message(request.mti, stray))))


@pytest.mark.parametrize(
    "behaviour", [junk, bad_mac, no_mac, unsolicited_request, answer_to_nothing],
    ids=lambda b: b.__name__,
)
async def test_a_misbehaving_peer_resets_only_its_link(
    behaviour: Behaviour, autojump_clock: MockClock,
) -> None:
    peer = Peer(behaviour)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(peer.serve)
        net = await network(port)
        await nursery.start(net.run)
        await reconnected(net, peer, 1)
        outcome = await ask(net)
        assert not isinstance(outcome, Message) or outcome.response_code != "00"
        await reconnected(net, peer, 2)  # the link was reset and signed on again
        peer.behaviour = good
        assert (await ask(net)).response_code == "00"  # type: ignore[union-attr]
        nursery.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_is_dropped_by_the_send_deadline(
    autojump_clock: MockClock,
) -> None:
    async def swallow(request: Message, stream: trio.abc.Stream) -> None:
        peer.read = False

    peer = Peer(swallow)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(peer.serve)
        net = await network(port)
        await nursery.start(net.run)
        await reconnected(net, peer, 1)
        big = REQUEST | {"43": "X" * 40, "48": "TX994" + "Y" * 994}
        with trio.fail_after(30):
            while peer.connections < 2:
                try:
                    await net.link.request("0200", big, deadline=trio.current_time() + 0.01)
                except Exception:  # no answers: the point is filling the pipe
                    # A tick of the mock clock, not sleep(0): a loop that never lets the run
                    # loop idle would keep the clock (and so the reconnect backoff) still.
                    await trio.sleep(0.001)
        peer.behaviour, peer.read = good, True
        await reconnected(net, peer, 2)
        assert (await ask(net)).response_code == "00"  # type: ignore[union-attr]
        nursery.cancel_scope.cancel()


async def test_links_speak_tls_with_a_client_certificate(
    tmp_path: Path, autojump_clock: MockClock,
) -> None:
    ca = issue_ca("network CA")
    ca.save(tmp_path, "ca")
    issue_server(ca, ["127.0.0.1"]).save(tmp_path, "server")
    issue_terminal(ca, "ATMSWTCH").save(tmp_path, "client")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.pem"))
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(str(tmp_path / "server.pem"), str(tmp_path / "server.key"))
    peer = Peer(good, server)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(peer.serve)
        net = await network(port, tls_ca=str(tmp_path / "ca.pem"),
                            tls_cert=str(tmp_path / "client.pem"),
                            tls_key=str(tmp_path / "client.key"))
        await nursery.start(net.run)
        await reconnected(net, peer, 1)
        assert (await ask(net)).response_code == "00"  # type: ignore[union-attr]
        assert peer.client_names == ["ATMSWTCH"]
        nursery.cancel_scope.cancel()
    # Without our client certificate the network refuses the handshake: the link stays down.
    peer = Peer(good, server)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(peer.serve)
        net = await network(port, tls_ca=str(tmp_path / "ca.pem"))
        await nursery.start(net.run)
        await trio.sleep(0.5)
        assert net.status is NetworkStatus.LINK_DOWN and peer.connections == 0
        nursery.cancel_scope.cancel()


async def test_no_mac_key_needs_insecure_and_is_logged_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hsm = SoftwareHsm(secrets.token_bytes(32), test_mode=True)
    options = {"host": "127.0.0.1", "port": 9}
    with pytest.raises(NetworkConfigError, match="insecure"):
        IsoHostNetwork.from_options("open", options, NetworkServices(hsm=hsm))
    with caplog.at_level(logging.WARNING, logger="atm.networks"):
        IsoHostNetwork.from_options("open", options | {"insecure": True},
                                    NetworkServices(hsm=hsm))
    assert any("INSECURE" in r.getMessage() and r.levelno >= logging.ERROR
               for r in caplog.records)


async def plain_link_records(caplog: pytest.LogCaptureFixture, **options: Any
                             ) -> list[logging.LogRecord]:
    """Start a link (with a MAC key) toward a real peer over plain TCP; what it logged."""
    peer = Peer(good)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="atm.networks"):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(peer.serve)
            net = await network(port, **options)
            await nursery.start(net.run)
            await reconnected(net, peer, 1)
            nursery.cancel_scope.cancel()
    return [r for r in caplog.records if "TLS" in r.getMessage()]


async def test_a_link_without_tls_logs_error_unless_insecure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 18: a MAC key authenticates the messages but not their secrecy (PANs, amounts).
    records = await plain_link_records(caplog)
    assert [r.levelno for r in records] == [logging.ERROR]
    assert "plain TCP" in records[0].getMessage()
    records = await plain_link_records(caplog, insecure=True)
    assert [r.levelno for r in records] == [logging.WARNING]
