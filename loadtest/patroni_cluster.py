"""A Patroni-managed PostgreSQL cluster on one machine: one etcd member and three Patroni
members run from ``deploy/patroni/patroni.yml``, PostgreSQL 16 from pgserver's wheel.

For the failover drill (``python -m loadtest.failover --manager patroni``), its CI test and
the try-out in docs/deployment.md (``deploy/patroni/try-out.sh`` does the same by hand). The
members differ only in the environment Patroni reads over the file (name, ports, data
directory, ``bin_dir``), as on real servers. As root, etcd and Patroni (and so PostgreSQL) run
as pgserver's unprivileged account, like ``switch/db/replication.py``.

The cluster is watched through Patroni's REST API (``GET /cluster`` on any member): who is
the leader, which member is the synchronous standby, and whether each member is running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final

from switch.db import replication
from switch.db.replication import Node

CONFIG: Final = Path(__file__).resolve().parent.parent / "deploy" / "patroni" / "patroni.yml"
MEMBERS_DEFAULT: Final = 3
READY_TIMEOUT_S: Final = 180.0  # bootstrap: initdb, then two base backups
STOP_TIMEOUT_S: Final = 30.0
POLL_S: Final = 0.1
REST_TIMEOUT_S: Final = 1.0
RUNNING_STATES: Final = frozenset({"running", "streaming"})
REPLICA_ROLES: Final = frozenset({"replica", "sync_standby"})


class PatroniError(RuntimeError):
    """A tool is missing, or the cluster did not reach the expected state in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PatroniError(f"{name} not found: install Debian's patroni and etcd-server "
                           "(or `pip install patroni[etcd3]` and an etcd binary)")
    return found


@dataclasses.dataclass
class Member:
    """One Patroni member: its PostgreSQL and REST ports, data directory, process."""

    name: str
    directory: Path
    pg_port: int
    rest_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> Node:
        return Node(self.directory / "data", self.pg_port)

    def rest(self, path: str) -> tuple[int, Any]:
        """``GET`` on this member's REST API: (status, JSON body), or (0, None) when down."""
        url = f"http://127.0.0.1:{self.rest_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=REST_TIMEOUT_S) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, ValueError):
            return 0, None


class PatroniCluster:
    """``start()`` etcd and the members, wait for a leader and a synchronous standby;
    ``stop()`` everything it started (by process id)."""

    def __init__(self, root: Path, members: int = MEMBERS_DEFAULT) -> None:
        self.root = root
        self.user = replication.system_user()
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        self.config = root / "patroni.yml"
        self.members = [Member(f"pg{i + 1}", root / f"pg{i + 1}", free_port(), free_port())
                        for i in range(members)]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        self._start_etcd()
        # A copy the account can read wherever the checkout is (it may sit under /root).
        shutil.copyfile(CONFIG, self.config)
        self._own(self.config)
        # The first member bootstraps alone (initdb) and the others then clone it: no race
        # for the initialize key, and a bootstrap that fails says which member failed.
        first, *others = self.members
        self._start_member(first)
        try:
            _wait(lambda: self.leader() is not None, timeout_s, f"{first.name} did not bootstrap")
        except PatroniError as exc:
            raise PatroniError(f"{exc}: {self.log_tails()}") from None
        for member in others:
            self._start_member(member)
        self.wait_ready(timeout_s)

    def stop(self) -> None:
        """SIGTERM the members (Patroni stops its PostgreSQL), then etcd; SIGKILL laggards."""
        for member in self.members:
            _terminate(member.process)
        for member in self.members:
            _reap(member.process, STOP_TIMEOUT_S)
            with contextlib.suppress(replication.ReplicationError):
                if replication.is_running(member.node):
                    replication.kill(member.node)
        _terminate(self.etcd)
        _reap(self.etcd, STOP_TIMEOUT_S)

    def _own(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _owned_directory(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
        self._own(path)
        return path

    def _start_etcd(self) -> None:
        data = self.root / "etcd"
        replication.prepare_directory(data)  # owned by the account, its parents reachable
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self.etcd = subprocess.Popen(
            [executable("etcd"), "--name", "etcd1", "--data-dir", str(data / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"etcd1={peer}", "--initial-cluster-state", "new"],
            user=self.user, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(self.root / "etcd.log").open("ab"), cwd=data,
        )  # fmt: skip
        _wait(lambda: _http_ok(f"{client}/health"), 30.0, "etcd did not become healthy")

    def _start_member(self, member: Member) -> None:
        self._owned_directory(member.directory)  # Patroni writes its pgpass there
        replication.prepare_directory(member.node.pgdata)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(member.directory),
            "LANG": "C.UTF-8",
            "PATRONI_NAME": member.name,
            "PATRONI_RESTAPI_LISTEN": f"127.0.0.1:{member.rest_port}",
            "PATRONI_RESTAPI_CONNECT_ADDRESS": f"127.0.0.1:{member.rest_port}",
            "PATRONI_POSTGRESQL_LISTEN": f"127.0.0.1:{member.pg_port}",
            "PATRONI_POSTGRESQL_CONNECT_ADDRESS": f"127.0.0.1:{member.pg_port}",
            "PATRONI_POSTGRESQL_DATA_DIR": str(member.node.pgdata),
            "PATRONI_POSTGRESQL_BIN_DIR": str(replication.bin_dir()),
            "PATRONI_POSTGRESQL_PGPASS": str(member.directory / "pgpass"),
            "PATRONI_ETCD3_HOSTS": f"127.0.0.1:{self.etcd_port}",
        }
        member.process = subprocess.Popen(
            [executable("patroni"), str(self.config)], user=self.user, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=(self.root / f"{member.name}.patroni.log").open("ab"), cwd=member.directory,
        )  # fmt: skip

    # -- state -------------------------------------------------------------------------------

    def state(self) -> dict[str, dict[str, Any]]:
        """Members by name, as Patroni's ``/cluster`` shows them (asked of any live member)."""
        for member in self.members:
            status, body = member.rest("/cluster")
            if status == 200 and isinstance(body, dict):
                return {m["name"]: m for m in body.get("members", [])}
        return {}

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def leader(self) -> Member | None:
        """The running leader, confirmed by its own ``GET /primary`` (200 only there)."""
        for name, info in self.state().items():
            if info.get("role") == "leader" and info.get("state") in RUNNING_STATES:
                member = self.member(name)
                if member.rest("/primary")[0] == 200:
                    return member
        return None

    def ready(self) -> bool:
        members = self.state()
        roles = [m.get("role") for m in members.values()]
        return (len(members) == len(self.members)
                and all(m.get("state") in RUNNING_STATES for m in members.values())
                and roles.count("leader") == 1 and "sync_standby" in roles
                and self.leader() is not None)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        try:
            _wait(self.ready, timeout_s, f"no leader with a synchronous standby after "
                                         f"{timeout_s:.0f}s")
        except PatroniError as exc:
            raise PatroniError(f"{exc}; state {self.state()}; {self.log_tails()}") from None

    def log_tails(self, lines: int = 8) -> str:
        """The last lines of every log (the work directory may be gone when this is read)."""
        tails = []
        for log in sorted(self.root.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(tails)

    def synchronous_mode(self) -> bool:
        leader = self.leader()
        status, body = leader.rest("/config") if leader else (0, None)
        return bool(status == 200 and body and body.get("synchronous_mode"))

    def dsn(self, database: str = replication.SUPERUSER) -> str:
        """Every member in one DSN; ``target_session_attrs=read-write`` finds the leader."""
        return replication.multi_host_dsn([m.node for m in self.members], database)

    # -- after a fault ---------------------------------------------------------------------

    def wait_new_leader(self, old: Member, timeout_s: float) -> Member:
        found: list[Member] = []

        def elected() -> bool:
            leader = self.leader()
            if leader is not None and leader.name != old.name:
                found.append(leader)
                return True
            return False

        _wait(elected, timeout_s, f"no new leader {timeout_s:.0f}s after {old.name} failed")
        return found[0]

    def wait_rejoined(self, member: Member, timeout_s: float) -> str:
        """Wait until ``member`` runs again as a replica of the new leader; its role."""
        roles: list[str] = []

        def rejoined() -> bool:
            info = self.state().get(member.name, {})
            if info.get("role") in REPLICA_ROLES and info.get("state") in RUNNING_STATES:
                roles.append(str(info["role"]))
                return True
            return False

        _wait(rejoined, timeout_s, f"{member.name} did not rejoin as a replica")
        return roles[0]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=REST_TIMEOUT_S) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _wait(condition: Any, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise PatroniError(message)
        time.sleep(POLL_S)


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)


def _reap(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    if process is None:
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
