"""Run the back office: the API and console on one port, on the shared ASGI stack."""

from __future__ import annotations

from typing import Final

import trio

from ops.asgi import serve_asgi
from switch.admin.api import admin_app
from switch.admin.context import AdminContext

ADMIN_CONNECTIONS_MAX: Final = 128  # a bank's back-office staff, with room for API scripts


async def serve_admin(
    ctx: AdminContext,
    host: str,
    port: int,
    *,
    connections_max: int = ADMIN_CONNECTIONS_MAX,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``started((host, port))`` once listening (port 0 picks one)."""
    from switch.admin.console import console_routes

    app = admin_app(ctx, console_routes(ctx))
    async with trio.open_nursery() as nursery:
        address: tuple[str, int] = await nursery.start(
            lambda task_status: serve_asgi(app, host, port, connections_max=connections_max,
                                           task_status=task_status)
        )
        task_status.started(address)
