"""Scale-out tests run the real thing: ``atm-switch serve`` child processes (one or several
workers), a real PostgreSQL, real TCP. This module starts and stops those processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import psutil
import trio

startup_timeout_s = 90.0


class ServeProcess:
    """A running ``atm-switch serve`` (a single node, or a supervisor with its workers)."""

    def __init__(self, process: trio.Process, address: tuple[str, int], metrics_port: int,
                 stdout_rest: list[bytes]) -> None:
        self.process = process
        self.address = address
        self.metrics_port = metrics_port
        self.stdout_rest = stdout_rest

    def children(self) -> list[psutil.Process]:
        """The worker processes (for a supervisor); empty for a single node."""
        return psutil.Process(self.process.pid).children()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _read_line(stream: trio.abc.ReceiveStream, log: Path) -> tuple[str, bytes]:
    buffer = b""
    with trio.fail_after(startup_timeout_s):
        while b"\n" not in buffer:
            chunk = await stream.receive_some(1024)
            if not chunk:
                raise RuntimeError(
                    f"atm-switch serve exited before listening; its log ends:\n{_log_tail(log)}"
                )
            buffer += chunk
    line, rest = buffer.split(b"\n", 1)
    return line.decode(), rest


@contextlib.asynccontextmanager
async def serve_process(
    data_dir: Path, dsn: str, *, workers: int = 1, port: int = 0, metrics_port: int | None = None,
    extra_args: Sequence[str] = (), extra_env: Mapping[str, str] | None = None,
    log_name: str = "serve.log",
) -> AsyncIterator[ServeProcess]:
    """Start ``atm-switch serve`` and wait for its one ``listening HOST:PORT`` line.

    Several workers get ``--metrics-port 0`` unless one is given: worker ``i`` listens on
    base + ``i``, and base + 1 of a port the kernel just handed out is often some
    connection's ephemeral port (a worker that cannot bind it fails the whole start)."""
    if metrics_port is None:
        metrics = free_port() if workers == 1 else 0
    else:
        metrics = metrics_port
    env = dict(os.environ, ATM_SWITCH_SERVER_REQUEST_DEADLINE_S="5",
               ATM_SWITCH_SERVER_SHUTDOWN_GRACE_S="5", **(extra_env or {}))
    data_dir.mkdir(parents=True, exist_ok=True)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(data_dir), "--dsn", dsn,
         "--port", str(port), "--metrics-port", str(metrics), "--workers", str(workers),
         *extra_args],
        stdout=subprocess.PIPE, stderr=(data_dir / log_name).open("ab"), env=env,
    )
    rest: list[bytes] = []
    try:
        assert process.stdout is not None
        line, tail = await _read_line(process.stdout, data_dir / log_name)
        assert line.startswith("listening "), line
        rest.append(tail)
        host, port_text = line.split(" ", 1)[1].rsplit(":", 1)

        async def collect() -> None:
            assert process.stdout is not None
            while chunk := await process.stdout.receive_some(4096):
                rest.append(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            yield ServeProcess(process, (host, int(port_text)), metrics, rest)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            workers: list[psutil.Process] = []
            if process.returncode is None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    workers = psutil.Process(process.pid).children(recursive=True)
                process.kill()
            await process.wait()
            for worker in workers:  # workers run in sessions of their own
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker.kill()


@contextlib.contextmanager
def cluster_root() -> Iterator[Path]:
    """A directory for PostgreSQL data directories, outside pytest's tmp tree (pytest resets
    /tmp/pytest-of-root to 0700 whenever any session starts, which locks the ``pgserver``
    account out); every server started below it is stopped and it is removed at the end."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="atm-switch-ha-"))
    try:
        with stopped_afterwards(*[root / name for name in ("primary", "standby")]):
            yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def stopped_afterwards(*pgdatas: Path) -> Iterator[None]:
    """Whatever PostgreSQL servers run on these data directories are stopped at the end."""
    from switch.db import replication

    try:
        yield
    finally:
        for pgdata in pgdatas:
            with contextlib.suppress(replication.ReplicationError):
                node = replication.Node(pgdata, 0)
                if replication.is_running(node):
                    replication.stop(node, "immediate")
