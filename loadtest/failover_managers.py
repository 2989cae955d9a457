"""Who runs PostgreSQL in the failover drill (loadtest/failover.py): ``--manager standby`` or
``--manager patroni``.

``standby``: a primary and a synchronous standby built with ``switch/db/replication.py``;
nobody decides anything, so the drill promotes the standby itself after ``promote_after_s``
(what an operator running ``atm-switch db standby promote`` does).

``patroni``: three Patroni members on one etcd (loadtest/patroni_cluster.py, the
configuration in ``deploy/patroni/``); the drill only kills the leader's PostgreSQL and then
watches Patroni elect and promote the synchronous standby, and the old primary come back as a
replica (pg_rewind when its WAL had gone further than the new leader's).

Both blocking APIs are called from worker threads by the drill.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

from loadtest.patroni_cluster import Member, PatroniCluster, PatroniError, free_port
from switch.db import replication
from switch.db.replication import Node

LEADER_ELECTION_TIMEOUT_S = 90.0
REJOIN_TIMEOUT_S = 180.0


class Manager(Protocol):
    name: str

    def start(self) -> None: ...

    def dsn(self) -> str: ...

    def aim(self) -> None:
        """Find the primary to kill (so that the kill itself is one quick step)."""

    def fail_primary(self) -> float:
        """SIGKILL the primary's PostgreSQL (postmaster and backends); ``perf_counter()`` at
        the signal."""

    def recover(self) -> dict[str, Any]:
        """Return once a new primary takes writes; figures for the report."""

    def finish(self) -> dict[str, Any]:
        """After the load: the state of the cluster once things settled; figures."""

    def stop(self) -> None: ...


class StandbyPair:
    """Primary + synchronous standby; the drill promotes (no HA manager)."""

    name = "standby"

    def __init__(self, root: Path, promote_after_s: float) -> None:
        self.primary = Node(root / "primary", free_port())
        self.standby = Node(root / "standby", free_port())
        self.promote_after_s = promote_after_s
        self._killed_at = 0.0

    def start(self) -> None:
        replication.init_primary(self.primary)
        replication.start(self.primary)
        replication.create_standby(self.primary, self.standby, "standby1")

    def dsn(self) -> str:
        return replication.multi_host_dsn([self.primary, self.standby])

    def aim(self) -> None:
        return None  # the primary is known

    def fail_primary(self) -> float:
        self._killed_at = time.monotonic()
        return _killed(replication.kill(self.primary))

    def recover(self) -> dict[str, Any]:
        time.sleep(self.promote_after_s)  # what an operator (or a script) takes to decide
        replication.promote(self.standby)
        return {"promote_s": round(time.monotonic() - self._killed_at, 3)}

    def finish(self) -> dict[str, Any]:
        return {"new_primary": replication.node_status(self.standby)["role"] == "primary"}

    def stop(self) -> None:
        for node in (self.primary, self.standby):
            try:
                replication.stop(node, "immediate")
            except replication.ReplicationError:
                continue


class PatroniManager:
    """Three Patroni members on one etcd; Patroni elects, promotes and rejoins."""

    name = "patroni"

    def __init__(self, root: Path) -> None:
        self.cluster = PatroniCluster(root)
        self._old: Member | None = None
        self._new: Member | None = None
        self._killed_at = 0.0
        self._rejoin: dict[str, Any] = {}
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.cluster.start()

    def dsn(self) -> str:
        return self.cluster.dsn()

    def aim(self) -> None:
        self._old = self.cluster.leader()
        if self._old is None:
            raise PatroniError("no leader to kill")

    def fail_primary(self) -> float:
        assert self._old is not None  # aim() came first
        self._killed_at = time.monotonic()
        return _killed(replication.kill(self._old.node))

    def recover(self) -> dict[str, Any]:
        assert self._old is not None  # fail_primary() came first
        self._new = self.cluster.wait_new_leader(self._old, LEADER_ELECTION_TIMEOUT_S)
        elected_s = time.monotonic() - self._killed_at
        self._watcher = threading.Thread(target=self._watch_rejoin, daemon=True)
        self._watcher.start()
        return {"leader_elected_s": round(elected_s, 3), "promote_s": round(elected_s, 3),
                "old_leader": self._old.name, "new_leader": self._new.name}

    def _watch_rejoin(self) -> None:
        assert self._old is not None
        try:
            role = self.cluster.wait_rejoined(self._old, REJOIN_TIMEOUT_S)
        except PatroniError as exc:
            self._rejoin = {"old_primary_rejoined": False, "rejoin_error": str(exc)}
            return
        self._rejoin = {"old_primary_rejoined": True, "old_primary_role": role,
                        "rejoin_s": round(time.monotonic() - self._killed_at, 3)}

    def finish(self) -> dict[str, Any]:
        if self._watcher is not None:
            self._watcher.join(REJOIN_TIMEOUT_S + 5)
        assert self._old is not None and self._new is not None
        leader = self.cluster.leader()
        log = self.cluster.root / f"{self._old.name}.patroni.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return {
            **self._rejoin,
            "new_primary": leader is not None and leader.name == self._new.name,
            "old_primary_rewound": "running pg_rewind" in text,
            "synchronous_mode": self.cluster.synchronous_mode(),
            "members": {name: m.get("role") for name, m in self.cluster.state().items()},
        }

    def stop(self) -> None:
        self.cluster.stop()


def _killed(at: float | None) -> float:
    if at is None:
        raise replication.ReplicationError("the primary's PostgreSQL was not running")
    return at
