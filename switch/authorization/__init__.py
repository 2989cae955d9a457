"""Authorization: the pipeline of spec 6 and every transaction of spec 4 and 5.

``install(app)`` is called by the core's ``switch/app.py``: it builds an
:class:`~switch.authorization.service.Authorization` from ``app.config``, ``app.db``,
``app.hsm`` and ``app.ledger`` (a ``PostgresLedger`` over ``app.db`` when the app has none),
registers it on ``app.dispatcher`` and returns it; the app runs
``service.run_background`` (the sweeper) in its nursery. See docs/authorization.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switch.authorization.context import AuthContext
from switch.authorization.service import Authorization


def install(app: Any) -> Authorization:
    ledger = getattr(app, "ledger", None)
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
        metrics=getattr(app, "metrics", None),
        void_journal_path=_void_journal_path(app),
    )
    service = Authorization(ctx)
    service.register(app.dispatcher)
    network = getattr(app, "network", None)
    if network is not None:  # keys re-read under each sign-on (caches.py, KeyBook.refresh)
        network.add_sign_on_step(service.keys.refresh)
    hub = getattr(app, "notifications", None)
    if hub is not None:
        service.subscribe(hub, getattr(app, "terminals", None))
    app.authorization = service
    add_task = getattr(app, "add_background_task", None)
    if add_task is not None:
        add_task(service.run_background)
    return service


def _void_journal_path(app: Any) -> Path | None:
    """``<data_dir>/void-journal.jsonl`` when the app has a data directory on disk."""
    data_dir = getattr(app.config, "data_dir", None)
    if data_dir is None or not Path(data_dir).is_dir():
        return None
    return Path(data_dir) / "void-journal.jsonl"


# Chip cards (section 11) are checked in the 0200 path: the demo and the simulator's
# catalogue play chip transactions against this switch.
CHIP_CARDS_SUPPORTED = True

__all__ = ["CHIP_CARDS_SUPPORTED", "Authorization", "install"]
