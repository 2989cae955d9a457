"""Echo round trips per second through the real switch over TCP (0800/301 -> 0810/00).

    python -m loadtest.echo_bench [--connections 100] [--depth 8] [--seconds 10] [--dsn DSN]

Starts ``atm-switch serve`` as a separate process (on an embedded PostgreSQL in a
temporary directory unless ``--dsn`` is given), registers the terminals, signs
each connection on, then keeps ``--depth`` echoes outstanding per connection for
``--seconds`` and prints round trips per second and latency percentiles as JSON.

The client is deliberately cheap (pre-encoded frames, the STAN read at a fixed
offset, no decoding) so the switch process, not the client, is what is measured.
It is a closed loop: use ``loadtest`` for open-loop, coordinated-omission-safe runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import trio

from switch.db.embedded import embedded_postgres
from switch.db.runtime import open_database

# 0810 layout: MTI 4 + bitmaps 32 + field 7 (10), then field 11 (6).
STAN_OFFSET: Final = 4 + 32 + 10
ECHO_TEMPLATE: Final = "0800822000000080000004000000000000000101000000{stan:06d}{terminal}301"
SIGN_ON_TEMPLATE: Final = "0800822000000080000004000000000000000101000000000000{terminal}001"


def frame(text: str) -> bytes:
    payload = text.encode("ascii")
    return len(payload).to_bytes(2, "big") + payload


class EchoClient:
    """One terminal connection keeping ``depth`` echoes in flight."""

    def __init__(self, terminal: str, depth: int, latencies: list[float]) -> None:
        self.terminal = terminal
        self.depth = depth
        self.latencies = latencies
        self.completed = 0
        self._sent_at: dict[bytes, float] = {}
        self._stan = 0

    def _next_echo(self) -> bytes:
        self._stan = self._stan % 999_999 + 1
        stan = f"{self._stan:06d}".encode()
        self._sent_at[stan] = trio.current_time()
        return frame(ECHO_TEMPLATE.format(stan=self._stan, terminal=self.terminal))

    async def run(self, host: str, port: int, stop: trio.Event, measuring: trio.Event) -> None:
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(frame(SIGN_ON_TEMPLATE.format(terminal=self.terminal)))
            buffer = await self._read_frames(stream, b"", 1, counting=False)
            await stream.send_all(b"".join(self._next_echo() for _ in range(self.depth)))
            while not stop.is_set():
                buffer = await self._read_frames(stream, buffer, 1, counting=measuring.is_set())
                await stream.send_all(self._next_echo())

    async def _read_frames(
        self, stream: trio.SocketStream, buffer: bytes, count: int, *, counting: bool
    ) -> bytes:
        got = 0
        while got < count:
            while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                size = int.from_bytes(buffer[:2], "big")
                payload, buffer = buffer[2 : 2 + size], buffer[2 + size :]
                sent = self._sent_at.pop(payload[STAN_OFFSET : STAN_OFFSET + 6], None)
                if counting and sent is not None:
                    self.completed += 1
                    self.latencies.append(trio.current_time() - sent)
                got += 1
            if got >= count:
                break
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("switch closed the connection")
            buffer += chunk
        return buffer


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to report CPU cost per echo."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    host: str,
    port: int,
    connections: int,
    depth: int,
    seconds: float,
    warmup_s: float,
    server_pid: int = 0,
) -> dict[str, float]:
    latencies: list[float] = []
    clients = [EchoClient(f"E{n:07d}", depth, latencies) for n in range(connections)]
    stop, measuring = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        for client in clients:
            nursery.start_soon(client.run, host, port, stop, measuring)
        await trio.sleep(warmup_s)
        measuring.set()
        started = trio.current_time()
        cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
        await trio.sleep(seconds)
        elapsed = trio.current_time() - started
        server_cpu = cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
        stop.set()
        nursery.cancel_scope.deadline = trio.current_time() + 2
    latencies.sort()
    completed = sum(c.completed for c in clients)

    def percentile(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)
            if latencies
            else 0.0
        )

    return {
        "echo_round_trips_per_s": round(completed / elapsed, 1),
        "completed": completed,
        "seconds": round(elapsed, 2),
        "connections": connections,
        "depth": depth,
        "latency_ms_p50": percentile(0.50),
        "latency_ms_p99": percentile(0.99),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_echo": round(server_cpu / completed * 1e6, 1) if completed else 0.0,
        "server_echoes_per_cpu_s": round(completed / server_cpu, 1) if server_cpu else 0.0,
    }


async def register_terminals(dsn: str, connections: int) -> None:
    async with open_database(dsn, pool_size_min=1, pool_size_max=1, call_timeout_s=60) as db:
        from switch.db.migrate import migrate

        await migrate(db)
        await db.execute(
            "INSERT INTO terminals (terminal_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            [f"E{n:07d}" for n in range(connections)],
        )


@contextlib.contextmanager
def switch_process(dsn: str, data_dir: Path) -> Iterator[tuple[str, int, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "switch.cli", "serve", "--dsn", dsn, "--data-dir", str(data_dir),
         "--port", "0", "--metrics-port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"switch did not start: {line!r}")
        host, port = line.split()[1].rsplit(":", 1)
        yield host, int(port), process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument(
        "--depth", type=int, default=8, help="echoes outstanding per connection (spec max 8)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--dsn", default=None, help="PostgreSQL DSN (default: embedded, temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp, contextlib.ExitStack() as stack:
        dsn = args.dsn or stack.enter_context(embedded_postgres(Path(tmp), cleanup="delete"))
        trio.run(register_terminals, dsn, args.connections)
        host, port, pid = stack.enter_context(switch_process(dsn, Path(tmp)))
        result = trio.run(
            drive, host, port, args.connections, args.depth, args.seconds, args.warmup, pid
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
