"""The switch under test as a real process, and its terminals.

The switch is ``atm-switch serve`` (a child process, as an operator runs it) on the history's
own database and data directory, with its DSN pointing at the fault proxy. **Killing** it is
``SIGKILL`` at any instant the history chooses: whatever the process had not committed is
rolled back by PostgreSQL, a reply in flight is lost, the in-memory state (caches, batches
being gathered) is gone, and only what it wrote to disk stays (the void journal in its data
directory). Its proxy front is severed afterwards, so nothing of the dead instance lingers in
the proxy. A fresh process then starts on the same database and data directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import trio

from terminals.hostlink.connection import HostLinkError
from terminals.hostlink.keys import KeyExchangeError
from tests.authorization.harness import Atm, connect_atm
from tests.simulate.pg_proxy import Front, PgProxy

log = logging.getLogger(__name__)

start_attempts_max = 40  # PostgreSQL restarting: the process is started again this many times
startup_timeout_s = 60.0  # "listening HOST:PORT" must be printed within this (spec 9)
network_stan_first = 900_000  # sign-on/key exchange STANs, apart from the financial ones


@dataclass(frozen=True, slots=True)
class NodeConfig:
    deadline_s: float = 1.0
    hold_expiry_s: int = 3
    sweep_interval_s: float = 0.3
    terminal_timeout_s: float = 6.0

    def environment(self) -> dict[str, str]:
        """The switch's configuration, as ``ATM_SWITCH_<SECTION>_<KEY>`` variables."""
        return {
            "ATM_SWITCH_SERVER_REQUEST_DEADLINE_S": str(self.deadline_s),
            "ATM_SWITCH_AUTHORIZATION_HOLD_EXPIRY_S": str(self.hold_expiry_s),
            "ATM_SWITCH_AUTHORIZATION_SWEEP_INTERVAL_S": str(self.sweep_interval_s),
            "ATM_SWITCH_OPS_LOG_LEVEL": "WARNING",
        }


class SwitchNode:
    """Start, SIGKILL and restart ``atm-switch serve``; ``address`` is where terminals connect."""

    def __init__(self, proxy: PgProxy, database: str, data_dir: Path, config: NodeConfig,
                 nursery: trio.Nursery) -> None:
        self.proxy = proxy
        self.database = database
        self.data_dir = data_dir
        self.config = config
        self.nursery = nursery
        self.address: tuple[str, int] | None = None
        self.generation = 0
        self._front: Front | None = None
        self._process: trio.Process | None = None

    async def start(self) -> None:
        for _attempt in range(start_attempts_max):
            front = await self.proxy.open_front(self.nursery)
            try:
                process, address = await self._spawn(front)
            except (RuntimeError, trio.TooSlowError) as exc:  # PostgreSQL restarting
                log.info("switch start failed (%s), retrying", exc)
                await self.proxy.sever(front)
                await trio.sleep(0.5)
                continue
            self._front, self._process, self.address = front, process, address
            self.generation += 1
            return
        raise RuntimeError("the switch did not start")

    async def _spawn(self, front: Front) -> tuple[trio.Process, tuple[str, int]]:
        log_file = (self.data_dir / "serve.log").open("ab")
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(self.data_dir),
             "--dsn", front.dsn(self.database), "--port", "0", "--metrics-port", "0"],
            stdout=subprocess.PIPE, stderr=log_file,
            env=dict(os.environ, **self.config.environment()))
        log_file.close()
        try:
            return process, await _listening(process)
        except BaseException:
            process.send_signal(signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await process.wait()
            raise

    async def kill(self) -> None:
        """SIGKILL the process, then drop whatever of it is left in the proxy."""
        process, self._process = self._process, None
        front, self._front = self._front, None
        self.address = None
        if process is not None:
            process.send_signal(signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await process.wait()
        if front is not None:
            await self.proxy.sever(front)

    async def restart(self) -> None:
        await self.kill()
        await self.start()


async def _listening(process: trio.Process) -> tuple[str, int]:
    """Wait for the child's ``listening HOST:PORT`` line."""
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(startup_timeout_s):
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some(1024)
            if not chunk:
                raise RuntimeError(f"atm-switch serve exited ({await process.wait()})")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith("listening "):
        raise RuntimeError(f"atm-switch serve printed {line!r}")
    host, port = line.split(" ", 1)[1].rsplit(":", 1)
    return host, int(port)


class Terminal:
    """One ATM: reconnects (sign-on, keys kept) when its connection dropped."""

    def __init__(self, terminal_id: str, timeout_s: float) -> None:
        self.terminal_id = terminal_id
        self.timeout_s = timeout_s
        self.atm: Atm | None = None
        self.stan = 0
        self.connections = 0
        self._lock = trio.Lock()

    def next_stan(self) -> str:
        self.stan = self.stan % 899_999 + 1
        return f"{self.stan:06d}"

    async def connected(self, node: SwitchNode, nursery: trio.Nursery) -> Atm | None:
        async with self._lock:
            if self.atm is not None and not self.atm.link.closed:
                return self.atm
            if node.address is None:
                return None
            keys = self.atm.keys if self.atm is not None else None
            try:
                with trio.fail_after(self.timeout_s):
                    atm = await connect_atm(
                        nursery, node.address, self.terminal_id, key_exchange=keys is None,
                        keys=keys, first_stan=network_stan_first + 10 * self.connections)
            except (HostLinkError, KeyExchangeError, OSError, trio.TooSlowError,
                    AssertionError) as exc:  # e.g. a key exchange answered 91: not connected
                log.info("terminal %s could not connect: %s", self.terminal_id, exc)
                return None
            self.connections += 1
            atm.link.response_timeout_s = self.timeout_s
            self.atm = atm
            return atm

    async def cut(self) -> None:
        """The terminal's line drops (an answer in flight is lost); the next send reconnects."""
        if self.atm is not None:
            with contextlib.suppress(Exception):
                await self.atm.aclose()

    async def close(self) -> None:
        await self.cut()
