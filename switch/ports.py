"""The joins between the switch's core and its extensions, as Protocols.

The core (``switch/app.py``, the server, sessions, the dispatcher) and the packages it installs
(``switch.authorization``, ``switch.networks``, ``ops.install``) meet here. Each Protocol names
only what its consumers use, so mypy strict checks every call across the join and neither side
needs the other's concrete classes. :class:`switch.app.SwitchApp` implements the ``install(app)``
ports (checked where it is defined); :class:`switch.session.Session` is a
:class:`TerminalSession`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ops.metrics import SwitchMetrics
    from switch.config import Config
    from switch.db.runtime import Database
    from switch.hsm import Hsm

# An async function run beside the server, optionally taking ``task_status``.
BackgroundTask = Callable[..., Awaitable[None]]


class TerminalSession(Protocol):
    """What the request path reads of one terminal connection's session."""

    @property
    def terminal_id(self) -> str | None:
        """The terminal signed on over this connection (None before a sign-on)."""

    @property
    def signed_on(self) -> bool: ...


# Run under every accepted sign-on, before the 0810 (its result is not used).
SignOnStep = Callable[[str, TerminalSession], Awaitable[object]]


class SignOnSteps(Protocol):
    """The network-management side that runs extension steps under each sign-on."""

    def add_sign_on_step(self, step: SignOnStep) -> None: ...


class NotifiedCache(Protocol):
    """A cache dropped by ``NOTIFY`` (one key) or by a listener reset (everything)."""

    def invalidate(self, key: str, /) -> None: ...

    def clear(self) -> None: ...


class ExtensionHost(Protocol):
    """What every ``install(app)`` may use of the app."""

    @property
    def config(self) -> Config: ...

    @property
    def db(self) -> Database: ...

    @property
    def metrics(self) -> SwitchMetrics: ...

    @property
    def hsm(self) -> Hsm | None:
        """None only in apps built without one (tests of the core); extensions that need it
        refuse to install."""

    def add_background_task(self, task: BackgroundTask) -> None: ...
