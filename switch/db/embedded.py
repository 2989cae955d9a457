"""Embedded PostgreSQL (the ``pgserver`` wheel) for laptops, tests and CI.

With no DSN configured, every command starts PostgreSQL 16 in
``<data_dir>/pg`` and stops it on exit. As root, pgserver runs the server as
a ``pgserver`` system user and hands back a Unix-socket DSN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from switch.config import Config


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, cleanup: str = "stop") -> Iterator[str]:
    """Start (or reuse) PostgreSQL in ``data_dir/pg`` and yield its DSN.

    ``cleanup`` is pgserver's cleanup mode: ``stop`` keeps the data, ``delete``
    removes it, ``None``-like values leave the server running.
    """
    import pgserver  # heavy import, only when the embedded server is wanted

    pg_dir = (data_dir / "pg").resolve()
    pg_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pg_dir, cleanup_mode=cleanup)
    except Exception as exc:  # pgserver raises plain exceptions on failure
        raise EmbeddedDatabaseError(
            f"embedded PostgreSQL failed to start in {pg_dir}: {exc}"
        ) from exc
    try:
        yield str(server.get_uri())
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()


@contextlib.contextmanager
def database_dsn(config: Config) -> Iterator[str]:
    """Yield the configured DSN, or an embedded server's DSN when none is set."""
    if config.database.dsn:
        yield config.database.dsn
        return
    with embedded_postgres(Path(config.data_dir)) as dsn:
        yield dsn
