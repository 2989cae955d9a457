"""deploy/haproxy/haproxy.cfg with the real HAProxy (Debian ``haproxy``) in front of three real
``atm-switch serve`` nodes on one PostgreSQL. ATMs connect only through HAProxy. Under load
one node is SIGKILLed and another is drained with SIGTERM: terminals reconnect through
HAProxy to the survivor, reverse what got no answer, and the money adds up exactly."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import trio

from loadtest.drill import DrillAtm, audit
from loadtest.population import account_balance_minor, fixtures, terminal
from switch.db.runtime import open_database
from tests.e2e.processes import prepare
from tests.scale.processes import ServeProcess, free_port, serve_process

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
ATMS = 9


def haproxy_binary() -> str:
    path = shutil.which("haproxy")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is not installed (.ci/run installs Debian's haproxy)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return path


def admin(socket_path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(socket_path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def server_states(socket_path: Path) -> dict[str, str]:
    """``show stat``: each server of the atm_switch backend and its status (UP, DOWN, ...)."""
    lines = admin(socket_path, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {r["svname"]: r["status"].split(" ")[0] for r in rows
            if r.get("pxname") == "atm_switch" and r["svname"] not in ("BACKEND", "FRONTEND")}


@contextlib.asynccontextmanager
async def haproxy(nodes: Sequence[ServeProcess], workdir: Path
                  ) -> AsyncIterator[tuple[tuple[str, int], Path]]:
    port = free_port()
    admin_socket = workdir / "haproxy.sock"
    env = dict(os.environ, ATM_LB_BIND=f"127.0.0.1:{port}", ATM_LB_ADMIN_SOCKET=str(admin_socket),
               ATM_LB_MAXCONN="2000")
    for index, node in enumerate(nodes, start=1):
        env[f"ATM_NODE{index}"] = f"{node.address[0]}:{node.address[1]}"
        env[f"ATM_NODE{index}_OPS_PORT"] = str(node.metrics_port)
    process = await trio.lowlevel.open_process(
        [haproxy_binary(), "-db", "-f", str(CONFIG)], env=env,
        stdout=(workdir / "haproxy.log").open("ab"), stderr=subprocess.STDOUT,
    )
    try:
        with trio.fail_after(30):
            while not admin_socket.exists() or set(server_states(admin_socket).values()) != {"UP"}:
                assert process.returncode is None, (workdir / "haproxy.log").read_text()
                await trio.sleep(0.2)
        yield ("127.0.0.1", port), admin_socket
    finally:
        with trio.CancelScope(shield=True):
            process.kill()
            await process.wait()


async def test_node_killed_and_drained_behind_haproxy(pg_dsn: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await trio.to_thread.run_sync(prepare, data_dir, pg_dsn, fixtures(ATMS))
    async with contextlib.AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(serve_process(
            data_dir, pg_dsn, log_name=f"serve{i}.log")) for i in range(3)]
        address, admin_socket = await stack.enter_async_context(haproxy(nodes, tmp_path))
        atms = [DrillAtm(terminal(i, ATMS), lambda: [address], seed=i) for i in range(ATMS)]
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for atm in atms:
                nursery.start_soon(atm.run, stop)
            await trio.sleep(3)
            assert all(atm.connects == 1 for atm in atms)
            nodes[0].kill()
            killed_at = trio.current_time()
            await trio.sleep(3)
            nodes[1].terminate()  # graceful: /readyz 503 at once, in-flight finished, closed
            drained_at = trio.current_time()
            with trio.fail_after(20):
                while nodes[1].process.returncode is None:
                    await trio.sleep(0.1)
            await trio.sleep(3)
            stop.set()
        states = server_states(admin_socket)
        assert states["node1"] != "UP" and states["node2"] != "UP" and states["node3"] == "UP"

    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=2) as db:
        result = await audit(db, atms, initial_balance=account_balance_minor, kill_at=killed_at)
    records = [r for atm in atms for r in atm.records]
    after_drain = [r for r in records if r.acknowledged and r.sent_at > drained_at + 1]
    detail = json.dumps(result)
    assert result["acknowledged"] > 30, detail
    assert result["lost_acknowledged"] == 0, detail
    assert result["duplicated"] == 0, detail
    assert result["held_at_end"] == 0, detail
    assert result["unsettled"] == 0, detail
    assert result["money_exact"], detail
    assert result["reconnects"] >= 2, detail  # terminals of two nodes moved
    assert after_drain, detail  # the survivor served them all
    assert nodes[1].process.returncode == 0  # drained and exited cleanly
