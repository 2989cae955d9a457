"""The web console: server-rendered pages (Jinja2) for the same operations as the API.

Every page and every button goes through :func:`switch.admin.api.invoke`, so the console has
exactly the API's roles, validation and audit. Sessions are HTTP-only, SameSite=Strict cookies
(``Secure`` unless ``--insecure-cookies``), and every form that changes anything carries a CSRF
token checked against the session's stored hash. Nothing is fetched from the internet: the CSS
ships in the package and charts are inline SVG. Pages are in English or Chinese (``lang``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from switch.admin import audit, charts, sessions, users
from switch.admin.api import SECURITY_HEADERS, client_address, invoke
from switch.admin.catalogue import BY_ID
from switch.admin.console_format import cell, column, value_words
from switch.admin.console_text import LANGUAGES, texts
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError, Unchanged
from switch.admin.operations import Changed
from switch.admin.roles import ROLES
from switch.admin.throttle import LoginThrottle

HERE: Final = Path(__file__).parent
SESSION_COOKIE: Final = "atm_admin_session"
LANG_COOKIE: Final = "atm_admin_lang"
FORM_BYTES_MAX: Final = 16 * 1024
RECENT_TRANSACTIONS: Final = 50  # the transactions page before any search
NAV: Final = (  # page, the operation that must be allowed to show it
    ("dashboard", "/", "reports.daily"),
    ("terminals", "/terminals", "terminals.list"),
    ("cards", "/cards", "cards.search"),
    ("accounts", "/accounts", "accounts.show"),
    ("transactions", "/transactions", "transactions.search"),
    ("approvals", "/approvals", "approvals.list"),
    ("keys", "/keys", "keys.list"),
    ("custody", "/custody", "custody.list"),
    ("users", "/users", "users.list"),
    ("audit", "/audit", "reports.audit"),
)
CONSOLE_ACTIONS: Final = frozenset({
    "cards.block", "cards.unblock", "cards.reset_tries", "cards.lost", "cards.stolen",
    "cards.close", "terminals.enable", "terminals.disable", "accounts.freeze",
    "accounts.unfreeze", "approvals.approve", "approvals.reject", "users.disable",
    "users.enable",
})

_ENV: Final = Environment(loader=FileSystemLoader(HERE / "templates"),
                          autoescape=select_autoescape(default=True))


class Page:
    """Per-request helpers: language, principal, CSRF token, rendering."""

    def __init__(self, ctx: AdminContext, request: Request,
                 principal: sessions.Principal | None) -> None:
        self.ctx, self.request, self.principal = ctx, request, principal
        wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "en")
        self.lang = wanted if wanted in LANGUAGES else "en"
        self.t = texts(self.lang)

    def may(self, operation_id: str) -> bool:
        return self.principal is not None and self.principal.role in BY_ID[operation_id].roles

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        nav = [(self.t[name], href) for name, href, op in NAV if self.may(op)]
        # The tab's title: the page's own name, then the product's once.
        values.setdefault("title", next((self.t[name] for name, href, _ in NAV
                                         if href == self.request.url.path), None))
        language = self.lang
        html = _ENV.get_template(template).render(
            col=lambda name: column(name, language),
            cell=lambda name, value, row=None: cell(name, value, language, row),
            words=lambda name, value: value_words(name, value, language) or "",
            t=self.t, lang=self.lang, principal=self.principal, nav=nav, may=self.may,
            csrf=self.request.cookies.get("atm_admin_csrf", ""), path=self.request.url.path,
            message=self.request.query_params.get("msg"), **values)
        response = HTMLResponse(html, status, headers=SECURITY_HEADERS)
        response.set_cookie(LANG_COOKIE, self.lang, httponly=True, samesite="strict",
                            secure=self.ctx.secure_cookies)
        return response

    async def call(self, operation_id: str, params: dict[str, str] | None = None,
                   body: Any = None) -> Any:
        assert self.principal is not None
        result = await invoke(self.ctx, self.principal, BY_ID[operation_id], params or {}, body)
        return result.response if isinstance(result, Changed) else result


async def _principal(ctx: AdminContext, request: Request) -> sessions.Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await sessions.resolve(ctx.db, token, kind="console", address=client_address(request))


async def _form(request: Request) -> dict[str, str]:
    if int(request.headers.get("content-length") or 0) > FORM_BYTES_MAX:
        raise ApiError("payload_too_large", "form too large")
    form = await request.form(max_files=0, max_fields=20)
    return {key: str(value) for key, value in form.items()}


def _local(path: str) -> str:
    """Only a path on this site (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def console_routes(ctx: AdminContext) -> list[BaseRoute]:
    throttle = LoginThrottle()

    def page(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            principal = await _principal(ctx, request)
            if principal is None:
                return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
            view = Page(ctx, request, principal)
            if request.method == "POST":
                form = await _form(request)
                if not sessions.csrf_matches(principal, form.get("csrf")):
                    return view.render("message.html", 403, title=view.t["error"],
                                       text="CSRF")
                request.state.form = form
            try:
                response: Response = await handler(view)
                return response
            except ApiError as exc:
                return view.render("message.html", exc.status, title=view.t["error"],
                                   text=exc.message)

        return endpoint

    async def login_form(request: Request) -> Response:
        return Page(ctx, request, None).render("login.html", next=request.query_params.get(
            "next", "/"))

    async def login(request: Request) -> Response:
        view = Page(ctx, request, None)
        address = client_address(request) or "unknown"
        form = await _form(request)
        error = None
        if not throttle.allow(address):
            error = "throttled"
        else:
            try:
                user = await users.authenticate(ctx.db, form.get("username", "")[:64],
                                                form.get("password", "")[:256])
            except users.LoginRefused as exc:
                error = str(exc)
        if error is not None:
            return view.render("login.html", 401, error=error, next="/")
        principal = sessions.Principal(user.username, user.role, "console", address)
        async with ctx.db.transaction() as tx:  # the session and its audit row together
            made = await sessions.open_session(tx, user, kind="console", address=address)
            await audit.record(tx, principal, action="session.login",
                               subject=f"user:{user.username}", before=None,
                               after={"kind": "console"})
        response = RedirectResponse(_local(form.get("next", "/")), 303)
        cookie = {"httponly": True, "samesite": "strict", "secure": ctx.secure_cookies,
                  "max_age": made.expires_in_s}
        response.set_cookie(SESSION_COOKIE, made.token, **cookie)  # type: ignore[arg-type]
        # The CSRF token is echoed into forms by the server; the cookie only carries it to the
        # page renderer (HTTP-only too), the check is against the session's stored hash.
        response.set_cookie("atm_admin_csrf", made.csrf or "", **cookie)  # type: ignore[arg-type]
        return response

    async def logout(view: Page) -> Response:
        token = view.request.cookies.get(SESSION_COOKIE, "")
        await sessions.revoke(ctx.db, token)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie("atm_admin_csrf")
        return response

    async def dashboard(view: Page) -> Response:
        if not view.may("reports.daily"):
            return view.render("message.html", title=view.t["dashboard"],
                               text=view.principal.username if view.principal else "")
        report = await view.call("reports.daily", {"date": view.request.query_params.get(
            "date", "")})
        hours = [f"{h:02d}" for h in range(24)]
        return view.render("dashboard.html", report=report,
                           hour_bars=charts.vertical_bars(report["by_hour"], hours),
                           code_bars=charts.horizontal_bars(report["by_response_code"]),
                           width=charts.CHART_WIDTH, height=charts.CHART_HEIGHT)

    async def terminals(view: Page) -> Response:
        rows = await view.call("terminals.list")
        people = [u["username"] for u in await users_for(view)]
        return view.render("terminals.html", rows=rows, people=people,
                           columns=["terminal_id", "status", "key_type", "tmk_kcv",
                                    "last_seen_at", "key_exchange_at"],
                           actions=[("terminals.enable", "enable", "terminal_id"),
                                    ("terminals.disable", "disable", "terminal_id")])

    async def users_for(view: Page) -> list[dict[str, Any]]:
        """Active users, to pick custodians from (any role may be a custodian but auditors)."""
        found = await ctx.db.fetch("SELECT username FROM admin_users WHERE NOT disabled"
                                   " AND role <> 'auditor' ORDER BY username")
        return [{"username": row["username"]} for row in found]

    async def terminal_add(view: Page) -> Response:
        form = view.request.state.form
        await view.call("terminals.add", body={
            "terminal_id": form.get("terminal_id", ""),
            "key_type": form.get("key_type", "tdes"),
            "custodians": [form.get("custodian1", ""), form.get("custodian2", "")]})
        return RedirectResponse("/terminals?msg=done", 303)

    async def terminal_rotate(view: Page) -> Response:
        form = view.request.state.form
        await view.call("keys.rotate_tmk", {"terminal_id": form.get("terminal_id", "")}, {
            "custodians": [form.get("custodian1", ""), form.get("custodian2", "")]})
        return RedirectResponse("/terminals?msg=pending_approval", 303)

    async def users_page(view: Page) -> Response:
        rows = await view.call("users.list")
        return view.render("users.html", rows=rows, roles=ROLES)

    async def user_create(view: Page) -> Response:
        form = view.request.state.form
        await view.call("users.create", body={"username": form.get("username", ""),
                                              "role": form.get("role", ""),
                                              "password": form.get("password", "")})
        return RedirectResponse("/users?msg=done", 303)

    async def custody(view: Page) -> Response:
        return view.render("custody.html", rows=await view.call("custody.list"),
                           collected=None)

    async def custody_collect(view: Page) -> Response:
        form = view.request.state.form
        parcel = await view.call("custody.collect", {"parcel_id": form.get("parcel_id", "")})
        # Shown once, on this response only (no-store); reloading cannot show it again.
        return view.render("custody.html", rows=await view.call("custody.list"),
                           collected=parcel)

    async def cards_form(view: Page) -> Response:
        return view.render("cards.html", rows=None)

    async def cards_search(view: Page) -> Response:
        form = view.request.state.form
        body = ({"pan": form["pan"]} if form.get("pan") else
                {"last4": form.get("last4", ""), "account": form.get("account", "")})
        rows = await view.call("cards.search", body=body)
        return view.render("cards.html", rows=rows)

    async def card(view: Page) -> Response:
        card_id = str(view.request.path_params["card_id"])
        found = await view.call("cards.show", {"card_id": card_id})
        history = await view.call("cards.history", {"card_id": card_id})
        return view.render("card.html", card=found, history=history,
                           actions=["block", "unblock", "reset_tries", "lost", "stolen",
                                    "close"])

    async def accounts(view: Page) -> Response:
        account_id = view.request.query_params.get("account_id", "")
        found = statement = None
        if account_id:
            found = await view.call("accounts.show", {"account_id": account_id})
            statement = await view.call("accounts.statement", {"account_id": account_id})
        return view.render("account.html", account=found, statement=statement,
                           account_id=account_id)

    async def transactions(view: Page) -> Response:
        wanted = {k: v for k, v in view.request.query_params.items()
                  if k in ("terminal", "date", "rrn", "stan", "pan") and v}
        # Without a search, the latest transactions (what an operator looks for first).
        rows = await view.call("transactions.search",
                               wanted or {"limit": str(RECENT_TRANSACTIONS)})
        return view.render("transactions.html", rows=rows, wanted=wanted,
                           columns=["created_at", "message_class", "terminal_id", "stan", "rrn",
                                    "pan", "processing_code", "amount_minor", "response_code",
                                    "reason"])

    async def approvals(view: Page) -> Response:
        rows = await view.call("approvals.list")
        return view.render("table.html", title=view.t["approvals"], rows=rows,
                           columns=["approval_id", "operation", "subject", "requested_by",
                                    "expires_at"],
                           actions=[("approvals.approve", "approve", "approval_id"),
                                    ("approvals.reject", "reject", "approval_id")])

    async def keys(view: Page) -> Response:
        rows = await view.call("keys.list")
        return view.render("table.html", title=view.t["keys"], rows=rows,
                           columns=["owner", "name", "usage", "algorithm", "kcv", "updated_at"],
                           actions=[])

    async def audit_page(view: Page) -> Response:
        trails = await view.call("reports.audit", {"limit": "200"})
        return view.render("table.html", title=view.t["audit"], rows=trails["admin"],
                           columns=["at", "actor", "role", "address", "action", "subject"],
                           actions=[])

    async def action(view: Page) -> Response:
        """A button: one changing operation with its path parameters, then back to the page."""
        form = view.request.state.form
        operation_id = form.get("op", "")
        if operation_id not in CONSOLE_ACTIONS:
            raise ApiError("not_found", "no such action")
        params = {p.name: form.get(p.name, "") for p in BY_ID[operation_id].params}
        try:
            result = await view.call(operation_id, params)
        except Unchanged:  # already so: said as such, and nothing was audited
            msg = "unchanged"
        else:
            pending = isinstance(result, dict) and result.get("state") == "pending"
            msg = "pending_approval" if pending else "done"
        back = _local(form.get("back", "/"))
        return RedirectResponse(f"{back}{'&' if '?' in back else '?'}msg={msg}", 303)

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", page(logout), methods=["POST"]),
        Route("/", page(dashboard), methods=["GET"]),
        Route("/terminals", page(terminals), methods=["GET"]),
        Route("/cards", page(cards_form), methods=["GET"]),
        Route("/cards", page(cards_search), methods=["POST"]),
        Route("/cards/{card_id:int}", page(card), methods=["GET"]),
        Route("/accounts", page(accounts), methods=["GET"]),
        Route("/transactions", page(transactions), methods=["GET"]),
        Route("/approvals", page(approvals), methods=["GET"]),
        Route("/keys", page(keys), methods=["GET"]),
        Route("/terminals/add", page(terminal_add), methods=["POST"]),
        Route("/terminals/rotate", page(terminal_rotate), methods=["POST"]),
        Route("/users", page(users_page), methods=["GET"]),
        Route("/users", page(user_create), methods=["POST"]),
        Route("/custody", page(custody), methods=["GET"]),
        Route("/custody", page(custody_collect), methods=["POST"]),
        Route("/audit", page(audit_page), methods=["GET"]),
        Route("/do", page(action), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

