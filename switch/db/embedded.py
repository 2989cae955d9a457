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


def embedded_cluster_exists(data_dir: Path) -> bool:
    """True when ``db init`` already created the embedded cluster in ``data_dir``."""
    return (data_dir / "pg" / "PG_VERSION").is_file()


@contextlib.contextmanager
def database_dsn(config: Config, *, create: bool = False) -> Iterator[str]:
    """Yield the configured DSN, or an embedded server's DSN when none is set.

    Only ``db init`` passes ``create``: any other command on a data directory without
    a cluster fails at once with the fix, instead of creating an empty database
    there and failing later on a missing table.
    """
    if config.database.dsn:
        yield config.database.dsn
        return
    data_dir = Path(config.data_dir)
    if not create and not embedded_cluster_exists(data_dir):
        raise EmbeddedDatabaseError(
            f"no database in the data directory {data_dir} (and no --dsn): run "
            f"'atm-switch db init --data-dir {data_dir}' first"
        )
    with embedded_postgres(data_dir) as dsn:
        yield dsn
