"""The TCP server over real sockets: interleaving, limits, deadlines, junk, shutdown, TLS."""

from __future__ import annotations

import datetime as dt
import ssl
import struct

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from switch.app import SwitchApp
from switch.db.runtime import Database
from switch.protocol import Message, encode_frame, encode_message, response_fields, response_mti
from tests.core.conftest import StartSwitch, connect, register_terminals
from tests.core.test_netmgmt import WITHDRAWAL_FIELDS

SIGN_ON = b"0800822000000080000004000000000000000615103000000001ATM00001001"


def answer_51(request: Message) -> bytes:
    return encode_message(response_mti(request.mti), response_fields(request, "51"))


@pytest.fixture
async def terminals(db: Database) -> None:
    await register_terminals(db, "ATM00001", "ATM00002")


async def read_frames(stream: trio.SocketStream, count: int) -> list[bytes]:
    """Read ``count`` binary2 frames from a raw client socket."""
    buffer = b""
    frames = []
    with trio.fail_after(10):
        while len(frames) < count:
            while len(buffer) >= 2 and len(buffer) >= 2 + struct.unpack(">H", buffer[:2])[0]:
                size = struct.unpack(">H", buffer[:2])[0]
                frames.append(buffer[2 : 2 + size])
                buffer = buffer[2 + size :]
            if len(frames) >= count:
                break
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            buffer += chunk
    return frames


async def assert_closed_by_server(stream: trio.SocketStream) -> None:
    with trio.fail_after(5):
        while True:
            try:
                if not await stream.receive_some(65536):
                    return
            except trio.BrokenResourceError:
                return


async def test_responses_interleave_on_one_connection(
    start_switch: StartSwitch, terminals: None
) -> None:
    # Goal: a slow request does not hold back a fast one. The handler sleeps amount/1000 ms.
    async def slow_by_amount(request: Message, raw: bytes, session: object) -> bytes:
        await trio.sleep((request.amount_minor or 0) / 1_000_000)
        return answer_51(request)

    app = await start_switch(app_setup=lambda a: a.dispatcher.register("0200", slow_by_amount))
    host, port = app.server.addresses[0]
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(encode_frame(SIGN_ON))
    assert (await read_frames(stream, 1))[0][:4] == b"0810"
    requests = []
    for stan, amount in (
        ("000010", "000000300000"),
        ("000011", "000000010000"),
        ("000012", "000000100000"),
    ):
        fields = {**WITHDRAWAL_FIELDS, "4": amount, "7": "0615103000", "11": stan, "41": "ATM00001"}
        requests.append(encode_frame(encode_message("0200", fields)))
    await stream.send_all(b"".join(requests))
    order = [frame[4:].split(b"0615103000", 1)[1][:6] for frame in await read_frames(stream, 3)]
    assert order == [b"000011", b"000012", b"000010"]  # fastest first
    await stream.aclose()


async def test_in_flight_limit_is_8_per_connection(
    start_switch: StartSwitch, terminals: None
) -> None:
    # Goal: the 9th request waits (the reader stops) until one of the first 8 is answered.
    entered = 0
    release = trio.Event()

    async def blocking(request: Message, raw: bytes, session: object) -> bytes:
        nonlocal entered
        entered += 1
        await release.wait()
        return answer_51(request)

    app = await start_switch(app_setup=lambda a: a.dispatcher.register("0200", blocking))
    async with connect(app, "ATM00001") as link, trio.open_nursery() as nursery:
        await link.sign_on()
        answers: list[Message] = []

        async def one() -> None:
            answers.append(await link.request("0200", WITHDRAWAL_FIELDS, mac=False))

        for _ in range(8):
            nursery.start_soon(one)
        with trio.fail_after(5):
            while entered < 8:
                await trio.sleep(0.01)
        # The client allows only 8 outstanding too: send a 9th frame by hand.
        ninth = {**WITHDRAWAL_FIELDS, "7": "0615103000", "11": "555555", "41": "ATM00001"}
        await link.send_payload(encode_message("0200", ninth))
        await trio.sleep(0.3)
        assert entered == 8 and app.server.inflight_total == 8
        release.set()
        with trio.fail_after(5):
            while entered < 9 or len(answers) < 8:
                await trio.sleep(0.01)
    assert {a.response_code for a in answers} == {"51"}


async def test_deadline_answers_91(
    start_switch: StartSwitch, terminals: None, realtime_clock: trio.testing.MockClock
) -> None:
    # Goal: a handler that never answers gets 91 at the request deadline. Method: real TCP and
    # PostgreSQL; once the handler waits, the clock jumps over the 3 s deadline.
    entered = trio.Event()

    async def never(request: Message, raw: bytes, session: object) -> bytes:
        entered.set()
        await trio.sleep_forever()
        raise AssertionError

    app = await start_switch(
        request_deadline_s=3.0, app_setup=lambda a: a.dispatcher.register("0200", never)
    )
    async with connect(app, "ATM00001") as link, trio.open_nursery() as nursery:
        await link.sign_on()
        answers: list[Message] = []

        async def ask() -> None:
            answers.append(await link.request("0200", WITHDRAWAL_FIELDS, mac=False))

        started = trio.current_time()
        nursery.start_soon(ask)
        with trio.fail_after(5):
            await entered.wait()
        realtime_clock.jump(3.0)
    (answer,) = answers
    assert (answer.mti, answer.response_code) == ("0210", "91")
    assert 3.0 <= trio.current_time() - started < 3.0 + 2  # at the deadline, not a timeout later


async def test_overload_sheds_with_91_at_once(start_switch: StartSwitch, terminals: None) -> None:
    release = trio.Event()

    async def blocking(request: Message, raw: bytes, session: object) -> bytes:
        await release.wait()
        return answer_51(request)

    def setup(app: SwitchApp) -> None:
        app.server.inflight_total_max = 2
        app.dispatcher.register("0200", blocking)

    app = await start_switch(app_setup=setup)
    async with connect(app, "ATM00001") as link, trio.open_nursery() as nursery:
        await link.sign_on()
        for _ in range(2):
            nursery.start_soon(link.request, "0200", WITHDRAWAL_FIELDS)
        with trio.fail_after(5):
            while app.server.inflight_total < 2:
                await trio.sleep(0.01)
        with trio.fail_after(2):
            shed = await link.request("0200", WITHDRAWAL_FIELDS, mac=False)
        assert shed.response_code == "91"
        assert (await link.echo()).response_code == "00"  # echoes are never shed
        release.set()
    assert app.metrics.sample("atm_requests_shed_total") == 1


async def test_handler_crash_is_96_and_the_connection_lives(
    start_switch: StartSwitch, terminals: None
) -> None:
    async def broken(request: Message, raw: bytes, session: object) -> bytes:
        raise RuntimeError("bug")

    app = await start_switch(app_setup=lambda a: a.dispatcher.register("0200", broken))
    async with connect(app, "ATM00001") as link:
        await link.sign_on()
        assert (await link.request("0200", WITHDRAWAL_FIELDS, mac=False)).response_code == "96"
        assert (await link.echo()).response_code == "00"


async def test_junk_frames_and_oversize_lengths_never_stop_the_server(switch: SwitchApp) -> None:
    host, port = switch.server.addresses[0]
    # 1. Readable MTI + STAN, bad field: answered 30 without MAC, connection stays open.
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(encode_frame(SIGN_ON[:-3] + b"0X1") + encode_frame(SIGN_ON))
    bad, good = await read_frames(stream, 2)
    assert bad == b"08100220000002800000061510300000000130ATM00001"
    assert good.startswith(b"0810") and b"00ATM00001001" in good
    # 2. Keep-alive (empty) frames are ignored; unreadable junk closes the connection.
    await stream.send_all(b"\x00\x00" + encode_frame(b"\xff\xfe garbage"))
    await assert_closed_by_server(stream)
    # 3. An oversize length closes the connection at once.
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(b"\x10\x01" + b"x" * 100)
    await assert_closed_by_server(stream)
    # 4. A burst of random junk on many connections, then the switch still serves.
    for seed in range(20):
        junk = await trio.open_tcp_stream(host, port)
        await junk.send_all(bytes((seed * 37 + i * 11) % 256 for i in range(300)))
        await junk.aclose()
    async with connect(switch, "ATM00002") as link:
        assert (await link.sign_on()).response_code == "00"
    assert switch.metrics.sample("atm_protocol_errors_total", kind="format") == 1
    assert (switch.metrics.sample("atm_protocol_errors_total", kind="frame_too_large") or 0) >= 1


async def test_idle_connections_are_closed(
    start_switch: StartSwitch, terminals: None, realtime_clock: trio.testing.MockClock
) -> None:
    # Goal: a connection that says nothing for idle_timeout_s is closed, and not before.
    # Method: real TCP; the clock jumps over the 5 s (the sign-on deadline is 10 s) instead of
    # sleeping, and the watchdog (every 0.5 s) runs after each jump.
    app = await start_switch(idle_timeout_s=5.0)
    host, port = app.server.addresses[0]
    stream = await trio.open_tcp_stream(host, port)
    with trio.fail_after(5):
        while app.server.connection_count < 1:
            await trio.sleep(0.01)
    realtime_clock.jump(4.0)
    await trio.testing.wait_all_tasks_blocked()  # the watchdog's round at 4 s: still open
    assert app.server.connection_count == 1
    assert app.metrics.sample("atm_protocol_errors_total", kind="idle_timeout") == 0
    realtime_clock.jump(1.5)
    started = trio.current_time()
    await assert_closed_by_server(stream)
    assert trio.current_time() - started < 1.0  # closed by the jump, not by waiting
    assert app.metrics.sample("atm_protocol_errors_total", kind="idle_timeout") == 1


async def test_connections_beyond_the_maximum_are_closed(
    start_switch: StartSwitch, terminals: None
) -> None:
    app = await start_switch(connections_max=2)
    async with connect(app, "ATM00001") as one, connect(app, "ATM00002") as two:
        assert (await one.sign_on()).response_code == "00"
        assert (await two.sign_on()).response_code == "00"
        host, port = app.server.addresses[0]
        third = await trio.open_tcp_stream(host, port)
        await assert_closed_by_server(third)
    assert app.metrics.sample("atm_connections_rejected_total") == 1


async def test_graceful_shutdown_lets_in_flight_requests_finish(
    start_switch: StartSwitch, terminals: None
) -> None:
    started = trio.Event()

    async def slow(request: Message, raw: bytes, session: object) -> bytes:
        started.set()
        await trio.sleep(0.5)
        return answer_51(request)

    app = await start_switch(app_setup=lambda a: a.dispatcher.register("0200", slow))
    host, port = app.server.addresses[0]
    async with connect(app, "ATM00001") as link:
        await link.sign_on()
        async with trio.open_nursery() as nursery:
            answers: list[Message] = []

            async def one() -> None:
                answers.append(await link.request("0200", WITHDRAWAL_FIELDS, mac=False))

            nursery.start_soon(one)
            await started.wait()
            app.request_shutdown()
        assert answers[0].response_code == "51"  # answered although shutdown began first
        with trio.fail_after(5):
            while not link.closed:
                await trio.sleep(0.01)
    with pytest.raises(OSError):
        await trio.open_tcp_stream(host, port)


def self_signed(tmp_path: trio.Path | object) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert_pem, key_pem


async def test_tls(start_switch: StartSwitch, terminals: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert_pem, key_pem = self_signed(tmp_path)
    (tmp_path / "cert.pem").write_text(cert_pem)
    (tmp_path / "key.pem").write_text(key_pem)
    app = await start_switch(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"))
    client = ssl.create_default_context(cadata=cert_pem)
    client.minimum_version = ssl.TLSVersion.TLSv1_2
    async with connect(app, "ATM00001", ssl_context=client, server_hostname="localhost") as link:
        assert (await link.sign_on()).response_code == "00"
        assert (await link.echo()).response_code == "00"
    # A plain-TCP client gets nothing it can read and the server carries on.
    host, port = app.server.addresses[0]
    plain = await trio.open_tcp_stream(host, port)
    await plain.send_all(encode_frame(SIGN_ON))
    await assert_closed_by_server(plain)


async def test_ascii4_framing(start_switch: StartSwitch, terminals: None) -> None:
    app = await start_switch(framing="ascii4")
    async with connect(app, "ATM00001", framing="ascii4") as link:
        assert (await link.sign_on()).response_code == "00"
