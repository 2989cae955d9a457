"""Fixtures for the switch core: a running SwitchApp on a real socket and a fresh database."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio

from switch.app import SwitchApp
from switch.config import Config
from switch.db.runtime import Database
from terminals.hostlink.connection import HostConnection, open_host_connection

StartSwitch = Callable[..., Awaitable[SwitchApp]]


def core_config(**server: Any) -> Config:
    """Defaults, a free port, no ops endpoint, server settings overridden by ``server``."""
    config = Config()
    return dataclasses.replace(
        config,
        server=dataclasses.replace(config.server, port=0, **server),
        ops=dataclasses.replace(config.ops, metrics_port=0),
    )


async def register_terminals(db: Database, *terminal_ids: str, status: str = "enabled") -> None:
    await db.execute(
        "INSERT INTO terminals (terminal_id, status) SELECT unnest($1::text[]), $2",
        list(terminal_ids),
        status,
    )


@pytest.fixture
async def start_switch(db: Database, nursery: trio.Nursery) -> StartSwitch:
    """``await start_switch(**server_settings)`` -> a SwitchApp listening on 127.0.0.1:<free>."""

    async def start(
        *, app_setup: Callable[[SwitchApp], None] | None = None, **server: Any
    ) -> SwitchApp:
        app = SwitchApp(core_config(**server), db)
        if app_setup is not None:
            app_setup(app)
        await nursery.start(app.run)
        return app

    return start


def connect(
    app: SwitchApp, terminal_id: str, **options: Any
) -> AbstractAsyncContextManager[HostConnection]:
    host, port = app.server.addresses[0]
    return open_host_connection(host, port, terminal_id=terminal_id, **options)


@pytest.fixture
async def switch(start_switch: StartSwitch, db: Database) -> AsyncIterator[SwitchApp]:
    """A switch with ATM00001..ATM00003 registered and enabled, DISABLED1 disabled."""
    await register_terminals(db, "ATM00001", "ATM00002", "ATM00003")
    await register_terminals(db, "DISABLD1", status="disabled")
    yield await start_switch()
