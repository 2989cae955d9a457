"""One connection per terminal across every switch node (spec 5.1, issue 14).

Each node's :class:`~switch.session.SessionRegistry` enforces the rule inside one
process. Across nodes the ``terminal_sessions`` table (migration 0800) is the
truth: a sign-on writes the row (node id, connection id, generation + 1) before
the session is claimed, and a trigger NOTIFYs ``atm_terminal_session``. Every
node listens (switch/db/notifications.py): when another node announces a newer
generation for a terminal this node still holds, the older connection is asked to
close (stop reading, answer what is in flight, close) within a notification's
latency, without any polling.

Generations settle races: two sign-ons for one terminal on two nodes at once both
write, the later write has the higher generation, and only the holder of the
lower one closes. A notification missed while the listener was disconnected is
made up for by :meth:`ClusterSessions.reconcile`, run after every listener reset:
it re-reads the rows of every terminal held here and closes the outdated ones.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from typing import Any, Final

import trio

from switch.db.notifications import Notifications
from switch.db.runtime import Database, DatabaseUnavailable
from switch.session import Session, SessionRegistry

log = logging.getLogger("atm.cluster_sessions")

CHANNEL: Final = "atm_terminal_session"
GENERATION: Final = "cluster_generation"  # key in Session.attributes
RECONCILE_RETRY_S: Final = 1.0

_RECORD_SIGN_ON: Final = """
INSERT INTO terminal_sessions (terminal_id, node_id, connection_id)
VALUES ($1, $2, $3)
ON CONFLICT (terminal_id) DO UPDATE
   SET node_id = EXCLUDED.node_id, connection_id = EXCLUDED.connection_id,
       generation = terminal_sessions.generation + 1, signed_on_at = now()
RETURNING generation
"""


def default_node_id() -> str:
    """Unique per process and readable in the table: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ClusterSessions:
    """Records sign-ons in PostgreSQL and closes this node's outdated terminal connections."""

    def __init__(self, db: Database, sessions: SessionRegistry, notifications: Notifications,
                 *, node_id: str | None = None) -> None:
        self._db = db
        self._sessions = sessions
        self.node_id = node_id or default_node_id()
        self._held: dict[str, Session] = {}  # terminal -> session recorded here (bounded by ids)
        self._reconcile_wanted = trio.Event()
        self.closed_elsewhere = 0
        notifications.subscribe(CHANNEL, self._on_notify)
        notifications.on_reset(self._want_reconcile)

    async def record_sign_on(self, terminal_id: str, session: Session) -> None:
        """Before the local claim: write the row and remember its generation on the session.

        Raises DatabaseUnavailable (the sign-on is then answered ``91``).
        """
        generation = await self._db.fetchval(
            _RECORD_SIGN_ON, terminal_id, self.node_id, session.connection_id
        )
        session.attributes[GENERATION] = int(generation)
        self._held[terminal_id] = session

    def _want_reconcile(self) -> None:
        self._reconcile_wanted.set()

    def _on_notify(self, payload: str) -> None:
        try:
            event: dict[str, Any] = json.loads(payload)
            terminal_id, node_id = str(event["terminal_id"]), str(event["node_id"])
            generation = int(event["generation"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable session notification")
            return
        if node_id != self.node_id:
            self._close_if_older(terminal_id, generation, node_id)

    def _close_if_older(self, terminal_id: str, generation: int, node_id: str) -> None:
        session = self._sessions.current(terminal_id)
        if session is None or session.closing:
            return
        held = session.attributes.get(GENERATION)
        if held is not None and held >= generation:
            return  # ours is the newer sign-on (the other node closes instead)
        self.closed_elsewhere += 1
        log.info("terminal signed on at another node; closing here",
                 extra={"terminal_id": terminal_id, "connection_id": session.connection_id,
                        "reason": f"generation {generation} on {node_id}"})
        self._sessions.release(session)
        session.request_close("signed on at another node")

    async def reconcile(self) -> None:
        """Re-read the rows of every terminal held here; close the outdated sessions."""
        held = {t: s for t, s in self._held.items() if self._sessions.current(t) is s}
        self._held = held
        if not held:
            return
        rows = await self._db.fetch(
            "SELECT terminal_id, node_id, generation FROM terminal_sessions"
            " WHERE terminal_id = ANY($1::text[])", list(held),
        )
        for row in rows:
            session = held[row["terminal_id"]]
            if row["node_id"] != self.node_id or row["generation"] > session.attributes.get(
                GENERATION, 0
            ):
                self._close_if_older(row["terminal_id"], int(row["generation"]), row["node_id"])

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Background task: reconcile after every notification-listener reset."""
        task_status.started()
        while True:
            await self._reconcile_wanted.wait()
            self._reconcile_wanted = trio.Event()
            try:
                await self.reconcile()
            except DatabaseUnavailable:
                self._reconcile_wanted.set()
                await trio.sleep(RECONCILE_RETRY_S)
