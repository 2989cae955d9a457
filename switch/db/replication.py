"""A PostgreSQL primary with a synchronous streaming standby, built with PostgreSQL's own tools.

Why synchronous: with ``synchronous_commit = on`` and the standby named in
``synchronous_standby_names``, the primary reports a COMMIT only once the standby
has flushed its WAL. Every 0210 ``00`` the switch sent was preceded by such a
commit, so after the standby is promoted it holds every acknowledged
transaction. An unacknowledged one may or may not be there; the terminal got no
answer (or ``91``) and reverses it, and a reversal is idempotent either way.

The tools are the ones that ship in the ``pgserver`` wheel (``initdb``,
``pg_basebackup``, ``pg_ctl``). As root, PostgreSQL refuses to run, so (like
pgserver itself) every tool runs as the ``pgserver`` system user, which owns the
data directories. Servers listen on TCP (``host``/``port``) so that one
multi-host DSN (:func:`multi_host_dsn`) names them all; the switch connects with
``target_session_attrs=read-write`` and so always lands on the writable primary.

This is for tests, drills and small installations. Larger ones run the same
topology under their HA manager (Patroni and similar): see docs/deployment.md.
After a promotion the new primary runs without a synchronous standby (commits
would otherwise block forever); create a new standby to restore redundancy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import asyncpg

SUPERUSER: Final = "postgres"
SYSTEM_USER_AS_ROOT: Final = "pgserver"
TOOL_TIMEOUT_S: Final = 120.0
SYNC_WAIT_S: Final = 60.0

# Appended to the primary's postgresql.conf (a standby inherits it through pg_basebackup).
_SERVER_SETTINGS: Final = """
# --- atm-switch replication (switch/db/replication.py) ---
listen_addresses = '{host}'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
synchronous_commit = on
max_connections = 200
logging_collector = off
"""


class ReplicationError(RuntimeError):
    """A PostgreSQL tool failed or the cluster did not reach the expected state."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One PostgreSQL server of the pair: its data directory and TCP address."""

    pgdata: Path
    port: int
    host: str = "127.0.0.1"

    def dsn(self, database: str = SUPERUSER) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def log_file(self) -> Path:
        return self.pgdata.parent / f"{self.pgdata.name}.log"


def running_node(pgdata: Path) -> Node:
    """The address of the server running on ``pgdata`` (from its ``postmaster.pid``)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        port, listen = int(lines[3]), lines[5].strip()
    except (OSError, IndexError, ValueError) as exc:
        raise ReplicationError(f"no running PostgreSQL in {pgdata}") from exc
    host = listen.split(",")[0].strip() or "127.0.0.1"
    return Node(pgdata.resolve(), port, "127.0.0.1" if host in ("*", "0.0.0.0") else host)


def multi_host_dsn(nodes: Sequence[Node], database: str = SUPERUSER) -> str:
    """``postgresql://postgres@h1:p1,h2:p2/db?target_session_attrs=read-write``."""
    hosts = ",".join(f"{n.host}:{n.port}" for n in nodes)
    return f"postgresql://{SUPERUSER}@{hosts}/{database}?target_session_attrs=read-write"


def bin_dir() -> Path:
    """Where the ``pgserver`` wheel keeps PostgreSQL's executables."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def system_user() -> str | None:
    """The account PostgreSQL runs as: ``pgserver`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER_AS_ROOT)
    return SYSTEM_USER_AS_ROOT


def prepare_directory(pgdata: Path) -> None:
    """Create ``pgdata`` (0700) owned by the server's account, reachable through its parents."""
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    user = system_user()
    if user is None:
        return
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = 0o044 | 0o011
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    for log in (pgdata.parent / f"{pgdata.name}.log",):
        log.touch(exist_ok=True)
        os.chown(log, entry.pw_uid, entry.pw_gid)


def run_tool(tool: str, *args: str, timeout_s: float = TOOL_TIMEOUT_S) -> str:
    """Run one PostgreSQL executable as the server's account; its stdout, or ReplicationError."""
    command = [str(bin_dir() / tool), *args]
    try:
        done = subprocess.run(
            command, user=system_user(), capture_output=True, text=True, timeout=timeout_s,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ReplicationError(f"{tool} timed out after {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        raise ReplicationError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    return done.stdout


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def init_primary(node: Node) -> None:
    """``initdb`` a new cluster ready to be a replication primary (does not start it)."""
    if (node.pgdata / "PG_VERSION").exists():
        raise ReplicationError(f"{node.pgdata} already holds a cluster")
    prepare_directory(node.pgdata)
    run_tool(
        "initdb", "-D", str(node.pgdata), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER
    )
    # initdb's pg_hba.conf already trusts replication connections from 127.0.0.1 and ::1.
    _append(node.pgdata / "postgresql.conf", _SERVER_SETTINGS.format(host=node.host,
                                                                     port=node.port))


def start(node: Node) -> None:
    """``pg_ctl start`` and wait until the server accepts connections."""
    prepare_directory(node.pgdata)
    run_tool("pg_ctl", "-D", str(node.pgdata), "-l", str(node.log_file), "-w", "-t", "60",
             "start")


def stop(node: Node, mode: str = "fast") -> None:
    """``pg_ctl stop -m fast|immediate|smart`` (no error when it is not running)."""
    if is_running(node):
        prepare_directory(node.pgdata)
        run_tool("pg_ctl", "-D", str(node.pgdata), "-w", "-t", "60", "-m", mode, "stop")


def postmaster_pid(node: Node) -> int | None:
    try:
        first = (node.pgdata / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.strip().isdigit() else None


def is_running(node: Node) -> bool:
    pid = postmaster_pid(node)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill(node: Node) -> float | None:
    """SIGKILL the postmaster and every backend at once: the machine is gone. Returns
    ``time.perf_counter()`` at the first signal (drills time the outage from it), or None
    when nothing was running."""
    pid = postmaster_pid(node)
    if pid is None:
        return None
    victims = [pid, *_descendants(pid)]
    killed_at = time.perf_counter()
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _zombie(pid):
        time.sleep(0.02)
    return killed_at


def _descendants(pid: int) -> list[int]:
    """Child processes (recursively), read from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _zombie(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def create_standby(primary: Node, standby: Node, name: str = "standby1") -> None:
    """``pg_basebackup`` the running primary into ``standby``, start it streaming from a
    replication slot, then make it the primary's synchronous standby and wait until it is.
    """
    if (standby.pgdata / "PG_VERSION").exists():
        raise ReplicationError(f"{standby.pgdata} already holds a cluster")
    prepare_directory(standby.pgdata)
    slot = name.replace("-", "_")
    run_tool(
        "pg_basebackup", "-h", primary.host, "-p", str(primary.port), "-U", SUPERUSER,
        "-D", str(standby.pgdata), "-X", "stream", "-c", "fast", "-R",
        "--create-slot", "--slot", slot,
    )  # fmt: skip
    # Later lines win: the standby's own port, and a conninfo naming it for the primary.
    conninfo = (
        f"host={primary.host} port={primary.port} user={SUPERUSER} application_name={name}"
    )
    _append(
        standby.pgdata / "postgresql.auto.conf",
        f"\nport = {standby.port}\nlisten_addresses = '{standby.host}'\n"
        f"primary_conninfo = '{conninfo}'\nprimary_slot_name = '{slot}'\n"
        "synchronous_standby_names = ''\n",
    )
    start(standby)
    set_synchronous_standby(primary, name)
    wait_synchronous(primary, name)


def set_synchronous_standby(primary: Node, name: str) -> None:
    quoted = name.replace('"', "")
    _sql(primary, f"ALTER SYSTEM SET synchronous_standby_names = '\"{quoted}\"'")
    _sql(primary, "SELECT pg_reload_conf()")


def wait_synchronous(primary: Node, name: str, timeout_s: float = SYNC_WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _sql(primary, "SELECT application_name, sync_state FROM pg_stat_replication")
        if any(r["application_name"] == name and r["sync_state"] == "sync" for r in rows):
            return
        if time.monotonic() > deadline:
            raise ReplicationError(f"{name} is not a synchronous standby after {timeout_s:.0f}s")
        time.sleep(0.2)


def promote(standby: Node) -> None:
    """``pg_ctl promote`` and wait until it takes writes.

    The promoted server must not wait for a synchronous standby it does not have:
    ``synchronous_standby_names`` is reset. Fence the old primary first (it must stay
    down, or come back only as a new standby): two writable primaries split the ledger.
    """
    prepare_directory(standby.pgdata)
    run_tool("pg_ctl", "-D", str(standby.pgdata), "-w", "-t", "60", "promote")
    _sql(standby, "ALTER SYSTEM RESET synchronous_standby_names")
    _sql(standby, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + SYNC_WAIT_S
    while _sql(standby, "SELECT pg_is_in_recovery() AS r")[0]["r"]:
        if time.monotonic() > deadline:
            raise ReplicationError("the promoted server is still in recovery")
        time.sleep(0.1)


def node_status(node: Node) -> dict[str, Any]:
    """Role and replication state of one server, as plain JSON-able values."""
    status: dict[str, Any] = {"address": f"{node.host}:{node.port}", "pgdata": str(node.pgdata)}
    try:
        recovery = _sql(node, "SELECT pg_is_in_recovery() AS r")[0]["r"]
    except ReplicationError as exc:
        status.update(role="down", error=str(exc))
        return status
    status["role"] = "standby" if recovery else "primary"
    if recovery:
        row = _sql(node, "SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver")
        status["receiving_from"] = (
            f"{row[0]['sender_host']}:{row[0]['sender_port']}" if row else None
        )
        status["receiver_status"] = row[0]["status"] if row else None
    else:
        rows = _sql(
            node,
            "SELECT application_name, state, sync_state,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint AS flush_lag_bytes"
            " FROM pg_stat_replication ORDER BY application_name",
        )
        status["standbys"] = [dict(r) for r in rows]
        status["synchronous_standby_names"] = _sql(
            node, "SELECT current_setting('synchronous_standby_names') AS s"
        )[0]["s"]
    return status


def _sql(node: Node, query: str) -> list[Any]:
    """One statement on ``node`` over its own short-lived connection (admin path, not hot)."""

    async def run() -> list[Any]:
        connection = await asyncpg.connect(node.dsn(), timeout=5)
        try:
            return list(await connection.fetch(query))
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise ReplicationError(f"{node.host}:{node.port}: {exc}") from exc
