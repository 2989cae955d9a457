"""The staff roles (issue 13). What each may do is the ``roles`` column of the operation table
in :mod:`switch.admin.operations`; ``admin`` may do everything."""

from __future__ import annotations

from typing import Final

OPERATOR: Final = "operator"  # terminals
CARD_SERVICES: Final = "card_services"  # cards and accounts
AUDITOR: Final = "auditor"  # reads everything, changes nothing
SECURITY_OFFICER: Final = "security_officer"  # keys and users
ADMIN: Final = "admin"

ROLES: Final = (OPERATOR, CARD_SERVICES, AUDITOR, SECURITY_OFFICER, ADMIN)
