"""Dual control: unblocking a stolen card and rotating a terminal master key need a second,
different person of the right role within the approval window; key components reach only
their named custodians, once each, and never the audit trail."""

from __future__ import annotations

from tests.admin.conftest import PAN, AdminServer


async def card_id_of(server: AdminServer, token: str) -> int:
    async with server.client(token) as client:
        [card] = (await client.post("/api/cards/search", json={"pan": PAN})).json()
    return int(card["card_id"])


async def test_unblocking_a_stolen_card_needs_a_second_card_services_user(
    admin_server: AdminServer,
) -> None:
    first = await admin_server.login("card-services")
    second = await admin_server.login("card-services-2")
    officer = await admin_server.login("security-officer")
    card_id = await card_id_of(admin_server, first)
    async with admin_server.client(first) as client:
        assert (await client.post(f"/api/cards/{card_id}/stolen")).json()["status"] == "stolen"
        asked = await client.post(f"/api/cards/{card_id}/unblock")
        assert asked.status_code == 202
        approval = asked.json()
        assert approval["state"] == "pending"
        assert (await client.get(f"/api/cards/{card_id}")).json()["status"] == "stolen"
        self_approved = await client.post(f"/api/approvals/{approval['approval_id']}/approve")
        assert (self_approved.status_code, self_approved.json()["code"]) == (403, "forbidden")
    async with admin_server.client(officer) as client:  # wrong role for a card operation
        wrong_role = await client.post(f"/api/approvals/{approval['approval_id']}/approve")
        assert wrong_role.status_code == 403
    async with admin_server.client(second) as client:
        approved = await client.post(f"/api/approvals/{approval['approval_id']}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "active"
        again = await client.post(f"/api/approvals/{approval['approval_id']}/approve")
        assert again.status_code == 409
    auditor = await admin_server.login("auditor")
    async with admin_server.client(auditor) as client:
        trail = (await client.get("/api/reports/audit",
                                  params={"subject": f"card:{card_id}"})).json()["admin"]
    by_action = {row["action"]: row for row in trail}
    assert by_action["approval.request"]["actor"] == "card-services"
    assert by_action["card.status.active"]["actor"] == "card-services-2"


async def test_an_expired_request_cannot_be_approved(admin_server: AdminServer) -> None:
    first = await admin_server.login("card-services")
    card_id = await card_id_of(admin_server, first)
    async with admin_server.client(first) as client:
        await client.post(f"/api/cards/{card_id}/stolen")
        approval = (await client.post(f"/api/cards/{card_id}/unblock")).json()
    await admin_server.ctx.db.execute(
        "UPDATE admin_approvals SET expires_at = now() - interval '1 second'"
        " WHERE approval_id = $1", approval["approval_id"])
    second = await admin_server.login("card-services-2")
    async with admin_server.client(second) as client:
        late = await client.post(f"/api/approvals/{approval['approval_id']}/approve")
        assert late.status_code == 409
        assert (await client.get(f"/api/cards/{card_id}")).json()["status"] == "stolen"


async def test_tmk_rotation_by_two_officers_delivers_one_component_to_each_custodian(
    admin_server: AdminServer,
) -> None:
    operator = await admin_server.login("operator")
    async with admin_server.client(operator) as client:
        added = await client.post("/api/terminals", json={
            "terminal_id": "ATM00042", "custodians": ["operator", "security-officer"]})
        assert added.status_code == 201, added.text
        first_kcv = added.json()["tmk_kcv"]
        assert "component" not in added.text.lower().replace("custodians", "")
        [parcel] = (await client.get("/api/custody")).json()
        collected = await client.post(f"/api/custody/{parcel['parcel_id']}/collect")
        assert collected.status_code == 200
        component = collected.json()["component_value"]
        assert len(component) == 32
        assert (await client.post(f"/api/custody/{parcel['parcel_id']}/collect")).status_code \
            == 404  # once only
    officer = await admin_server.login("security-officer")
    async with admin_server.client(officer) as client:
        [theirs] = (await client.get("/api/custody")).json()
        assert theirs["parcel_id"] != parcel["parcel_id"]
        asked = await client.post("/api/terminals/ATM00042/rotate-tmk",
                                  json={"custodians": ["operator", "security-officer"]})
        assert asked.status_code == 202
        self_approved = await client.post(
            f"/api/approvals/{asked.json()['approval_id']}/approve")
        assert self_approved.status_code == 403
    second = await admin_server.login("security-officer-2")
    async with admin_server.client(second) as client:
        done = await client.post(f"/api/approvals/{asked.json()['approval_id']}/approve")
        assert done.status_code == 200, done.text
        assert done.json()["tmk_kcv"] != first_kcv
    auditor = await admin_server.login("auditor")
    async with admin_server.client(auditor) as client:
        trail = await client.get("/api/reports/audit", params={"limit": 500})
    assert component not in trail.text  # a component value never reaches the audit trail
    assert "key.component.collect" in trail.text
