"""Issue 11 "done when": a storm of junk from outside against ``atm-switch serve`` (a child
process, real TCP, real PostgreSQL) leaves the section-10 rules held and the switch alive.

While idle sockets, junk, oversize lengths, slow half-frames and pre-sign-on requests pour
in, a real terminal keeps signing on and echoing; afterwards the process is still running,
the junk connections are gone, and a new terminal connection works.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
import trio

from switch.protocol.framing import encode_frame
from switch.protocol.message import decode_message, encode_message
from terminals.hostlink.connection import open_host_connection
from tests.core.test_netmgmt import WITHDRAWAL_FIELDS
from tests.e2e.processes import prepare, switch_process

TERMINAL = "ATM00001"
FIXTURE = {"terminals": [{"id": TERMINAL, "tmk": "0123456789ABCDEFFEDCBA9876543210"}]}
SETTINGS = {
    "ATM_SWITCH_SERVER_SIGN_ON_DEADLINE_S": "2",
    "ATM_SWITCH_SERVER_NOT_SIGNED_ON_MAX": "32",
}


async def closed_by_server(stream: trio.SocketStream, within_s: float) -> bool:
    with trio.move_on_after(within_s):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


@pytest.mark.slow
async def test_the_switch_survives_a_storm_and_keeps_serving(pg_dsn: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with switch_process(data_dir, pg_dsn, extra_env=SETTINGS) as switch:
        host, port = switch.address
        rng = random.Random(11)
        idle: list[trio.SocketStream] = []
        refused: list[bytes] = []
        served: list[str] = []

        async def idle_sockets() -> None:
            for _ in range(150):
                idle.append(await trio.open_tcp_stream(host, port))
                await trio.sleep(0.005)

        async def junk(count: int) -> None:
            for _ in range(count):
                with trio.move_on_after(2):
                    stream = await trio.open_tcp_stream(host, port)
                    payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
                    kind = rng.randrange(3)
                    if kind == 1:
                        payload = struct.pack(">H", 65000) + payload  # oversize length
                    elif kind == 2:
                        payload = payload[:1]  # half a length prefix, then stall
                    try:
                        await stream.send_all(payload)
                    except trio.BrokenResourceError:
                        pass
                    await stream.aclose()

        async def before_sign_on(count: int) -> None:
            for stan in range(1, count + 1):
                stream = await trio.open_tcp_stream(host, port)
                fields = {**WITHDRAWAL_FIELDS, "7": "0615103000", "11": f"{stan:06d}",
                          "41": TERMINAL, "64": "0" * 16}
                await stream.send_all(encode_frame(encode_message("0200", fields)))
                with trio.move_on_after(5):
                    header = await stream.receive_some(2)
                    body = await stream.receive_some(struct.unpack(">H", header)[0])
                    refused.append(body)
                await stream.aclose()

        async def terminal() -> None:
            for _ in range(5):
                async with open_host_connection(host, port, terminal_id=TERMINAL) as link:
                    served.append((await link.sign_on()).response_code or "")
                    served.append((await link.echo()).response_code or "")
                await trio.sleep(0.3)

        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(idle_sockets)
                nursery.start_soon(junk, 200)
                nursery.start_soon(before_sign_on, 20)
                nursery.start_soon(terminal)
        assert switch.process.returncode is None  # alive
        assert served == ["00"] * 10  # the terminal was never locked out
        assert len(refused) == 20
        for body in refused:  # spec 10: 58 without a MAC, no key used
            answer = decode_message(body)
            assert (answer.mti, answer.response_code, answer.mac) == ("0210", "58", None)
        # Every idle socket is closed by the cap or the 2 s sign-on deadline.
        closed = [await closed_by_server(stream, 5.0) for stream in idle]
        assert all(closed)
        async with open_host_connection(host, port, terminal_id=TERMINAL) as link:
            assert (await link.sign_on()).response_code == "00"
            assert (await link.echo()).response_code == "00"
        assert switch.process.returncode is None
