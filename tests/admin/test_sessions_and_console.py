"""Sessions expire and are revoked; logins are throttled; the console's cookies are HTTP-only,
SameSite=Strict and Secure, and a form without the session's CSRF token changes nothing;
no response of any read operation contains a clear PAN."""

from __future__ import annotations

import re

import httpx

from tests.admin.conftest import PAN, PASSWORD, SECOND_PAN, AdminServer


async def test_logout_revokes_and_expiry_ends_a_token(admin_server: AdminServer) -> None:
    token = await admin_server.login("auditor")
    async with admin_server.client(token) as client:
        assert (await client.get("/api/me")).json() == {"username": "auditor",
                                                        "role": "auditor"}
        assert (await client.delete("/api/session")).status_code == 200
        assert (await client.get("/api/me")).status_code == 401
    token = await admin_server.login("auditor")
    await admin_server.ctx.db.execute(
        "UPDATE admin_sessions SET expires_at = now() - interval '1 second'"
        " WHERE revoked_at IS NULL")
    async with admin_server.client(token) as client:
        assert (await client.get("/api/me")).status_code == 401


async def test_disabling_a_user_ends_their_sessions(admin_server: AdminServer) -> None:
    victim = await admin_server.login("operator")
    officer = await admin_server.login("security-officer")
    async with admin_server.client(officer) as client:
        assert (await client.post("/api/users/operator/disable")).json()["disabled"] is True
    async with admin_server.client(victim) as client:
        assert (await client.get("/api/terminals")).status_code == 401
    async with admin_server.client() as client:
        refused = await client.post("/api/session",
                                    json={"username": "operator", "password": PASSWORD})
        assert refused.status_code == 401


async def test_wrong_passwords_lock_the_account(admin_server: AdminServer) -> None:
    async with admin_server.client() as client:
        for _ in range(5):
            wrong = await client.post("/api/session",
                                      json={"username": "auditor", "password": "not it at all"})
            assert wrong.status_code == 401
        locked = await client.post("/api/session",
                                   json={"username": "auditor", "password": PASSWORD})
        assert (locked.status_code, locked.json()["code"]) == (429, "throttled")


async def test_console_cookies_and_csrf(admin_server: AdminServer) -> None:
    async with admin_server.client() as client:
        answer = await client.post("/login", data={"username": "card-services",
                                                   "password": PASSWORD, "next": "/cards"})
        assert answer.status_code == 303
        cookies = answer.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("atm_admin_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" in session
        token = session.split(";", 1)[0].split("=", 1)[1]
        client.cookies.set("atm_admin_session", token)
        found = await client.post("/cards", data={"pan": PAN, "csrf": "forged"})
        assert found.status_code == 403
        card_id = await admin_server.ctx.db.fetchval("SELECT min(card_id) FROM cards")
        forged = await client.post("/do", data={"op": "cards.block", "card_id": str(card_id),
                                                "csrf": "forged", "back": "/"})
        assert forged.status_code == 403
        status = await admin_server.ctx.db.fetchval(
            "SELECT status FROM cards WHERE card_id = $1", card_id)
        assert status == "active"
        assert (await client.get("/cards")).status_code == 200
    async with admin_server.client() as anonymous:
        redirected = await anonymous.get("/cards")
        assert redirected.status_code == 303 and redirected.headers["location"].startswith(
            "/login")


async def test_no_read_operation_shows_a_clear_pan(admin_server: AdminServer) -> None:
    token = await admin_server.login("admin")
    card_id = await admin_server.ctx.db.fetchval("SELECT min(card_id) FROM cards")
    values = {"card_id": str(card_id), "account_id": "ACC1", "terminal_id": "ATM00001",
              "username": "auditor", "approval_id": "1", "parcel_id": "1",
              "transaction_id": "1"}
    async with admin_server.client(token) as client:
        document = (await client.get("/api/openapi.json")).json()
        seen = 0
        for path, methods in document["paths"].items():
            if "get" not in methods:
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            text = (await client.get(url)).text
            assert PAN not in text and SECOND_PAN not in text, path
            seen += 1
        searched = await client.post("/api/cards/search", json={"pan": PAN})
        assert PAN not in searched.text and "622588******6789" in searched.text
    assert seen >= 15


async def console_client(server: AdminServer, username: str) -> tuple[httpx.AsyncClient, str]:
    """An HTTP client holding a console session, and the session's CSRF token."""
    client = server.client()
    answer = await client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    for name in ("atm_admin_session", "atm_admin_csrf"):
        client.cookies.set(name, answer.cookies[name])
    return client, answer.cookies["atm_admin_csrf"]


async def test_console_users_terminals_and_custody(admin_server: AdminServer) -> None:
    officer, csrf = await console_client(admin_server, "security-officer")
    made = await officer.post("/users", data={"csrf": csrf, "username": "dora",
                                              "role": "operator", "password": PASSWORD})
    assert made.status_code == 303
    assert "dora" in (await officer.get("/users")).text
    operator, csrf = await console_client(admin_server, "operator")
    added = await operator.post("/terminals/add", data={
        "csrf": csrf, "terminal_id": "ATM00077", "key_type": "aes",
        "custodian1": "operator", "custodian2": "dora"})
    assert added.status_code == 303, added.text
    page = (await operator.get("/terminals")).text
    assert "ATM00077" in page
    waiting = (await operator.get("/custody")).text
    parcel_id = re.search(r'name="parcel_id" value="(\d+)"', waiting)
    assert parcel_id is not None
    collected = await operator.post("/custody", data={"csrf": csrf,
                                                      "parcel_id": parcel_id.group(1)})
    value = re.search(r'<code id="component-value">([0-9A-F]{32})</code>', collected.text)
    assert value is not None
    again = await operator.post("/custody", data={"csrf": csrf,
                                                  "parcel_id": parcel_id.group(1)})
    assert again.status_code == 404 and value.group(1) not in again.text
    refused = await operator.post("/users", data={"csrf": csrf, "username": "eve",
                                                  "role": "admin", "password": PASSWORD})
    assert refused.status_code == 403  # the console has the API's roles
    await operator.aclose()
    assert await admin_server.ctx.db.fetchval(
        "SELECT count(*) FROM admin_users WHERE username = 'eve'") == 0
