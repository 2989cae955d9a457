"""``atm-switch serve --workers N``: real processes sharing one port with SO_REUSEPORT.

One ``listening`` line with the real port for ``--port 0``; connections spread over the
workers; a SIGKILLed worker is replaced and the port keeps serving; SIGTERM drains and the
supervisor exits 0 leaving no worker behind.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
import trio

from switch.supervisor import reuseport_socket
from tests.authorization.harness import CARD_MAIN, CARD_SECOND, FIXTURE, connect_atm
from tests.e2e.processes import prepare
from tests.scale.processes import serve_process

pytestmark = pytest.mark.slow


def listening_pids(port: int) -> set[int]:
    """Processes with a listening TCP socket on ``port``."""
    return {c.pid for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}


def serving_pid(port: int, client_port: int) -> int | None:
    """The process holding the server side of the connection from ``client_port``."""
    for c in psutil.net_connections("tcp"):
        if c.laddr and c.raddr and c.laddr.port == port and c.raddr.port == client_port:
            return c.pid
    return None


async def test_workers_share_port_restart_and_drain(pg_dsn: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with serve_process(data_dir, pg_dsn, workers=2) as serve:
        port = serve.address[1]
        assert port != 0
        workers = {p.pid for p in serve.children()}
        assert len(workers) == 2
        with trio.fail_after(10):
            while listening_pids(port) != workers:  # the supervisor itself never listens
                await trio.sleep(0.1)

        # The kernel spreads connections over both workers' sockets.
        streams = [await trio.open_tcp_stream(*serve.address) for _ in range(24)]
        owners = {serving_pid(port, s.socket.getsockname()[1]) for s in streams}
        assert owners == workers
        for stream in streams:
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            atm = await connect_atm(nursery, serve.address, "ATM001")
            response, _ = await atm.withdraw(CARD_MAIN, 10_000)
            assert response.fields["39"] == "00"

            # A worker killed with SIGKILL is replaced; the port keeps listening throughout.
            victim = sorted(workers)[0]
            psutil.Process(victim).kill()
            with trio.fail_after(30):
                while True:
                    now = listening_pids(port)
                    if len(now) == 2 and victim not in now:
                        break
                    await trio.sleep(0.1)
            assert {p.pid for p in serve.children()} == now
            again = await connect_atm(nursery, serve.address, "ATM002")
            response, _ = await again.withdraw(CARD_SECOND, 10_000, pin="4321")
            assert response.fields["39"] == "00"
            nursery.cancel_scope.cancel()

        children = serve.children()
        serve.terminate()
        with trio.fail_after(30):
            code = await serve.process.wait()
        assert code == 0
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children)
        assert b"".join(serve.stdout_rest).strip() == b""  # "listening" was printed once only


def test_reserved_socket_takes_no_connections() -> None:
    """A bound SO_REUSEPORT socket that does not listen refuses connections (so the
    supervisor's port reservation never swallows a terminal's connection)."""
    import socket

    reserved = reuseport_socket("127.0.0.1", 0)
    try:
        port = reserved.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        worker = reuseport_socket("127.0.0.1", port)  # the same port binds again
        worker.listen(8)
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        worker.close()
    finally:
        reserved.close()


def test_supervisor_fails_fast_when_workers_cannot_start(tmp_path: Path) -> None:
    """A worker that exits before listening (here: no PostgreSQL) is a configuration error:
    the supervisor exits non-zero with one clear line instead of restarting forever."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(tmp_path),
         "--dsn", "postgresql://postgres@127.0.0.1:1/none", "--port", "0",
         "--metrics-port", "0", "--workers", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert "listening" not in done.stdout
    assert "atm-switch: error: worker 0 exited with 2 before listening" in done.stderr


async def test_workers_drain_when_the_supervisor_is_killed(pg_dsn: str, tmp_path: Path) -> None:
    """SIGKILL of the supervisor: its workers notice (parent gone) and exit by themselves."""
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, FIXTURE)
    async with serve_process(data_dir, pg_dsn, workers=2) as serve:
        workers = serve.children()
        assert len(workers) == 2
        serve.kill()
        await serve.process.wait()
        with trio.fail_after(20):
            while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
                await trio.sleep(0.1)
        assert listening_pids(serve.address[1]) == set()
