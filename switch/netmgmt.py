"""Network management (spec 5.1): sign-on, sign-off, echo, and the terminal gate (``58``).

Sign-on reads the terminal registry (``terminals`` table) afresh every time, so
disabling a terminal takes effect for its next sign-on at once; the sign-on steps
(:meth:`NetworkManagement.add_sign_on_step`) then run before the 0810 is sent, in the order
added: authorization re-reads the terminal's keys, so they are never older than the sign-on
on any node, and multi-node serve records the session (``switch/cluster_sessions.py``).
The per-request check of a signed-on terminal may use an answer up to ``cache_ttl_s`` old, so a
disabled terminal is also refused within seconds without a query per echo.

A connection belongs to the first terminal that signs on over it: a sign-on for
another terminal id on that connection is answered ``58``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from switch.db.runtime import Database, DatabaseUnavailable
from switch.protocol.answer import Reply
from switch.protocol.codes import NetworkCode, ResponseCode
from switch.protocol.message import Message, encode_message
from switch.protocol.responses import response_fields, response_mti
from switch.session import Session, SessionRegistry

log = logging.getLogger("atm.netmgmt")

# How old a cached registry answer may be for requests after sign-on.
TERMINAL_STATUS_TTL_S: Final = 2.0
# The cache is dropped wholesale past this many terminals (bounded memory).
TERMINAL_CACHE_ENTRIES_MAX: Final = 100_000
STATUS_ENABLED: Final = "enabled"

Handler = Callable[[Message, bytes, Session], Awaitable[Reply]]
# Runs under a sign-on before the session is claimed; may raise DatabaseUnavailable (91).
SignOnStep = Callable[[str, Session], Awaitable[object]]  # its result is not used


class TerminalDirectory:
    """Reads terminal status from the registry table, with a short cache.

    Lookups that miss the cache are batched: while one query is in flight, the
    terminals asked for meanwhile wait and go together in the next query (1,000
    terminals signing on after a restart cost a handful of round trips).
    """

    def __init__(
        self,
        db: Database,
        *,
        cache_ttl_s: float = TERMINAL_STATUS_TTL_S,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._db = db
        self._clock = clock
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[str | None, float]] = {}
        # The status last read of each terminal, used only while PostgreSQL cannot be read
        # (a terminal disabled meanwhile is refused once it can: the staleness the TTL
        # already allows, and nothing is approved without PostgreSQL anyway).
        self._last: dict[str, str | None] = {}
        self._open_batch: _Batch | None = None
        self._previous_done: trio.Event | None = None

    async def status(
        self, terminal_id: str, *, max_age_s: float, last_known_ok: bool = True
    ) -> str | None:
        """``enabled``, ``disabled`` or None (unknown). When PostgreSQL cannot be read, the
        status last read (``last_known_ok``, the per-request gate) or DatabaseUnavailable
        (a sign-on, which must read the registry afresh)."""
        now = self._clock()
        cached = self._cache.get(terminal_id)
        if cached is not None and now - cached[1] <= max_age_s:
            return cached[0]
        batch = self._open_batch
        if batch is None:
            batch = self._open_batch = _Batch()
            batch.ids.add(terminal_id)
            with trio.CancelScope(shield=True):  # followers depend on it; bounded by the DB timeout
                await self._run_batch(batch)
        else:
            batch.ids.add(terminal_id)
            await batch.done.wait()
        if batch.error is not None:
            if last_known_ok and terminal_id in self._last:
                # PostgreSQL is unreachable: the status last read stands (as for keys), so
                # the request goes on to where its 91 is recorded (spec 5.6) instead of
                # being answered 91 here, where nothing could record it.
                return self._last[terminal_id]
            raise DatabaseUnavailable(str(batch.error))
        return batch.found.get(terminal_id)

    async def _run_batch(self, batch: _Batch) -> None:
        previous, self._previous_done = self._previous_done, batch.done
        try:
            if previous is not None:
                await previous.wait()  # one query at a time; callers meanwhile join this batch
            self._open_batch = None
            rows = await self._db.fetch(
                "SELECT terminal_id, status FROM terminals WHERE terminal_id = ANY($1::text[])",
                sorted(batch.ids),
            )
            batch.found = {str(row["terminal_id"]): str(row["status"]) for row in rows}
            self._remember(batch)
        except DatabaseUnavailable as exc:
            batch.error = exc
        finally:
            if self._open_batch is batch:
                self._open_batch = None
            batch.done.set()

    def invalidate(self, terminal_id: str) -> None:
        """A NOTIFY said this terminal changed (enabled, disabled, keys)."""
        self._cache.pop(terminal_id, None)

    def clear(self) -> None:
        """The NOTIFY listener lost its connection: read everything again (the last status
        read stays as the fallback while PostgreSQL itself is unreachable)."""
        self._cache.clear()

    def _remember(self, batch: _Batch) -> None:
        if len(self._cache) + len(batch.ids) > TERMINAL_CACHE_ENTRIES_MAX:
            self._cache.clear()
        if len(self._last) + len(batch.ids) > TERMINAL_CACHE_ENTRIES_MAX:
            self._last.clear()
        now = self._clock()
        for terminal_id in batch.ids:
            status = batch.found.get(terminal_id)
            self._cache[terminal_id] = (status, now)
            self._last[terminal_id] = status


class _Batch:
    """Terminal ids looked up together, and the outcome every waiter reads."""

    __slots__ = ("done", "error", "found", "ids")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.found: dict[str, str] = {}
        self.error: DatabaseUnavailable | None = None
        self.done = trio.Event()


class NetworkManagement:
    """Answers 0800 messages and decides whether a session may send a request."""

    def __init__(self, directory: TerminalDirectory, sessions: SessionRegistry) -> None:
        self._directory = directory
        self._sessions = sessions
        self._sign_on_steps: list[SignOnStep] = []

    def add_sign_on_step(self, step: SignOnStep) -> None:
        """Run ``step(terminal_id, session)`` under every accepted sign-on, before the claim
        and the 0810 (a step raising DatabaseUnavailable makes the sign-on a ``91``)."""
        self._sign_on_steps.append(step)

    async def permits(self, request: Message, session: Session) -> bool:
        """True when ``session`` is signed on as field 41's terminal and it is still enabled."""
        terminal_id = request.terminal_id
        if not session.signed_on or session.closing or terminal_id is None:
            return False
        if session.terminal_id != terminal_id or self._sessions.current(terminal_id) is not session:
            return False
        status = await self._directory.status(terminal_id, max_age_s=self._directory.cache_ttl_s)
        return status == STATUS_ENABLED

    async def handle(
        self, request: Message, raw: bytes, session: Session, key_exchange: Handler | None
    ) -> Reply:
        """The 0810 for an 0800 (key exchange delegated to ``key_exchange`` when given)."""
        try:
            if request.network_code is NetworkCode.SIGN_ON:
                return await self._sign_on(request, session)
            if not await self.permits(request, session):
                return answer(request, ResponseCode.NOT_PERMITTED_TO_TERMINAL)
        except DatabaseUnavailable:
            log.warning("terminal registry unavailable", extra={"terminal_id": request.terminal_id})
            return answer(request, ResponseCode.UNAVAILABLE)
        if request.network_code is NetworkCode.SIGN_OFF:
            self._sessions.release(session)
            log.info(
                "signed off",
                extra={"terminal_id": request.terminal_id, "connection_id": session.connection_id},
            )
            return answer(request, ResponseCode.APPROVED)
        if request.network_code is NetworkCode.ECHO:
            return answer(request, ResponseCode.APPROVED)
        if request.network_code is NetworkCode.KEY_EXCHANGE and key_exchange is not None:
            return await key_exchange(request, raw, session)
        return answer(request, ResponseCode.INVALID_TRANSACTION)

    async def _sign_on(self, request: Message, session: Session) -> bytes:
        terminal_id = request.terminal_id or ""
        extra = {
            "terminal_id": terminal_id,
            "connection_id": session.connection_id,
            "peer": session.peer,
        }
        if session.terminal_id not in (None, terminal_id):
            log.warning("sign-on for another terminal on a bound connection", extra=extra)
            return answer(request, ResponseCode.NOT_PERMITTED_TO_TERMINAL)
        if session.certificate_cn is not None and (
            not session.certificate_cn or session.certificate_cn != terminal_id
        ):  # spec 10: a client certificate binds the connection to its CN
            log.warning("sign-on does not match the client certificate", extra=extra)
            return answer(request, ResponseCode.NOT_PERMITTED_TO_TERMINAL)
        status = await self._directory.status(terminal_id, max_age_s=0.0, last_known_ok=False)
        if status != STATUS_ENABLED or session.closing:
            log.warning("sign-on refused", extra={**extra, "reason": status or "unknown terminal"})
            return answer(request, ResponseCode.NOT_PERMITTED_TO_TERMINAL)
        for step in self._sign_on_steps:
            await step(terminal_id, session)
        self._sessions.claim(terminal_id, session)
        log.info("signed on", extra=extra)
        return answer(request, ResponseCode.APPROVED)


def answer(request: Message, response_code: str) -> bytes:
    """An unMACed answer echoing the spec's fields (0810s, and ``30``/``58`` of any class)."""
    return encode_message(response_mti(request.mti), response_fields(request, response_code))
