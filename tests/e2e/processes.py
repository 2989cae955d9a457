"""The switch as a child process (``atm-switch serve``), so tests can SIGKILL it, and a private
PostgreSQL (pgserver) that tests can stop and start again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

# The child must print "listening HOST:PORT" within this time (spec 9).
startup_timeout_s = 60.0


def run_cli(*argv: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``atm-switch`` to completion; raise with its stderr on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "switch.cli", *argv], capture_output=True, text=True,
        env=dict(os.environ, **(env or {})), timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"atm-switch {' '.join(argv)} failed: {done.stderr[-2000:]}")
    return done.stdout


def prepare(data_dir: Path, dsn: str, fixture: Mapping[str, Any]) -> None:
    """``db init`` + ``fixtures load``: exactly what an operator (or test suite) runs."""
    path = data_dir / "fixture.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    run_cli("db", "init", "--mode", "test", "--data-dir", str(data_dir), "--dsn", dsn)
    run_cli("fixtures", "load", str(path), "--data-dir", str(data_dir), "--dsn", dsn)


class SwitchProcess:
    def __init__(self, process: trio.Process, address: tuple[str, int]) -> None:
        self.process = process
        self.address = address

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)


@contextlib.asynccontextmanager
async def switch_process(data_dir: Path, dsn: str, *, deadline_s: float = 5.0,
                         extra_env: Mapping[str, str] | None = None
                         ) -> AsyncIterator[SwitchProcess]:
    """Start ``atm-switch serve --port 0`` and wait for its ``listening`` line."""
    env = dict(os.environ, ATM_SWITCH_SERVER_REQUEST_DEADLINE_S=str(deadline_s),
               **(extra_env or {}))
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "switch.cli", "serve", "--data-dir", str(data_dir), "--dsn", dsn,
         "--port", "0", "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=(data_dir / "serve.log").open("ab"), env=env,
    )
    try:
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(startup_timeout_s):
            while b"\n" not in buffer:
                chunk = await process.stdout.receive_some(1024)
                if not chunk:
                    raise RuntimeError("atm-switch serve exited before listening")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        assert line.startswith("listening "), line
        host, port = line.split(" ", 1)[1].rsplit(":", 1)
        yield SwitchProcess(process, (host, int(port)))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await process.wait()


class PrivatePostgres:
    """A pgserver instance of the test's own, so it can be stopped and started (not the shared
    session server)."""

    def __init__(self) -> None:
        import pgserver

        self.root = Path(tempfile.mkdtemp(prefix="atm-switch-pg-private-"))
        self.server = pgserver.get_server(self.root, cleanup_mode="delete")
        self.dsn = str(self.server.get_uri())

    def stop_immediately(self) -> None:
        """Like a crash: ``pg_ctl stop -m immediate`` (no shutdown checkpoint)."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.root,
               user=self.server.system_user)

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        self.server.cleanup()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.cleanup()
