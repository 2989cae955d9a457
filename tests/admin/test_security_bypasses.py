"""Issue 18: every bypass the review found, tried against a real admin server on PostgreSQL
through the API, and refused: one card_services user cannot make a lost, stolen or closed card
active by any sequence of operations; a security officer cannot create or promote approvers
alone, nor approve with an account they made; custodians are two independent people; and a
change whose audit row cannot be written does not happen."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.admin.conftest import PASSWORD, AdminServer
from tests.admin.test_dual_control import card_id_of

OPERATIONS = ("block", "unblock", "reset-tries", "lost", "stolen")


async def status_of(client: httpx.AsyncClient, card_id: int) -> str:
    return str((await client.get(f"/api/cards/{card_id}")).json()["status"])


async def test_stolen_block_unblock_does_not_reactivate(admin_server: AdminServer) -> None:
    token = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, token)
    async with admin_server.client(token) as client:
        assert (await client.post(f"/api/cards/{card_id}/stolen")).status_code == 200
        blocked = await client.post(f"/api/cards/{card_id}/block")
        assert blocked.status_code == 409 and "final" in blocked.json()["message"]
        unblocked = await client.post(f"/api/cards/{card_id}/unblock")
        assert unblocked.status_code == 202  # a request for a second person, nothing more
        assert await status_of(client, card_id) == "stolen"


async def test_closed_block_reset_tries_stays_closed(admin_server: AdminServer) -> None:
    token = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, token)
    async with admin_server.client(token) as client:
        assert (await client.post(f"/api/cards/{card_id}/close")).status_code == 200
        for action in ("block", "unblock", "lost", "stolen"):
            refused = await client.post(f"/api/cards/{card_id}/{action}")
            assert (refused.status_code, refused.json()["code"]) == (409, "conflict"), action
        assert (await client.post(f"/api/cards/{card_id}/reset-tries")).status_code == 200
        assert await status_of(client, card_id) == "closed"
    second = await admin_server.login("card-services-2")
    async with admin_server.client(second) as client:  # not even with a second person
        assert await status_of(client, card_id) == "closed"
        assert (await client.post(f"/api/cards/{card_id}/unblock")).status_code == 409


async def test_reset_tries_changes_only_the_counter(admin_server: AdminServer) -> None:
    token = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, token)
    await admin_server.ctx.db.execute(
        "UPDATE cards SET pin_tries = 3, status = 'blocked' WHERE card_id = $1", card_id)
    async with admin_server.client(token) as client:
        reset = (await client.post(f"/api/cards/{card_id}/reset-tries")).json()
        assert (reset["status"], reset["pin_tries"]) == ("blocked", 0)
        assert (await client.post(f"/api/cards/{card_id}/unblock")).json()["status"] == "active"


async def test_lost_card_reactivation_needs_an_independent_second_person(
    admin_server: AdminServer,
) -> None:
    first = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, first)
    async with admin_server.client(first) as client:
        await client.post(f"/api/cards/{card_id}/lost")
        approval = (await client.post(f"/api/cards/{card_id}/unblock")).json()
    second = await admin_server.login("card-services-2")
    async with admin_server.client(second) as client:
        done = await client.post(f"/api/approvals/{approval['approval_id']}/approve")
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "active" and done.json()["reported"] is None


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(["lost", "stolen", "closed"]),
       steps=st.lists(st.sampled_from(OPERATIONS), max_size=8))
def test_no_sequence_by_one_person_reactivates_a_reported_card(
        start: str, steps: list[str]) -> None:
    """The state machine itself (the same table the API uses): from lost, stolen or closed,
    one person's operations never reach active (``unblock`` only asks for a second person)."""
    from switch.authorization import card_status  # here: the module is new in issue 18

    status = start
    for step in steps:
        if step == "reset-tries":
            continue  # the counter only
        try:
            decided = card_status.decide(status, step)
        except card_status.StatusChangeRefused:
            continue
        if isinstance(decided, card_status.SecondPerson):
            continue
        status = decided
    assert status != "active" and status != "blocked"


async def test_the_database_refuses_a_reported_card_back_to_active(
    admin_server: AdminServer,
) -> None:
    """Second line: even an UPDATE outside the state machine cannot revive a reported card."""
    import asyncpg
    import pytest

    token = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, token)
    async with admin_server.client(token) as client:
        await client.post(f"/api/cards/{card_id}/stolen")
    for status in ("active", "blocked", "lost"):
        with pytest.raises(asyncpg.CheckViolationError):
            await admin_server.ctx.db.execute(
                "UPDATE cards SET status = $2 WHERE card_id = $1", card_id, status)


# -- people ------------------------------------------------------------------------------

async def create(server: AdminServer, token: str, username: str, role: str) -> httpx.Response:
    async with server.client(token) as client:
        return await client.post("/api/users", json={"username": username, "role": role,
                                                      "password": PASSWORD})


async def login_status(server: AdminServer, username: str) -> int:
    async with server.client() as client:
        answer = await client.post("/api/session",
                                   json={"username": username, "password": PASSWORD})
    return answer.status_code


async def test_an_officer_cannot_create_an_approver_alone(admin_server: AdminServer) -> None:
    officer = await admin_server.login("security-officer")
    for role in ("security_officer", "admin", "card_services"):
        name = f"new-{role.replace('_', '-')}"
        made = await create(admin_server, officer, name, role)
        assert made.status_code == 202, made.text
        assert await login_status(admin_server, name) == 401  # unusable until approved
    async with admin_server.client(officer) as client:
        mine = [a for a in (await client.get("/api/approvals")).json()
                if a["operation"] == "user.create"]
        refused = await client.post(f"/api/approvals/{mine[0]['approval_id']}/approve")
        assert refused.status_code == 403
    # An operator or auditor account needs no second person.
    assert (await create(admin_server, officer, "new-auditor", "auditor")).status_code == 201
    second = await admin_server.login("security-officer-2")
    async with admin_server.client(second) as client:
        approved = await client.post(f"/api/approvals/{mine[0]['approval_id']}/approve")
        assert approved.status_code == 200, approved.text
    assert await login_status(admin_server, "new-security-officer") == 200


async def approve_all_user_requests(server: AdminServer, approver: str) -> None:
    token = await server.login(approver)
    async with server.client(token) as client:
        for pending in (await client.get("/api/approvals")).json():
            if pending["operation"].startswith("user."):
                answer = await client.post(f"/api/approvals/{pending['approval_id']}/approve")
                assert answer.status_code == 200, answer.text


async def test_an_account_the_requester_made_cannot_approve_for_them(
    admin_server: AdminServer,
) -> None:
    # The review's attack: officer A creates officer B (approved by a second officer), then B
    # approves A's TMK rotation. Refused: B's account was created by A.
    officer = await admin_server.login("security-officer")
    assert (await create(admin_server, officer, "puppet", "security_officer")).status_code == 202
    await approve_all_user_requests(admin_server, "security-officer-2")
    operator = await admin_server.login("operator")
    async with admin_server.client(operator) as client:
        added = await client.post("/api/terminals", json={
            "terminal_id": "ATM00077", "custodians": ["operator", "card-services"]})
        assert added.status_code == 201, added.text
    async with admin_server.client(officer) as client:
        asked = await client.post("/api/terminals/ATM00077/rotate-tmk",
                                  json={"custodians": ["operator", "card-services"]})
        assert asked.status_code == 202
    puppet = await admin_server.login("puppet")
    async with admin_server.client(puppet) as client:
        refused = await client.post(f"/api/approvals/{asked.json()['approval_id']}/approve")
        assert refused.status_code == 403 and "created or changed" in refused.json()["message"]
    # ... and the other way round: A may not approve what B asks.
    async with admin_server.client(puppet) as client:
        asked_by_puppet = await client.post("/api/terminals/ATM00077/rotate-tmk",
                                            json={"custodians": ["operator", "card-services"]})
    async with admin_server.client(officer) as client:
        refused = await client.post(
            f"/api/approvals/{asked_by_puppet.json()['approval_id']}/approve")
        assert refused.status_code == 403


async def test_custodians_must_be_two_independent_people(admin_server: AdminServer) -> None:
    officer = await admin_server.login("security-officer")
    assert (await create(admin_server, officer, "helper-op", "operator")).status_code == 201
    async with admin_server.client(officer) as client:
        refused = await client.post("/api/terminals/ATM00001/rotate-tmk",
                                    json={"custodians": ["security-officer", "helper-op"]})
    assert refused.status_code in (403, 404)  # 404 when the terminal is unknown: check both
    operator = await admin_server.login("operator")
    async with admin_server.client(operator) as client:
        refused = await client.post("/api/terminals", json={
            "terminal_id": "ATM00078", "custodians": ["security-officer", "helper-op"]})
        assert refused.status_code == 403, refused.text
        assert "independent" in refused.json()["message"]
        listed = (await client.get("/api/terminals")).json()
    assert "ATM00078" not in str(listed)  # refused before anything was made


async def test_promoting_to_an_approving_role_needs_a_second_person(
    admin_server: AdminServer,
) -> None:
    officer = await admin_server.login("security-officer")
    async with admin_server.client(officer) as client:
        asked = await client.post("/api/users/operator/role", json={"role": "admin"})
        assert asked.status_code == 202
        users: list[dict[str, Any]] = (await client.get("/api/users")).json()
        assert {u["username"]: u["role"] for u in users}["operator"] == "operator"
        refused = await client.post(f"/api/approvals/{asked.json()['approval_id']}/approve")
        assert refused.status_code == 403
    await approve_all_user_requests(admin_server, "security-officer-2")
    async with admin_server.client(officer) as client:
        users = (await client.get("/api/users")).json()
        assert {u["username"]: u["role"] for u in users}["operator"] == "admin"
    # The officer changed operator's role: operator (now admin) cannot approve for them.
    async with admin_server.client(officer) as client:
        asked = await client.post("/api/users/auditor/role", json={"role": "security_officer"})
    promoted = await admin_server.login("operator")
    async with admin_server.client(promoted) as client:
        refused = await client.post(f"/api/approvals/{asked.json()['approval_id']}/approve")
        assert refused.status_code == 403


# -- audit in the same transaction --------------------------------------------------------

async def test_a_change_whose_audit_row_fails_does_not_happen(
    admin_server: AdminServer,
) -> None:
    """A trigger makes the audit insert fail for one action: the API answers 500 and the
    card is unchanged (before issue 18 the block committed first, then the audit failed)."""
    db = admin_server.ctx.db
    await db.execute(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.action = 'card.status.blocked' THEN RAISE EXCEPTION 'audit disk full'; END IF;"
        " RETURN NEW; END $$")
    await db.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON admin_audit FOR EACH ROW"
                     " EXECUTE FUNCTION refuse_audit()")
    token = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, token)
    async with admin_server.client(token) as client:
        failed = await client.post(f"/api/cards/{card_id}/block")
        assert failed.status_code == 500
        assert await status_of(client, card_id) == "active"
        lost = await client.post(f"/api/cards/{card_id}/lost")  # other actions still work
        assert lost.status_code == 200
    card_rows = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE subject = $1 AND action = 'card.status.blocked'",
        f"card:{card_id}")
    assert card_rows == 0  # the CLI-side audit row rolled back with the change
