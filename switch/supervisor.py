"""``serve --workers N``: N switch processes on one port, kept alive by a supervisor.

Why processes: one Trio process uses one core (HSM work and message codecs are
CPU-bound Python), and the switch keeps no durable state in memory, so N
independent workers on one PostgreSQL are N nodes that happen to share a host.

How they share the port: every worker opens its own listening socket with
``SO_REUSEPORT`` on the same address, and the kernel spreads new connections
over the listening sockets by a hash of the connection's addresses.
``trio.open_tcp_listeners`` does not set that option, so the socket is built
here. The supervisor binds (but never listens on) one such socket first: that
reserves the port, and with ``--port 0`` it is how the real port is learned
before any worker starts. A bound socket that does not listen takes no
connections, so it never steals any from the workers.

The supervisor itself serves no traffic. It starts the workers (``atm-switch
serve`` child processes with ``--reuse-port``), prints ``listening HOST:PORT``
once when all of them listen (spec 9), restarts a worker that dies (with a
growing delay while it keeps dying), and on SIGTERM/SIGINT forwards the signal
so each worker drains, then waits for them (a second signal is forwarded too:
the workers then stop at once). A worker's connections die with it; the
terminals reconnect (to a surviving worker) and reverse what got no answer. A
worker whose supervisor is gone (SIGKILL) notices within a second and drains.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Final

import trio

from switch.db.runtime import single_exception

log = logging.getLogger("atm.supervisor")

LISTEN_BACKLOG: Final = 4096
# A new worker must print "listening HOST:PORT" within this time.
WORKER_STARTUP_TIMEOUT_S: Final = 120.0
# Restart delay: doubles from the first to the last value while a worker keeps dying young.
RESTART_DELAY_FIRST_S: Final = 0.2
RESTART_DELAY_MAX_S: Final = 10.0
# A worker that ran at least this long counts as healthy: its next restart is immediate-ish.
HEALTHY_RUN_S: Final = 30.0


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening yet)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def reuseport_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """The worker's listener: its own ``SO_REUSEPORT`` socket on the shared port."""
    sock = reuseport_socket(host, port)
    try:
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        return [trio.SocketListener(trio.socket.from_stdlib_socket(sock))]
    except BaseException:
        sock.close()
        raise


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class WorkerStartFailed(RuntimeError):
    """A first-generation worker exited (or hung) before it listened."""


@dataclasses.dataclass
class _Worker:
    index: int
    process: trio.Process | None = None
    generation: int = 0


class Supervisor:
    """Runs ``workers`` children built by ``command(index)`` and keeps them running."""

    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        workers: int,
        *,
        announce: Callable[[], None],
        stop_timeout_s: float = 30.0,
        startup_timeout_s: float = WORKER_STARTUP_TIMEOUT_S,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.command = command
        # The workers' environment (None: ours); carries what must not be on argv (the DSN).
        self.environment = None if environment is None else dict(environment)
        self.workers = [_Worker(index) for index in range(workers)]
        self.announce = announce
        self.stop_timeout_s = stop_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.restarts = 0
        self._stopping = False

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process and w.process.returncode is None]

    async def run(self) -> None:
        """Start every worker, announce, supervise until a signal has drained them all.

        A first-generation worker that never listens raises :class:`WorkerStartFailed`
        (unwrapped from the nursery's exception group).
        """
        try:
            await self._run()
        except BaseExceptionGroup as group:
            leaf = single_exception(group)
            if leaf is None:
                raise
            raise leaf from None

    async def _run(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._on_signals, signals, nursery.cancel_scope)
                async with trio.open_nursery() as workers:
                    for worker in self.workers:
                        await workers.start(self._keep, worker)
                    if not self._stopping:
                        self.announce()
                nursery.cancel_scope.cancel()

    async def _keep(self, worker: _Worker, task_status: trio.TaskStatus[None]) -> None:
        delay = RESTART_DELAY_FIRST_S
        listened = False

        def on_listening() -> None:
            nonlocal listened
            if not listened:
                listened = True
                task_status.started()

        while not self._stopping:
            started_at = trio.current_time()
            try:
                await self._run_once(worker, on_listening)
            except WorkerStartFailed:
                if not listened and not self._stopping:
                    raise  # the first start fails: a configuration error, not a crash
            if self._stopping:
                break
            ran = trio.current_time() - started_at
            if ran >= HEALTHY_RUN_S:
                delay = RESTART_DELAY_FIRST_S
            self.restarts += 1
            log.warning(
                "worker exited; restarting",
                extra={"reason": f"worker {worker.index} ran {ran:.1f}s; restart in {delay:.1f}s"},
            )
            await trio.sleep(delay)
            delay = min(delay * 2, RESTART_DELAY_MAX_S)
        on_listening()  # stopped before this worker ever listened: let run() go on

    async def _run_once(self, worker: _Worker, on_listening: Callable[[], None]) -> None:
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which forwards it
        # once (a worker receiving it twice would skip draining).
        process = await trio.lowlevel.open_process(
            list(self.command(worker.index)), stdout=subprocess.PIPE, start_new_session=True,
            env=self.environment,
        )
        worker.process = process
        worker.generation += 1
        try:
            assert process.stdout is not None
            line = await self._listening_line(process.stdout)
            if line is None:
                await process.wait()
                raise WorkerStartFailed(
                    f"worker {worker.index} exited with {process.returncode} before listening"
                )
            log.info(
                "worker listening", extra={"reason": f"worker {worker.index} pid {process.pid}"}
            )
            on_listening()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_discard, process.stdout)
                await process.wait()
        finally:
            if process.returncode is None:
                with trio.CancelScope(shield=True):
                    process.kill()
                    await process.wait()
        log.info(
            "worker exited",
            extra={"reason": f"worker {worker.index} exit status {process.returncode}"},
        )

    async def _listening_line(self, stdout: trio.abc.ReceiveStream) -> str | None:
        buffer = b""
        with trio.move_on_after(self.startup_timeout_s):
            while b"\n" not in buffer:
                chunk = await stdout.receive_some(4096)
                if not chunk:
                    return None
                buffer += chunk
            line = buffer.split(b"\n", 1)[0].decode(errors="replace")
            return line if line.startswith("listening ") else None
        return None

    async def _on_signals(self, signals: AsyncIterator[int],
                          everything: trio.CancelScope) -> None:
        received = 0
        async for signum in signals:
            received += 1
            self._stopping = True
            log.info("supervisor: forwarding signal", extra={"signal": signal.Signals(signum).name})
            for worker in self.workers:
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.send_signal(signum)
            if received == 1:
                everything.deadline = trio.current_time() + self.stop_timeout_s


async def _discard(stream: trio.abc.ReceiveStream) -> None:
    """Keep reading a worker's stdout so it can never block on a full pipe."""
    while await stream.receive_some(4096):
        pass
