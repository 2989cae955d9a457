"""The admin API end to end over TCP: login, a card found by the PAN in a body and blocked,
the change in the audit trail, errors as JSON, PANs masked everywhere."""

from __future__ import annotations

import datetime as dt

from tests.admin.conftest import PAN, AdminServer, record_transactions


async def test_card_services_blocks_a_card_and_the_audit_shows_it(
    admin_server: AdminServer,
) -> None:
    token = await admin_server.login("card-services")
    async with admin_server.client(token) as client:
        found = await client.post("/api/cards/search", json={"pan": PAN})
        assert found.status_code == 200, found.text
        assert PAN not in found.text
        [card] = found.json()
        assert card["pan"] == "622588******6789"
        blocked = await client.post(f"/api/cards/{card['card_id']}/block")
        assert blocked.status_code == 200, blocked.text
        assert blocked.json()["status"] == "blocked"
    auditor = await admin_server.login("auditor")
    async with admin_server.client(auditor) as client:
        trail = (await client.get("/api/reports/audit")).json()["admin"]
    change = next(row for row in trail if row["action"] == "card.status.blocked")
    assert change["actor"] == "card-services"
    assert change["role"] == "card_services"
    assert change["address"] == "127.0.0.1"
    assert change["before"]["status"] == "active"
    assert change["after"]["status"] == "blocked"


async def test_errors_are_json_with_a_code(admin_server: AdminServer) -> None:
    async with admin_server.client() as client:
        anonymous = await client.get("/api/terminals")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "unauthenticated"
        wrong = await client.post("/api/session", json={"username": "auditor", "password": "x"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthenticated")
        missing = await client.get("/nowhere")
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    token = await admin_server.login("card-services")
    async with admin_server.client(token) as client:
        bad = await client.post("/api/cards/search", json={"pan": "12"})
        assert (bad.status_code, bad.json()["code"]) == (400, "invalid_field")
        forbidden = await client.get("/api/keys")
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")


async def test_transactions_search_detail_and_daily_report(admin_server: AdminServer) -> None:
    await record_transactions(admin_server.ctx.db, 10)
    token = await admin_server.login("operator")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    async with admin_server.client(token) as client:
        by_pan = (await client.get("/api/transactions",
                                   params={"pan": "622588******6789", "date": today})).json()
        assert len(by_pan) == 10 and {t["pan"] for t in by_pan} == {"622588******6789"}
        [by_rrn] = (await client.get("/api/transactions", params={"rrn": "000000000005"})).json()
        assert (by_rrn["stan"], by_rrn["response_code"]) == ("000005", "51")
        [by_stan] = (await client.get("/api/transactions", params={"stan": "000003"})).json()
        detail = (await client.get(f"/api/transactions/{by_stan['id']}")).json()
        assert detail["decision"] == {"hold_id": 3}
        assert (await client.get("/api/transactions",
                                 params={"pan": PAN})).status_code == 400  # masked only
        daily = (await client.get("/api/reports/daily", params={"date": today})).json()
    assert daily["requests"] == 10
    assert daily["by_response_code"] == {"00": 8, "51": 2}
    assert daily["approved_amount_minor"] == 10_000 * sum(n for n in range(1, 11) if n % 5)
