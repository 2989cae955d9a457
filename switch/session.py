"""Per-connection session state and the one-connection-per-terminal registry (spec 5.1).

Sign-on is per connection: a :class:`Session` records which terminal signed on
over its connection. The :class:`SessionRegistry` maps each terminal to the one
session allowed to speak for it; a newer sign-on asks the older connection to
close (it stops reading, finishes what is in flight, then closes).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("atm.session")

CloseRequest = Callable[[str], None]


def _no_close(reason: str) -> None:
    """Default close hook for sessions not attached to a connection (tests, tools)."""


@dataclasses.dataclass(eq=False)
class Session:
    """What the switch knows about one terminal connection.

    ``attributes`` is free for other layers to keep per-connection data in
    (the core never reads it).
    """

    connection_id: int
    peer: str
    terminal_id: str | None = None
    signed_on: bool = False
    closing: bool = False
    # Spec 10: the subject CN of the TLS client certificate when the listener requires
    # one ("" when it has none usable); None when no certificate is required.
    certificate_cn: str | None = None
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    _close_hook: CloseRequest = dataclasses.field(default=_no_close, repr=False)

    def attach_close_hook(self, hook: CloseRequest) -> None:
        """The server's way to be told to close this connection."""
        self._close_hook = hook

    def request_close(self, reason: str) -> None:
        """Ask the connection to stop reading, finish its in-flight requests and close."""
        self.signed_on = False
        if not self.closing:
            self.closing = True
            self._close_hook(reason)


class SessionRegistry:
    """Which session speaks for which terminal: at most one each."""

    def __init__(self) -> None:
        self._by_terminal: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_terminal)

    def current(self, terminal_id: str) -> Session | None:
        return self._by_terminal.get(terminal_id)

    def claim(self, terminal_id: str, session: Session) -> Session | None:
        """Make ``session`` the terminal's connection; close and return the older one."""
        older = self._by_terminal.get(terminal_id)
        self._by_terminal[terminal_id] = session
        session.terminal_id = terminal_id
        session.signed_on = True
        if older is not None and older is not session:
            log.info(
                "newer sign-on closes the older connection",
                extra={"terminal_id": terminal_id, "connection_id": older.connection_id},
            )
            older.request_close("replaced by a newer sign-on")
            return older
        return None

    def release(self, session: Session) -> None:
        """Forget ``session`` (sign-off or connection closed); a newer owner is kept."""
        session.signed_on = False
        terminal_id = session.terminal_id
        if terminal_id is not None and self._by_terminal.get(terminal_id) is session:
            del self._by_terminal[terminal_id]
