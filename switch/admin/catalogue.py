"""Every admin API operation in one table: path, method, who may call it, what it takes.

The router (:mod:`switch.admin.api`), the role check and the OpenAPI document
(:mod:`switch.admin.openapi`) are all generated from :data:`OPERATIONS`. Login
(``POST /api/session``) and ``GET /healthz`` are the only anonymous endpoints and are not in the
table. ``auditor`` reads everything and changes nothing; ``admin`` may do everything.
"""

from __future__ import annotations

from typing import Final

from switch.admin.handlers import accounts, cards, reads, staff, terminals
from switch.admin.operations import Operation, Param
from switch.admin.roles import ADMIN, AUDITOR, CARD_SERVICES, OPERATOR, ROLES, SECURITY_OFFICER
from switch.admin.schema import integer, obj, string

EVERYONE: Final = frozenset(ROLES)
ACCOUNT_ID: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
USERNAME: Final = r"^[a-z][a-z0-9_.-]{1,31}$"
DATE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MASKED_PAN: Final = r"^[0-9]{6}\*{2,9}[0-9]{4}$"


def _roles(*roles: str) -> frozenset[str]:
    return frozenset((*roles, ADMIN))


def _path(name: str, schema: dict[str, object]) -> Param:
    return Param(name, schema, "path", True)


TERMINAL: Final = _path("terminal_id", string(terminals.TERMINAL_ID_PATTERN, max_length=8))
CARD: Final = _path("card_id", integer(1, 2**62))
ACCOUNT: Final = _path("account_id", string(ACCOUNT_ID))
USER: Final = _path("username", string(USERNAME, max_length=32))
APPROVAL: Final = _path("approval_id", integer(1, 2**62))
LIMIT: Final = Param("limit", integer(1, 500))
CUSTODIANS: Final = {
    "custodians": {"type": "array", "items": string(USERNAME, max_length=32),
                   "minItems": 2, "maxItems": 2},
}

_READ_ALL: Final = _roles(AUDITOR)


def _card_action(name: str, summary: str, handler: object) -> Operation:
    return Operation(f"cards.{name}", "POST", f"/api/cards/{{card_id}}/{name.replace('_', '-')}",
                     summary, _roles(CARD_SERVICES), handler, "cards", True,  # type: ignore[arg-type]
                     (CARD,), statuses=(200, 202) if name == "unblock" else (200,))


OPERATIONS: Final[tuple[Operation, ...]] = (
    # -- people -------------------------------------------------------------------------------
    Operation("session.me", "GET", "/api/me", "The caller's user name and role", EVERYONE,
              staff.me, "people"),
    Operation("session.logout", "DELETE", "/api/session",
              "Revoke the caller's own session (the one change an auditor may make)",
              EVERYONE, staff.logout, "people", True),
    Operation("users.list", "GET", "/api/users", "Staff users and roles",
              _roles(SECURITY_OFFICER, AUDITOR), staff.list_users, "people"),
    Operation("users.create", "POST", "/api/users", "Create a staff user",
              _roles(SECURITY_OFFICER), staff.create_user, "people", True,
              body=obj({"username": string(USERNAME, max_length=32),
                        "role": string(enum=ROLES),
                        "password": string(max_length=256, min_length=12)}),
              statuses=(201, 202)),
    Operation("users.set_role", "POST", "/api/users/{username}/role",
              "Change a user's role (to an approving role: a second person approves)",
              _roles(SECURITY_OFFICER), staff.set_role, "people", True, (USER,),
              body=obj({"role": string(enum=ROLES)}), statuses=(200, 202)),
    Operation("users.disable", "POST", "/api/users/{username}/disable",
              "Disable a user and revoke their sessions", _roles(SECURITY_OFFICER),
              staff.disable_user, "people", True, (USER,)),
    Operation("users.enable", "POST", "/api/users/{username}/enable", "Enable a user",
              _roles(SECURITY_OFFICER), staff.enable_user, "people", True, (USER,)),
    Operation("approvals.list", "GET", "/api/approvals", "Pending dual-control requests",
              _roles(CARD_SERVICES, SECURITY_OFFICER, AUDITOR), staff.list_approvals, "people"),
    Operation("approvals.approve", "POST", "/api/approvals/{approval_id}/approve",
              "Approve as the second person (carries the operation out)",
              _roles(CARD_SERVICES, SECURITY_OFFICER), staff.approve, "people", True,
              (APPROVAL,)),
    Operation("approvals.reject", "POST", "/api/approvals/{approval_id}/reject",
              "Reject a dual-control request", _roles(CARD_SERVICES, SECURITY_OFFICER),
              staff.reject, "people", True, (APPROVAL,)),
    Operation("custody.list", "GET", "/api/custody", "Key components waiting for the caller",
              _roles(OPERATOR, CARD_SERVICES, SECURITY_OFFICER), staff.custody_list, "keys"),
    Operation("custody.collect", "POST", "/api/custody/{parcel_id}/collect",
              "Collect one key component (once)",
              _roles(OPERATOR, CARD_SERVICES, SECURITY_OFFICER), staff.custody_collect, "keys",
              True, (_path("parcel_id", integer(1, 2**62)),)),
    # -- terminals ----------------------------------------------------------------------------
    Operation("terminals.list", "GET", "/api/terminals",
              "Terminals with status, last seen, key exchange time",
              _roles(OPERATOR, AUDITOR), terminals.list_terminals, "terminals"),
    Operation("terminals.add", "POST", "/api/terminals",
              "Register a terminal; its TMK components go to two custodians",
              _roles(OPERATOR), terminals.add, "terminals", True,
              body=obj({"terminal_id": string(terminals.TERMINAL_ID_PATTERN, max_length=8)}
                       | CUSTODIANS,
                       {"key_type": string(enum=("tdes", "aes")),
                        "enabled": {"type": "boolean"}}),
              statuses=(201,)),
    Operation("terminals.enable", "POST", "/api/terminals/{terminal_id}/enable",
              "Enable a terminal", _roles(OPERATOR), terminals.enable, "terminals", True,
              (TERMINAL,)),
    Operation("terminals.disable", "POST", "/api/terminals/{terminal_id}/disable",
              "Disable a terminal", _roles(OPERATOR), terminals.disable, "terminals", True,
              (TERMINAL,)),
    Operation("keys.rotate_tmk", "POST", "/api/terminals/{terminal_id}/rotate-tmk",
              "Request a new TMK (dual control: a second security officer approves)",
              _roles(SECURITY_OFFICER), terminals.request_tmk_rotation, "keys", True,
              (TERMINAL,), body=obj(CUSTODIANS), statuses=(202,)),
    Operation("keys.list", "GET", "/api/keys", "Key check values and metadata",
              _roles(SECURITY_OFFICER, AUDITOR), reads.keys, "keys"),
    # -- cards and accounts -------------------------------------------------------------------
    Operation("cards.search", "POST", "/api/cards/search",
              "Find cards by the PAN (in the body, never the URL) or last four + account",
              _roles(CARD_SERVICES, AUDITOR), cards.search, "cards", False,
              body={"type": "object", "additionalProperties": False, "required": [],
                    "properties": {"pan": string(r"^[0-9]{12,19}$", max_length=19),
                                   "last4": string(r"^[0-9]{4}$", max_length=4),
                                   "account": string(ACCOUNT_ID)}}),
    Operation("cards.show", "GET", "/api/cards/{card_id}", "One card (masked PAN)",
              _roles(CARD_SERVICES, AUDITOR), cards.show, "cards", params=(CARD,)),
    Operation("cards.history", "GET", "/api/cards/{card_id}/history",
              "The audit trail of one card", _roles(CARD_SERVICES, AUDITOR), cards.history,
              "cards", params=(CARD,)),
    _card_action("block", "Block a card", cards.block),
    _card_action("unblock", "Unblock (a stolen card needs a second person)", cards.unblock),
    _card_action("reset_tries", "Reset the PIN try counter", cards.reset_pin_tries),
    _card_action("lost", "Report lost", cards.lost),
    _card_action("stolen", "Report stolen", cards.stolen),
    _card_action("close", "Close a card", cards.close),
    Operation("accounts.show", "GET", "/api/accounts/{account_id}", "Balances of an account",
              _roles(CARD_SERVICES, AUDITOR), accounts.show, "accounts", params=(ACCOUNT,)),
    Operation("accounts.statement", "GET", "/api/accounts/{account_id}/statement",
              "Latest entries", _roles(CARD_SERVICES, AUDITOR), accounts.statement, "accounts",
              params=(ACCOUNT, LIMIT)),
    Operation("accounts.freeze", "POST", "/api/accounts/{account_id}/freeze",
              "Freeze an account", _roles(CARD_SERVICES), accounts.freeze, "accounts", True,
              (ACCOUNT,)),
    Operation("accounts.unfreeze", "POST", "/api/accounts/{account_id}/unfreeze",
              "Unfreeze an account", _roles(CARD_SERVICES), accounts.unfreeze, "accounts", True,
              (ACCOUNT,)),
    # -- transactions and reports -------------------------------------------------------------
    Operation("transactions.search", "GET", "/api/transactions",
              "Search by terminal, date, RRN, STAN, masked PAN",
              _roles(OPERATOR, CARD_SERVICES, AUDITOR), reads.search_transactions,
              "transactions",
              params=(Param("terminal", string(terminals.TERMINAL_ID_PATTERN, max_length=8)),
                      Param("date", string(DATE, max_length=10)),
                      Param("rrn", string(r"^[0-9A-Za-z ]{1,12}$", max_length=12)),
                      Param("stan", string(r"^[0-9]{6}$", max_length=6)),
                      Param("pan", string(MASKED_PAN, max_length=19),
                            description="masked: first 6, asterisks, last 4"),
                      LIMIT)),
    Operation("transactions.show", "GET", "/api/transactions/{transaction_id}",
              "One transaction with the decision", _roles(OPERATOR, CARD_SERVICES, AUDITOR),
              reads.show_transaction, "transactions",
              params=(_path("transaction_id", integer(1, 2**62)),)),
    Operation("reports.daily", "GET", "/api/reports/daily",
              "A UTC day's volume by hour and response code",
              _roles(OPERATOR, CARD_SERVICES, AUDITOR), reads.daily_report, "reports",
              params=(Param("date", string(DATE, max_length=10)),)),
    Operation("reports.reconciliation", "GET", "/api/reports/reconciliation",
              "A UTC day's reconciliation", _roles(OPERATOR, AUDITOR), reads.reconciliation,
              "reports", params=(Param("date", string(DATE, max_length=10)),)),
    Operation("reports.audit", "GET", "/api/reports/audit", "The audit trails, newest first",
              _roles(AUDITOR, SECURITY_OFFICER), reads.audit_log, "reports",
              params=(Param("subject", string(max_length=80)),
                      Param("actor", string(USERNAME, max_length=32)), LIMIT)),
)

BY_ID: Final = {operation.operation_id: operation for operation in OPERATIONS}
if len(BY_ID) != len(OPERATIONS):
    raise RuntimeError("duplicate operation ids in the admin catalogue")
