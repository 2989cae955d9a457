"""``switch.authorization.install(app)`` over the typed port: what it wires, and what it refuses.

Goal: installing authorization on a real :class:`SwitchApp` registers the financial and key
exchange handlers, the sign-on key refresh, the NOTIFY subscriptions and the sweeper, and
sets ``app.authorization`` / ``app.ledger``; an app built without an HSM is refused with a
clear error at install time instead of failing on the first PIN or MAC. Method: build the app
on the per-test database and look at the dispatcher, network management, notification hub
and background tasks it holds afterwards.
"""

from __future__ import annotations

import pytest

from switch.app import SwitchApp
from switch.authorization import HsmMissing, install
from switch.authorization.service import SELF_TIMED_MTIS, TERMINALS_CHANNEL
from switch.config import Config
from switch.db.runtime import Database
from switch.hsm import SoftwareHsm
from tests.authorization.harness import TEST_LMK


async def test_install_wires_the_service_into_the_app(db: Database) -> None:
    app = SwitchApp(Config(), db, hsm=SoftwareHsm(TEST_LMK))
    service = install(app)
    assert app.authorization is service
    assert app.ledger is service.ctx.ledger is not None
    assert service.ctx.metrics is app.metrics
    handlers = app.dispatcher._handlers
    assert {"0200", "0220", "0420", "0800/161"} <= set(handlers)
    assert handlers["0200"] is service.handler and handlers["0800/161"] is service.key_exchange
    assert SELF_TIMED_MTIS <= app.dispatcher.self_timed_mtis
    assert app.dispatcher._response_mac == service.response_mac
    assert service.keys.refresh in app.network._sign_on_steps
    assert service.keys.invalidate in app.notifications._subscribers[TERMINALS_CHANNEL]
    assert app.terminals.invalidate in app.notifications._subscribers[TERMINALS_CHANNEL]
    assert service.run_background in app._background


async def test_install_without_an_hsm_is_refused(db: Database) -> None:
    app = SwitchApp(Config(), db)
    with pytest.raises(HsmMissing, match="needs an HSM"):
        install(app)
    assert app.authorization is None
    assert app._background == []
