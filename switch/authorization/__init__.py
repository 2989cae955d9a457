"""Authorization: the pipeline of spec 6 and every transaction of spec 4 and 5.

``install(app)`` is called by the core's ``switch/app.py``: it builds an
:class:`~switch.authorization.service.Authorization` from ``app.config``, ``app.db``,
``app.hsm`` and ``app.ledger`` (a ``PostgresLedger`` over ``app.db`` when the app has none),
registers it on ``app.dispatcher`` and returns it; the app runs
``service.run_background`` (the sweeper) in its nursery. See docs/authorization.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from switch.authorization.context import AuthContext
from switch.authorization.service import Authorization, Registrar, Subscriptions
from switch.ports import ExtensionHost, NotifiedCache, SignOnSteps

if TYPE_CHECKING:
    from ledger_adapter import Ledger


class AuthorizationHost(ExtensionHost, Protocol):
    """What :func:`install` uses of the app (``switch.app.SwitchApp`` implements it)."""

    # The ledger the app was given; install opens a PostgresLedger over ``db`` when None.
    ledger: Ledger | None
    # Set by install, read by the card networks' install.
    authorization: Authorization | None

    @property
    def dispatcher(self) -> Registrar: ...

    @property
    def network(self) -> SignOnSteps: ...

    @property
    def notifications(self) -> Subscriptions: ...

    @property
    def terminals(self) -> NotifiedCache: ...


class HsmMissing(RuntimeError):
    """An app without an HSM cannot authorize: PINs and MACs need one."""


def install(app: AuthorizationHost) -> Authorization:
    if app.hsm is None:
        raise HsmMissing("switch.authorization needs an HSM: build the app with hsm=...")
    ledger = app.ledger
    if ledger is None:
        from switch.authorization.wiring import open_ledger

        ledger = open_ledger(app.db)
        app.ledger = ledger
    ctx = AuthContext(
        config=app.config.authorization,
        db=app.db,
        hsm=app.hsm,
        ledger=ledger,
        request_deadline_s=app.config.server.request_deadline_s,
        metrics=app.metrics,
        void_journal_path=_void_journal_path(app.config.data_dir),
    )
    service = Authorization(ctx)
    service.register(app.dispatcher)
    # Keys re-read under each sign-on (caches.py, KeyBook.refresh).
    app.network.add_sign_on_step(service.keys.refresh)
    service.subscribe(app.notifications, app.terminals)
    app.authorization = service
    app.add_background_task(service.run_background)
    return service


def _void_journal_path(data_dir: Path) -> Path | None:
    """``<data_dir>/void-journal.jsonl`` when the app has a data directory on disk."""
    if not Path(data_dir).is_dir():
        return None
    return Path(data_dir) / "void-journal.jsonl"


# Chip cards (section 11) are checked in the 0200 path: the demo and the simulator's
# catalogue play chip transactions against this switch.
CHIP_CARDS_SUPPORTED = True

__all__ = [
    "CHIP_CARDS_SUPPORTED",
    "Authorization",
    "AuthorizationHost",
    "HsmMissing",
    "install",
]
