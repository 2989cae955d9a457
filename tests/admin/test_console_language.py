"""The console as an operator reads it (issue 20), over HTTP against the real admin server:
every column heading and coded value in the page's language from the one catalogue, money
with its currency, RRN and MTI on the transactions page (a 0420 with its reason, so a
reversal does not read as an approved withdrawal), the latest transactions before any search,
page titles naming the product once, and a change to the state a thing already has refused
(409), reported as "nothing changed" and not audited."""

from __future__ import annotations

import html
import re

from switch.admin.console_text import COLUMNS, LANGUAGES, TEXT, VALUES
from tests.admin.conftest import PAN, AdminServer, record_reversal, record_transactions
from tests.admin.test_sessions_and_console import console_client

PAGES = ("/", "/terminals", "/transactions", "/accounts?account_id=ACC1", "/keys", "/users",
         "/approvals", "/audit", "/custody", "/cards")
# Python values, JSON keys, dotted event names (card.status.blocked)
RAW = re.compile(r"\b(?:True|False|None)\b|[{}]|\b[a-z]+_[a-z_]+\b|\b[a-z]+\.[a-z_.]+\b")


def visible_text(page: str) -> str:
    """What a person sees: the body without tags, hidden inputs' values or attributes."""
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def english_words_on(text: str) -> list[str]:
    """English labels of the catalogue that a Chinese page shows (headings, values)."""
    index = LANGUAGES.index("zh")
    found = []
    for table in (COLUMNS, VALUES, TEXT):
        for pair in table.values():  # type: ignore[attr-defined]
            english, chinese = pair[0], pair[index]
            if english != chinese and english not in chinese and len(english) > 3 \
                    and re.search(rf"(?<![A-Za-z]){re.escape(english)}(?![A-Za-z])", text):
                found.append(english)
    return found


async def seeded(server: AdminServer) -> None:
    db = server.ctx.db
    await db.execute("INSERT INTO terminals (terminal_id, status, key_type) VALUES"
                     " ('ATM00001', 'enabled', 'tdes')")
    await record_transactions(db, 5)
    await record_reversal(db, "000099", "000000000777", "32")


async def test_chinese_pages_show_no_column_names_nor_raw_values(
    admin_server: AdminServer
) -> None:
    await seeded(admin_server)
    # The test's users are named after their roles: names are data, not labels.
    people = sorted((row["username"] for row in await admin_server.ctx.db.fetch(
        "SELECT username FROM admin_users")), key=len, reverse=True)
    card_id = await admin_server.ctx.db.fetchval("SELECT min(card_id) FROM cards")
    client, _ = await console_client(admin_server, "admin")
    try:
        for path in (*PAGES, f"/cards/{card_id}"):
            page = await client.get(path, params={"lang": "zh"})
            assert page.status_code == 200, (path, page.text)
            text = visible_text(page.text)
            for name in people:
                text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", " ", text)
            assert not RAW.findall(text), (path, RAW.findall(text))
            assert not english_words_on(text), (path, english_words_on(text))
            title = re.search(r"<title>(.*?)</title>", page.text)
            assert title is not None and title.group(1).count("ATM 交换后台") == 1, path
        account = visible_text((await client.get("/accounts", params={
            "account_id": "ACC1", "lang": "zh"})).text)
        assert "1,000.00 元" in account  # 100_000 fen, not "ledger_balance 100000"
        english = visible_text((await client.get("/accounts", params={
            "account_id": "ACC1", "lang": "en"})).text)
        assert "CNY 1,000.00" in english and "Ledger balance" in english
    finally:
        await client.aclose()


async def test_transactions_page_shows_recent_ones_with_rrn_mti_and_reason(
    admin_server: AdminServer
) -> None:
    await seeded(admin_server)
    client, _ = await console_client(admin_server, "operator")
    try:
        page = (await client.get("/transactions", params={"lang": "en"})).text
        rows = re.findall(r'<tr class="mti-(\d{4})">(.*?)</tr>', page, flags=re.S)
        assert len(rows) == 6  # before any search: the latest, not "Nothing to show"
        reversal = visible_text("<body>" + next(r for m, r in rows if m == "0420"))
        assert "0420 reversal" in reversal and "32 partial dispense" in reversal
        assert "000000000777" in reversal  # the RRN from its column, not "—"
        withdrawals = [visible_text("<body>" + r) for m, r in rows if m == "0200"]
        assert all("0200 request" in w and "withdrawal" in w for w in withdrawals)
        assert sum("00 approved" in w for w in withdrawals) == 4
        assert "51 insufficient funds" in withdrawals[0] and "CNY 500.00" in withdrawals[0]
        found = (await client.get("/transactions", params={"rrn": "000000000777"})).text
        assert found.count('<tr class="mti-') == 1
    finally:
        await client.aclose()


async def test_blocking_a_blocked_card_is_refused_and_not_audited(
    admin_server: AdminServer
) -> None:
    db = admin_server.ctx.db
    card_id = await db.fetchval("SELECT min(card_id) FROM cards")
    token = await admin_server.login("card-services")
    async with admin_server.client(token) as api:
        assert (await api.post(f"/api/cards/{card_id}/block")).status_code == 200
        again = await api.post(f"/api/cards/{card_id}/block")
        assert again.status_code == 409 and "already blocked" in again.json()["message"]
        assert (await api.post("/api/accounts/ACC1/freeze")).status_code == 200
        assert (await api.post("/api/accounts/ACC1/freeze")).status_code == 409
    client, csrf = await console_client(admin_server, "card-services")
    try:
        answer = await client.post("/do", data={"csrf": csrf, "op": "cards.block",
                                                "card_id": str(card_id),
                                                "back": f"/cards/{card_id}"},
                                   follow_redirects=False)
        assert answer.status_code == 303 and "msg=unchanged" in answer.headers["location"]
        page = (await client.get(answer.headers["location"] + "&lang=zh")).text
        assert "未作更改" in page
    finally:
        await client.aclose()
    admin_rows = await db.fetchval(
        "SELECT count(*) FROM admin_audit WHERE action = 'card.status.blocked'")
    cli_rows = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'card.status.blocked'")
    assert (admin_rows, cli_rows) == (1, 1)  # one change, audited once on each trail
    freezes = await db.fetchval(
        "SELECT count(*) FROM admin_audit WHERE action = 'account.status.frozen'")
    assert freezes == 1


async def test_the_pan_stays_masked_on_the_new_columns(admin_server: AdminServer) -> None:
    await seeded(admin_server)
    client, _ = await console_client(admin_server, "auditor")
    try:
        page = (await client.get("/transactions")).text
    finally:
        await client.aclose()
    assert PAN not in page and "622588******6789" in page
