"""The systems under test, each started as a subprocess on a free port.

- ``EchoTarget``: ``python -m loadtest.echo_server``.
- ``SwitchTarget``: ``atm-switch`` on a temporary data directory: ``db init``,
  ``fixtures load`` of the load-test population, then ``serve --port 0``. With
  no DSN the switch starts its embedded PostgreSQL in that directory, exactly as
  on a fresh machine. An already running switch can be given instead
  (``ExternalTarget``), loaded with ``python -m loadtest fixtures``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from loadtest.population import write_fixtures
from loadtest.procstat import (
    cpu_seconds,
    descendants,
    postmaster_pids,
    rss_bytes,
    runqueue_wait_seconds,
)

listening_timeout_s = 180.0  # embedded PostgreSQL start + migrations on a loaded machine
stop_grace_s = 20.0
command_timeout_s = 900.0  # fixtures for 10,000 terminals on a busy machine


class TargetError(RuntimeError):
    """The system under test could not be started."""


def switch_command() -> list[str]:
    """How to run the ``atm-switch`` CLI from this interpreter's environment."""
    return [sys.executable, "-m", "switch.cli"]


def _read_listening_line(process: subprocess.Popen[str], timeout_s: float, what: str) -> str:
    """Wait for ``listening HOST:PORT`` on the process's stdout; return ``HOST:PORT``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    seen: list[str] = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if line.startswith("listening "):
                return line.split(None, 1)[1].strip()
    finally:
        selector.close()
    tail = " | ".join(seen[-5:])
    raise TargetError(f"{what} did not print 'listening HOST:PORT' (exit {process.poll()}): {tail}")


def _drain(stream: IO[str] | None) -> None:
    """Keep reading a child's stdout so it never blocks on a full pipe."""
    import threading

    if stream is None:
        return

    def pump() -> None:
        with contextlib.suppress(ValueError, OSError):
            for _ in stream:
                pass

    threading.Thread(target=pump, daemon=True).start()


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=stop_grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class Target:
    """A running system under test: its address and its processes for CPU/RSS."""

    name = "target"
    host = "127.0.0.1"
    port = 0

    def addresses(self) -> list[tuple[str, int]]:
        """Where terminals connect (several switch processes: terminal i to address i % n)."""
        return [(self.host, self.port)]

    def pids(self) -> list[int]:
        return []

    def database_pids(self) -> list[int]:
        return []

    def cpu_seconds(self) -> float:
        every: set[int] = set()
        for pid in self.pids():
            every.add(pid)
            every.update(p for p in descendants(pid) if p not in self.database_pids())
        return sum(cpu_seconds(pid) for pid in every)

    def runqueue_wait_seconds(self) -> float:
        """Time the target's threads waited for a CPU (not counting PostgreSQL)."""
        return sum(runqueue_wait_seconds(pid) for pid in self.pids())

    def database_cpu_seconds(self) -> float:
        every: set[int] = set()
        for pid in self.database_pids():
            every.add(pid)
            every.update(descendants(pid))
        return sum(cpu_seconds(pid) for pid in every)

    def rss_bytes(self) -> int:
        every: set[int] = set()
        for pid in self.pids():
            every.add(pid)
            every.update(p for p in descendants(pid) if p not in self.database_pids())
        return sum(rss_bytes(pid) for pid in every)

    def stop(self) -> None:
        pass

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EchoTarget(Target):
    name = "echo"

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "loadtest.echo_server", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.host, self.port = _split_address(
                _read_listening_line(self._process, 60.0, "the echo server")
            )
        except BaseException:
            _stop(self._process)
            raise
        _drain(self._process.stdout)

    def pids(self) -> list[int]:
        return [self._process.pid]

    def stop(self) -> None:
        _stop(self._process)


class ExternalTarget(Target):
    """Switch processes started by someone else: ``--switch HOST:PORT[,HOST:PORT...]``
    (terminals spread over them) and optionally ``--switch-pid PID[,PID...]``."""

    name = "switch"

    def __init__(
        self, address: str, pid: str | int | None = None, data_dir: Path | None = None
    ) -> None:
        self._addresses = [_split_address(part) for part in address.split(",") if part]
        if not self._addresses:
            raise TargetError("--switch needs HOST:PORT")
        self.host, self.port = self._addresses[0]
        self._pids = [int(p) for p in str(pid).split(",") if p] if pid else []
        self._data_dir = data_dir

    def addresses(self) -> list[tuple[str, int]]:
        return list(self._addresses)

    def pids(self) -> list[int]:
        return list(self._pids)

    def database_pids(self) -> list[int]:
        """The embedded PostgreSQL under the switch's data directory, when given."""
        return postmaster_pids(self._data_dir) if self._data_dir else []


class SwitchTarget(Target):
    """``atm-switch serve`` on a fresh data directory with the load-test fixtures."""

    name = "switch"

    def __init__(
        self,
        terminals: int,
        *,
        seed: str,
        dsn: str | None = None,
        cards: bool = True,
        workers: int | None = None,
        keep_data_dir: bool = False,
        log: IO[str] | None = None,
    ) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="atm-loadtest-"))
        self._keep = keep_data_dir
        self._dsn = dsn
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        try:
            fixtures = self.data_dir / "loadtest-fixtures.json"
            write_fixtures(fixtures, terminals, seed, cards=cards)
            self._run("db", "init", "--mode", "test")  # fixtures load needs a test installation
            self._run("fixtures", "load", str(fixtures))
            self._serve(workers)
        except BaseException:
            self.stop()
            raise

    def _common(self) -> list[str]:
        flags = ["--data-dir", str(self.data_dir)]
        return flags + (["--dsn", self._dsn] if self._dsn else [])

    def _run(self, *command: str) -> None:
        argv = [*switch_command(), command[0], *command[1:], *self._common()]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=command_timeout_s, check=False
        )
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise TargetError(f"atm-switch {' '.join(command[:2])} failed: {' | '.join(message)}")

    def _serve(self, workers: int | None) -> None:
        argv = [*switch_command(), "serve", "--port", "0", "--metrics-port", "0", *self._common()]
        if workers:
            argv += ["--workers", str(workers)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._log or subprocess.DEVNULL, text=True, env=env
        )
        self.host, self.port = _split_address(
            _read_listening_line(self._process, listening_timeout_s, "atm-switch serve")
        )
        _drain(self._process.stdout)

    def pids(self) -> list[int]:
        return [self._process.pid] if self._process else []

    def database_pids(self) -> list[int]:
        return postmaster_pids(self.data_dir) if not self._dsn else []

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None
        if not self._keep:
            self._stop_embedded_database()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _stop_embedded_database(self) -> None:
        """The switch stops its embedded PostgreSQL on exit; make sure, before deleting it."""
        for pid in postmaster_pids(self.data_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while postmaster_pids(self.data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
