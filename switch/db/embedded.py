"""Embedded PostgreSQL (the ``pgserver`` wheel) for laptops, tests and CI.

With no DSN configured, every command starts PostgreSQL 16 in ``<data_dir>/pg`` (or joins the
one already running there) and stops it when it is the last command using it. As root, pgserver
runs the server as a ``pgserver`` system user and hands back a Unix-socket DSN.

pgserver counts its users in ``pg/.handle_pids.json`` and stops the server when the last one
leaves. Two gaps left servers running after every command had exited, fixed here:
- a process that dies without running its exit handlers (SIGTERM's default action, SIGKILL, a
  crash) stays on that list forever, so nobody is ever "last": dead pids are dropped from the
  list, under pgserver's own lock, on the way in and on the way out;
- SIGTERM's default action skips ``finally``: while the server is held, SIGTERM is handled as
  Ctrl-C (``KeyboardInterrupt``, which Trio delivers safely), so the command unwinds and stops
  the server. Commands with their own SIGTERM handling (``serve``) keep it.
pgserver's chatter (INFO records, one per pg_ctl call) is kept out of the JSON logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from switch.config import Config

HANDLE_LIST = ".handle_pids.json"  # pgserver's list of the processes using a server


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, cleanup: str = "stop") -> Iterator[str]:
    """Start (or join) PostgreSQL in ``data_dir/pg`` and yield its DSN; stop it on the way out
    when no other live process uses it.

    ``cleanup`` is pgserver's cleanup mode: ``stop`` keeps the data, ``delete``
    removes it, ``None``-like values leave the server running.
    """
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():  # platformdirs warns on stderr when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # heavy import, only when the embedded server is wanted

    pg_dir = (data_dir / "pg").resolve()
    pg_dir.mkdir(parents=True, exist_ok=True)
    lock = pgserver.PostgresServer._lock
    with lock:
        drop_dead_users(pg_dir)
    with sigterm_as_interrupt():
        try:
            server = pgserver.get_server(pg_dir, cleanup_mode=cleanup)
        except Exception as exc:  # pgserver raises plain exceptions on failure
            raise EmbeddedDatabaseError(
                f"embedded PostgreSQL failed to start in {pg_dir}: {exc}"
            ) from exc
        try:
            yield str(server.get_uri())
        finally:
            with lock:
                drop_dead_users(pg_dir)
            with contextlib.suppress(Exception):
                server.cleanup()


def drop_dead_users(pg_dir: Path) -> list[int]:
    """Remove the pids of processes no longer alive from pgserver's user list; return the live
    ones. Call under pgserver's lock."""
    path = pg_dir / HANDLE_LIST
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        return []
    alive = [pid for pid in pids if pid == os.getpid() or _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))
    return alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises SIGINT: ``KeyboardInterrupt`` through the current
    SIGINT handler (Trio's inside ``trio.run``), so ``finally`` blocks run and the server
    stops. Outside the main thread signals cannot be handled: nothing is changed."""
    def as_interrupt(_signum: int, _frame: FrameType | None) -> None:
        signal.raise_signal(signal.SIGINT)

    try:
        previous: Any = signal.signal(signal.SIGTERM, as_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
