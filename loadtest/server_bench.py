"""CPU per request of the switch's connection handling alone: ``SwitchServer`` over real
loopback TCP with a handler that answers at once, against the bare echo loop of
``loadtest.echo_server`` on the same sockets and the same client, in one process.

``python -m loadtest.server_bench --json``: C connections (default 200), each in closed loop
with one 0800 echo outstanding, for S seconds per variant, variants in alternation (A B A B).
The handler answers with the echo server's own reply, so the difference between the two
variants is what ``switch/server.py`` costs per request: frame decode, the per-request
machinery (tasks, deadlines, in-flight accounting), metrics and the writer. Reported as
microseconds of this process's CPU per request (client included, equal in both).

On a busy machine CPU time per request is noisy; instructions are not:
``perf stat -e instructions:u python -m loadtest.server_bench --only switch_server`` and
divide by the ``requests`` it prints (the start-up instructions are the same for both).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import trio

from loadtest.echo_server import echo_response
from loadtest.echo_server import serve as serve_echo
from loadtest.wire import encode_message, frame, take_frames
from ops.metrics import SwitchMetrics
from switch.config import ServerConfig
from switch.protocol.message import Message
from switch.server import SwitchServer
from switch.session import Session, SessionRegistry

ECHO_FIELDS = {7: b"1207120000", 11: b"000001", 41: b"ATM00001", 70: b"301"}


class AnswerAtOnce:
    """A dispatcher stand-in: the echo server's reply, the session signed on."""

    async def handle(self, request: Message, raw: bytes, session: Session) -> bytes | None:
        session.signed_on = True
        return echo_response(raw)

    async def fallback_response(
        self, request: Message, session: Session, response_code: str
    ) -> bytes | None:
        return None


async def _client(host: str, port: int, stop_at: float, counts: list[int]) -> None:
    stream = await trio.open_tcp_stream(host, port)
    request = frame(encode_message(b"0800", ECHO_FIELDS))
    buffer = bytearray()
    try:
        while trio.current_time() < stop_at:
            await stream.send_all(request)
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
                if list(take_frames(buffer)):
                    break
            counts[0] += 1
    finally:
        await trio.aclose_forcefully(stream)


async def _drive(host: str, port: int, connections: int, seconds: float) -> dict[str, float]:
    counts = [0]
    started_cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    stop_at = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(_client, host, port, stop_at, counts)
    elapsed = time.perf_counter() - started
    ended_cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ended_cpu.ru_utime - started_cpu.ru_utime) + (ended_cpu.ru_stime - started_cpu.ru_stime)
    return {"requests": counts[0], "requests_per_s": counts[0] / elapsed,
            "cpu_us_per_request": 1e6 * cpu / counts[0]}  # fmt: skip


async def _run_switch(connections: int, seconds: float) -> dict[str, float]:
    config = ServerConfig(host="127.0.0.1", port=0, sign_on_deadline_s=3600.0,
                          not_signed_on_max=connections + 1,
                          not_signed_on_per_address_max=connections + 1,
                          connections_max=connections + 1)  # fmt: skip
    server = SwitchServer(config, AnswerAtOnce(), SwitchMetrics(), SessionRegistry())
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(server.run)
        host, port = addresses[0]
        result = await _drive(host, port, connections, seconds)
        server.request_shutdown()
    return result


async def _run_echo(connections: int, seconds: float) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_echo, "127.0.0.1", 0)
        result = await _drive("127.0.0.1", port, connections, seconds)
        nursery.cancel_scope.cancel()
    return result


async def _main(connections: int, seconds: float, rounds: int, only: str | None
                ) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"echo": [], "switch_server": []}
    for _ in range(rounds):
        if only != "switch_server":
            runs["echo"].append(await _run_echo(connections, seconds))
        if only != "echo":
            runs["switch_server"].append(await _run_switch(connections, seconds))
    if only is not None:
        return {"connections": connections, "seconds": seconds, "runs": runs,
                "requests": sum(r["requests"] for r in runs[only])}  # fmt: skip
    best = {name: min(r["cpu_us_per_request"] for r in results) for name, results in runs.items()}
    return {
        "connections": connections,
        "seconds": seconds,
        "runs": runs,
        "cpu_us_per_request": best,
        "server_overhead_us_per_request": best["switch_server"] - best["echo"],
        "ratio_requests_per_s": (
            max(r["requests_per_s"] for r in runs["switch_server"])
            / max(r["requests_per_s"] for r in runs["echo"])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.server_bench", description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("echo", "switch_server"), default=None,
                        help="run one variant (e.g. under `perf stat -e instructions`)")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    if arguments.connections < 1 or arguments.seconds <= 0 or arguments.rounds < 1:
        parser.error("--connections, --seconds and --rounds must be positive")
    result = trio.run(_main, arguments.connections, arguments.seconds, arguments.rounds,
                      arguments.only)
    if arguments.json or arguments.only:
        print(json.dumps(result))
    else:
        for name, value in result["cpu_us_per_request"].items():
            print(f"{name}: {value:.1f} us of CPU per request")
        print(f"server overhead: {result['server_overhead_us_per_request']:.1f} us per request")


if __name__ == "__main__":
    main()
