"""The simulation's own PostgreSQL (pgserver): never the suite's shared server, because a
history may crash and restart it. One installation is made once, as an operator makes it
(``atm-switch db init --mode test`` and ``fixtures load`` on a template database and data
directory); every history gets a fresh database cloned from the template and a copy of the data
directory (its LMK; a void journal of its own)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import trio

from tests.simulate.world import fixture

TEMPLATE_DB = "sim_template"
cli_timeout_s = 180.0
admin_attempts_max = 30  # one second apart
restart_attempts_max = 5
restart_retry_pause_s = 1.0
_POSTGRES_PORT = 5432  # pgserver listens on a Unix socket only, named after this port
# How a history's database is cloned. Not the default WAL_LOG strategy: on PostgreSQL 16.2
# (pgserver's) a sequence copied that way goes back after a crash to where the template left
# it, so ledger_entries' and ledger_legs' ids repeat and the first postings after a
# PostgreSQL restart fail on their primary key (found by the 30-minute run, seed 12;
# reproduced by tests/simulate/test_clone_survives_crash.py). FILE_COPY checkpoints around
# the copy, so the clone's sequences are durable before the history starts (docs/testing.md).
CLONE_STRATEGY = "FILE_COPY"


class SimPostgres:
    """Start with ``start()``; ``crash()`` is ``pg_ctl stop -m immediate`` (no checkpoint)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="atm-sim-pg-"))
        self._server: object | None = None
        self.restarts = 0
        self.restarted_at = 0.0  # time.monotonic() of the last restart (settling waits it out)
        # Histories run in parallel and each may crash PostgreSQL: one's stop must not land
        # while another's start waits for crash recovery (pg_ctl start then fails).
        self._crashing = threading.Lock()

    def start(self) -> None:
        import pgserver

        self._server = pgserver.get_server(self.root, cleanup_mode="delete")

    @property
    def uri(self) -> str:
        return str(self._require().get_uri())  # type: ignore[attr-defined]

    def dsn(self, database: str) -> str:
        parts = urlsplit(self.uri)
        return f"{parts.scheme}://{parts.netloc}/{database}?{parts.query}"

    @property
    def socket_path(self) -> str:
        host = parse_qs(urlsplit(self.uri).query)["host"][0]
        return f"{host}/.s.PGSQL.{_POSTGRES_PORT}"

    def crash(self) -> None:
        self.restarted_at = float("inf")  # until it is back
        from pgserver._commands import pg_ctl

        server = self._require()
        with self._crashing:
            if self.is_down():
                return  # another history's crash got here first; its restart follows
            pg_ctl(["-w", "-m", "immediate", "stop"],
                   pgdata=server.pgdata,  # type: ignore[attr-defined]
                   user=server.system_user)  # type: ignore[attr-defined]

    def restart_after_crash(self) -> None:
        server = self._require()
        with self._crashing:
            for attempt in range(restart_attempts_max):
                try:
                    with server._lock:  # type: ignore[attr-defined]
                        server.ensure_postgres_running()  # type: ignore[attr-defined]
                    break
                except subprocess.CalledProcessError:
                    if attempt + 1 == restart_attempts_max:
                        raise
                    time.sleep(restart_retry_pause_s)  # e.g. the old postmaster still exiting
        self.restarts += 1
        self.restarted_at = time.monotonic()

    def cleanup(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None

    def is_down(self) -> bool:
        """No postmaster running (a crash that has not been restarted yet)."""
        server = self._require()
        return not (Path(server.pgdata) / "postmaster.pid").exists()  # type: ignore[attr-defined]

    def _require(self) -> object:
        if self._server is None:
            raise RuntimeError("the simulation's PostgreSQL is not started")
        return self._server

    @property
    def template_dir(self) -> Path:
        return self.root / "template-data"

    async def make_template(self) -> None:
        """The installation once: ``db init --mode test`` and ``fixtures load`` (the world)."""
        await _admin(self.dsn("postgres"), f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"',
                     f'CREATE DATABASE "{TEMPLATE_DB}"')
        self.template_dir.mkdir(parents=True, exist_ok=True)
        path = self.template_dir / "fixture.json"
        path.write_text(json.dumps(fixture(), ensure_ascii=False), encoding="utf-8")
        dsn = self.dsn(TEMPLATE_DB)
        await trio.to_thread.run_sync(_cli, "db", "init", "--mode", "test", "--data-dir",
                                      str(self.template_dir), "--dsn", dsn)
        await trio.to_thread.run_sync(_cli, "fixtures", "load", str(path), "--data-dir",
                                      str(self.template_dir), "--dsn", dsn)
        path.unlink()  # clear PINs and TMKs: not copied into the histories' data directories

    async def new_installation(self) -> tuple[str, Path]:
        """A database cloned from the template and a copy of its data directory."""
        name = "sim_" + uuid.uuid4().hex[:12]
        await _admin(self.dsn("postgres"),
                     f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}" '
                     f"STRATEGY {CLONE_STRATEGY}")
        data_dir = self.root / name
        shutil.copytree(self.template_dir, data_dir)
        return name, data_dir

    async def drop_installation(self, name: str, data_dir: Path) -> None:
        await _admin(self.dsn("postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def _cli(*argv: str) -> None:
    """``atm-switch ARGV`` to completion; raise with its stderr on failure."""
    done = subprocess.run([sys.executable, "-m", "switch.cli", *argv], capture_output=True,
                          text=True, timeout=cli_timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"atm-switch {argv[0]} {argv[1]} failed: {done.stderr[-2000:]}")


async def _admin(dsn: str, *statements: str) -> None:
    """Run statements on a short asyncpg connection (asyncio, in a thread off the Trio loop)."""

    def run() -> None:
        import asyncio

        async def go() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(go())

    for attempt in range(admin_attempts_max):  # another history may be restarting PostgreSQL
        try:
            await trio.to_thread.run_sync(run)
            return
        except (OSError, asyncpg.PostgresError):
            if attempt == admin_attempts_max - 1:
                raise
            await trio.sleep(1.0)
