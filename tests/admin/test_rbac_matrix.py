"""Role-based access: every role against every operation of the OpenAPI document.

The expected matrix below is written by hand from issue 13's role descriptions, not read from
the implementation; the test fails if the document has an operation the matrix lacks (so a new
endpoint cannot be forgotten), if the document's ``x-roles`` disagree, or if the server lets a
role through that the matrix refuses (403 expected) or refuses one it allows. Anonymous callers
get 401 everywhere but login and health, and an auditor is refused every change.
"""

from __future__ import annotations

import re
from typing import Any

from tests.admin.conftest import PASSWORD, AdminServer

OP, CS, AU, SO, AD = "operator", "card_services", "auditor", "security_officer", "admin"
ALL = {OP, CS, AU, SO, AD}

EXPECTED: dict[str, set[str]] = {
    "session.me": ALL,
    "session.logout": ALL,
    "users.list": {SO, AU, AD},
    "users.create": {SO, AD},
    "users.disable": {SO, AD},
    "users.enable": {SO, AD},
    "users.set_role": {SO, AD},  # issue 18
    "approvals.list": {CS, SO, AU, AD},
    "approvals.approve": {CS, SO, AD},
    "approvals.reject": {CS, SO, AD},
    "custody.list": {OP, CS, SO, AD},
    "custody.collect": {OP, CS, SO, AD},
    "terminals.list": {OP, AU, AD},
    "terminals.add": {OP, AD},
    "terminals.enable": {OP, AD},
    "terminals.disable": {OP, AD},
    "keys.rotate_tmk": {SO, AD},
    "keys.list": {SO, AU, AD},
    "cards.search": {CS, AU, AD},
    "cards.show": {CS, AU, AD},
    "cards.history": {CS, AU, AD},
    "cards.block": {CS, AD},
    "cards.unblock": {CS, AD},
    "cards.reset_tries": {CS, AD},
    "cards.lost": {CS, AD},
    "cards.stolen": {CS, AD},
    "cards.close": {CS, AD},
    "accounts.show": {CS, AU, AD},
    "accounts.statement": {CS, AU, AD},
    "accounts.freeze": {CS, AD},
    "accounts.unfreeze": {CS, AD},
    "transactions.search": {OP, CS, AU, AD},
    "transactions.show": {OP, CS, AU, AD},
    "reports.daily": {OP, CS, AU, AD},
    "reports.reconciliation": {OP, AU, AD},
    "reports.audit": {AU, SO, AD},
}
ANONYMOUS = {"session.login", "health"}

# Targets that do not exist, so an allowed call answers 404 and changes nothing.
PATH_VALUES = {"terminal_id": "NOPE0001", "card_id": "999999", "account_id": "NOPE",
               "username": "nobody-x", "approval_id": "999999", "parcel_id": "999999",
               "transaction_id": "999999"}


def body_for(operation_id: str, role: str) -> dict[str, Any] | None:
    bodies: dict[str, dict[str, Any]] = {
        "users.create": {"username": f"new-{role.replace('_', '-')}", "role": "auditor",
                         "password": PASSWORD},
        "terminals.add": {"terminal_id": f"T{role[:7].upper()}",
                          "custodians": ["operator", "security-officer"]},
        "keys.rotate_tmk": {"custodians": ["operator", "security-officer"]},
        "cards.search": {"last4": "6789", "account": "ACC1"},
        "users.set_role": {"role": "auditor"},
    }
    return bodies.get(operation_id)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, spec) for path, methods in document["paths"].items()
            for method, spec in methods.items()]


async def call(server: AdminServer, token: str | None, method: str, path: str,
               operation_id: str, role: str) -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    async with server.client(token) as client:
        answer = await client.request(method, url, json=body_for(operation_id, role))
    if answer.status_code >= 400:
        assert set(answer.json()) == {"code", "message"}, answer.text
    return answer.status_code


async def document(server: AdminServer) -> dict[str, Any]:
    token = await server.login("auditor")
    async with server.client(token) as client:
        answer = await client.get("/api/openapi.json")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


async def test_every_role_against_every_operation(admin_server: AdminServer) -> None:
    doc = await document(admin_server)
    listed = {spec["operationId"] for _, _, spec in operations(doc)}
    assert listed - ANONYMOUS == set(EXPECTED), "operations without an expected role row"
    tokens = {role: await admin_server.login(role.replace("_", "-")) for role in ALL}
    checked = 0
    for method, path, spec in operations(doc):
        operation_id = spec["operationId"]
        if operation_id in ANONYMOUS:
            continue
        assert set(spec["x-roles"]) == EXPECTED[operation_id], operation_id
        for role in sorted(ALL):
            token = tokens[role]
            if operation_id == "session.logout":  # would end the session the matrix uses
                token = await admin_server.login(role.replace("_", "-"))
            status = await call(admin_server, token, method, path, operation_id, role)
            if role in EXPECTED[operation_id]:
                assert status not in (401, 403), (operation_id, role, status)
            else:
                assert status == 403, (operation_id, role, status)
            checked += 1
    assert checked == len(EXPECTED) * len(ALL)


async def test_anonymous_callers_get_401_except_login_and_health(
    admin_server: AdminServer,
) -> None:
    doc = await document(admin_server)
    for method, path, spec in operations(doc):
        operation_id = spec["operationId"]
        for token in (None, "forged-token"):
            status = await call(admin_server, token, method, path, operation_id, "anonymous")
            if operation_id in ANONYMOUS:
                assert status != 401, operation_id
            else:
                assert status == 401, (operation_id, token, status)
    async with admin_server.client() as client:
        assert (await client.get("/api/openapi.json")).status_code == 401


async def test_an_auditor_is_refused_every_change(admin_server: AdminServer) -> None:
    doc = await document(admin_server)
    token = await admin_server.login("auditor")
    changing = [(m, p, s) for m, p, s in operations(doc)
                if s.get("x-changes") and s["operationId"] != "session.logout"]
    # Every change but logout is outside the auditor's row (custody.list is a read it lacks).
    changing_ids = {spec["operationId"] for _, _, spec in changing}
    assert changing_ids == {op for op, roles in EXPECTED.items() if AU not in roles} - {
        "custody.list"}
    for method, path, spec in changing:
        status = await call(admin_server, token, method, path, spec["operationId"], "auditor")
        assert status == 403, spec["operationId"]
