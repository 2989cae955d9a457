"""The simulation's own PostgreSQL (pgserver): never the suite's shared server, because a
history may crash and restart it. One template database holds the schema; every history
gets a fresh database cloned from it."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import trio

from switch.db.installation import MODE_TEST, record_mode
from switch.db.migrate import migrate
from switch.db.roles import ensure_app_role
from switch.db.runtime import open_database

TEMPLATE_DB = "sim_template"
_POSTGRES_PORT = 5432  # pgserver listens on a Unix socket only, named after this port


class SimPostgres:
    """Start with ``start()``; ``crash()`` is ``pg_ctl stop -m immediate`` (no checkpoint)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="atm-sim-pg-"))
        self._server: object | None = None
        self.restarts = 0

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
        from pgserver._commands import pg_ctl

        server = self._require()
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata,  # type: ignore[attr-defined]
               user=server.system_user)  # type: ignore[attr-defined]

    def restart_after_crash(self) -> None:
        server = self._require()
        with server._lock:  # type: ignore[attr-defined]
            server.ensure_postgres_running()  # type: ignore[attr-defined]
        self.restarts += 1

    def cleanup(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None

    def _require(self) -> object:
        if self._server is None:
            raise RuntimeError("the simulation's PostgreSQL is not started")
        return self._server

    async def make_template(self) -> None:
        """The schema once, as ``db init --mode test`` makes it."""
        await _admin(self.dsn("postgres"), f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"',
                     f'CREATE DATABASE "{TEMPLATE_DB}"')
        async with open_database(self.dsn(TEMPLATE_DB), pool_size_min=1, pool_size_max=1) as db:
            await migrate(db)
            await record_mode(db, MODE_TEST)
            await ensure_app_role(db)

    async def new_database(self) -> str:
        name = "sim_" + uuid.uuid4().hex[:12]
        await _admin(self.dsn("postgres"), f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        return name

    async def drop_database(self, name: str) -> None:
        await _admin(self.dsn("postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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

    await trio.to_thread.run_sync(run)
