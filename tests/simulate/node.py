"""The switch under test and its terminals.

The switch runs in-process (``tests.authorization.harness.running_switch``: the real server,
HSM, PostgreSQL ledger and authorization, sweeper on) with its DSN pointing at the fault
proxy. **Killing** it is in-process: its proxy front is severed first, so every database
connection drops at that instant (PostgreSQL rolls back whatever was uncommitted, a reply in
flight is lost) and nothing the dying instance does afterwards can reach the database; then its
tasks are cancelled (terminal connections drop). That is what SIGKILL does to a process, as
seen from PostgreSQL and the terminals, and it costs milliseconds instead of a process start.
A fresh instance then starts on the same database with nothing carried over (caches, the
in-memory lists of the old one are gone).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import trio

from switch.config import AuthorizationConfig
from terminals.hostlink.connection import HostLinkError
from tests.authorization.harness import Atm, RunningSwitch, connect_atm, running_switch
from tests.simulate.pg_proxy import Front, PgProxy
from tests.simulate.world import fixture

log = logging.getLogger(__name__)

_NO_FIXTURE: dict[str, Any] = {"accounts": [], "cards": [], "terminals": []}
start_attempts_max = 60  # PostgreSQL restarting: the instance is retried this many times
network_stan_first = 900_000  # sign-on/key exchange STANs, apart from the financial ones


@dataclass(frozen=True, slots=True)
class NodeConfig:
    deadline_s: float = 1.0
    hold_expiry_s: int = 3
    sweep_interval_s: float = 0.3
    terminal_timeout_s: float = 6.0


class SwitchNode:
    """Start, kill and restart the switch; ``address`` is where terminals connect."""

    def __init__(self, proxy: PgProxy, database: str, config: NodeConfig,
                 nursery: trio.Nursery) -> None:
        self.proxy = proxy
        self.database = database
        self.config = config
        self.nursery = nursery
        self.address: tuple[str, int] | None = None
        self.switch: RunningSwitch | None = None
        self.generation = 0
        self._front: Front | None = None
        self._scope: trio.CancelScope | None = None
        self._stopped = trio.Event()

    def _authorization_config(self) -> AuthorizationConfig:
        return AuthorizationConfig(hold_expiry_s=self.config.hold_expiry_s,
                                   sweep_interval_s=self.config.sweep_interval_s)

    async def start(self) -> None:
        for _attempt in range(start_attempts_max):
            front = await self.proxy.open_front(self.nursery)
            try:
                self.switch = await self.nursery.start(self._host, front)
            except Exception as exc:  # PostgreSQL restarting: try again shortly
                log.info("switch start failed (%s), retrying", type(exc).__name__)
                await self.proxy.sever(front)
                await trio.sleep(0.5)
                continue
            self._front = front
            self.address = self.switch.address
            self.generation += 1
            return
        raise RuntimeError("the switch did not start")

    async def _host(self, front: Front, *, task_status: trio.TaskStatus[RunningSwitch]
                    ) -> None:
        stopped = self._stopped = trio.Event()
        started = False
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with running_switch(
                        front.dsn(self.database),
                        fixture=fixture() if self.generation == 0 else _NO_FIXTURE,
                        config=self._authorization_config(), deadline_s=self.config.deadline_s,
                        sweeper=True) as switch:
                    task_status.started(switch)
                    started = True
                    await trio.sleep_forever()
        except Exception:
            if not started:
                raise
            log.info("a killed switch instance ended with an error (ignored)", exc_info=True)
        finally:
            stopped.set()

    async def kill(self) -> None:
        """Sever the database first, then cancel everything of this instance."""
        if self._front is None:
            return
        front, self._front = self._front, None
        await self.proxy.sever(front)
        if self._scope is not None:
            self._scope.cancel()
        with trio.move_on_after(10):
            await self._stopped.wait()
        self.address = None
        self.switch = None

    async def restart(self) -> None:
        await self.kill()
        await self.start()


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
            except (HostLinkError, OSError, trio.TooSlowError, AssertionError) as exc:
                log.info("terminal %s could not connect: %s", self.terminal_id, exc)
                return None
            self.connections += 1
            atm.link.response_timeout_s = self.timeout_s
            self.atm = atm
            return atm

    async def close(self) -> None:
        if self.atm is not None:
            with contextlib.suppress(Exception):
                await self.atm.aclose()
