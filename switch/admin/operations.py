"""The shape of one admin API operation, and what a handler receives and returns.

The API router, the RBAC check and the OpenAPI document are all built from one table of
:class:`Operation` (:mod:`switch.admin.catalogue`), so an endpoint cannot exist without a
role list and a document entry. A handler of a changing operation returns :class:`Changed`,
which the API writes to the audit trail before answering; returning anything else from a
changing operation is a bug the API refuses to hide (500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switch.admin.schema import Schema
from switch.admin.sessions import Principal

if TYPE_CHECKING:
    from switch.admin.context import AdminContext


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: Schema
    location: str = "query"  # or "path"
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Call:
    principal: Principal
    params: dict[str, Any]
    body: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Changed:
    """A change made: the response plus the audit row (action, subject, before, after)."""

    response: Any
    action: str
    subject: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    status: int = 200


Handler = Callable[["AdminContext", Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    method: str
    path: str
    summary: str
    roles: frozenset[str]
    handler: Handler
    tag: str
    changes: bool = False
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    statuses: tuple[int, ...] = field(default=(200,))

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST", "DELETE"):
            raise ValueError(f"{self.operation_id}: method {self.method}")
        if self.changes and self.method == "GET":
            raise ValueError(f"{self.operation_id}: a GET must not change anything")
        if not self.changes and self.method == "DELETE":
            raise ValueError(f"{self.operation_id}: a DELETE changes something")
