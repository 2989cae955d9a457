"""Placeholder until the console lands (see docs/admin.md)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from switch.admin.context import AdminContext


def console_routes(ctx: AdminContext) -> list[BaseRoute]:
    return []
