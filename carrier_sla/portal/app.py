"""The portal's web application (Starlette, Jinja2 templates, served by uvicorn).

Every route below checks on the server who asks: an anonymous request is sent to the login page;
a CLEC user asking for any other carrier (its months, cells, records, downloads, runs) gets the
same 404 as for something that does not exist, so that ids do not leak; staff and ILEC users may
ask for any carrier. Names from the URL are looked up among what the store view lists
(carrier_sla.portal.data), never joined into a path. Sessions are a signed cookie (HttpOnly,
SameSite=Lax, Secure with https); the login form carries a CSRF token bound to the session;
failed logins are slowed (carrier_sla.portal.throttle); every page viewed and file downloaded is
written to the audit log (carrier_sla.portal.access). Errors show a page without a traceback
(the traceback goes to the server's log).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carrier_sla import __version__
from carrier_sla.portal.access import AccessLog
from carrier_sla.portal.data import CELL, CSV_TABLES, NotFound, Portal
from carrier_sla.portal.throttle import LoginThrottle
from carrier_sla.portal.users import User, check_password
from carrier_sla.readers.explain_cell import money, num, pval, val

HERE = Path(__file__).parent
SESSION_COOKIE = "carrier_sla_session"
SESSION_HOURS = 8
log = logging.getLogger("carrier_sla.portal")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(https: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",  # confidential pages and files: not kept by browsers or proxies
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeaders:
    """Pure ASGI middleware: the security headers on every response, errors and static files included."""

    def __init__(self, app: ASGIApp, https: bool):
        self.app = app
        self.headers = security_headers(https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in self.headers.items():
                    headers[k] = v
            await send(message)

        await self.app(scope, receive, with_headers)


class Site:
    """The application's state: the store, the users, the throttle, the audit log, the templates."""

    def __init__(self, store: Path, users: dict[str, User], https: bool, throttle: LoginThrottle | None):
        self.portal = Portal(store)
        self.users = users
        self.https = https
        self.throttle = throttle or LoginThrottle()
        self.access = AccessLog(store)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
        )
        self.templates.filters.update(num=num, val=val, pval=pval, money=lambda x: "n/a" if x is None else money(x))

    # ------------------------------------------------------------------ helpers

    def user(self, request: Request) -> User | None:
        name = request.session.get("user")
        user = self.users.get(name) if isinstance(name, str) else None
        if user is None or request.session.get("role") != user.role or request.session.get("carrier") != user.carrier:
            return None  # removed, or given another role since the session began
        return user

    def csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = context.get("user")
        run = context.get("run")

        def link(*parts: str, **params: str | None) -> str:
            path = "/" + "/".join(quote(str(p), safe="") for p in parts)
            query = {k: v for k, v in params.items() if v is not None} | ({"run": run} if run else {})
            return path + ("?" + urlencode(query) if query else "")

        carriers = []
        if user is not None and user.sees_all:
            try:
                carriers = self.portal.carriers(self.portal.view(run))
            except NotFound:
                carriers = []
        others = [(k, v) for k, v in request.query_params.multi_items() if k != "run"]
        current_view = request.url.path + ("?" + urlencode(others) if others else "")
        html = self.templates.get_template(template).render(
            request=request,
            csrf=self.csrf(request),
            link=link,
            version=__version__,
            carriers=carriers,
            current_view=current_view,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def audit(self, request: Request, event: str, user: User | None, status: int = 200, **fields: Any) -> None:
        self.access.write(
            event,
            user=user.name if user else None,
            role=user.role if user else None,
            carrier=user.carrier if user else None,
            path=request.url.path,
            query=request.url.query or None,
            status=status,
            address=request.client.host if request.client else None,
            **fields,
        )


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no //host, no scheme): an open redirect would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


Handler = Callable[[Request, Site, User], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Anonymous requests go to the login page; a NotFound becomes a 404 (logged as such)."""

    async def endpoint(request: Request) -> Response:
        site: Site = request.app.state.site
        user = site.user(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
        try:
            return await handler(request, site, user)
        except NotFound:
            site.audit(request, "not_found", user, 404)
            raise HTTPException(404) from None

    return endpoint


def _carrier(request: Request, site: Site, user: User) -> tuple[str, str | None, Any]:
    """The carrier of the URL (a CLEC user's own only), the run asked for, and its view."""
    carrier = request.path_params["carrier"]
    if not user.may_see(carrier):
        raise NotFound(carrier)
    run = request.query_params.get("run") or None
    view = site.portal.view(run)
    if user.sees_all:  # a CLEC user's own carrier is its own even in a view without a row of it yet
        site.portal.check_carrier(view, carrier)
    return carrier, run, view


# ---------------------------------------------------------------------- routes


async def login_form(request: Request) -> Response:
    site: Site = request.app.state.site
    if site.user(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return site.page(request, "login.html", next=_safe_next(request.query_params.get("next")), user=None)


async def login(request: Request) -> Response:
    site: Site = request.app.state.site
    form = await request.form()
    name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:1024]
    target = _safe_next(str(form.get("next", "")))
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, str(form.get("csrf", ""))):
        site.audit(request, "login_refused", None, 400, detail="missing or wrong CSRF token", subject_user=name)
        return site.page(
            request, "login.html", 400, next=target, user=None, error="The form expired. Please sign in again."
        )
    keys = site.throttle.keys(name, request.client.host if request.client else "")
    wait = site.throttle.wait(*keys)
    if wait > 0:
        site.audit(request, "login_throttled", None, 429, subject_user=name)
        response = site.page(
            request,
            "login.html",
            429,
            next=target,
            user=None,
            error=f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.",
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = site.users.get(name)
    if not await run_in_threadpool(check_password, user, password):  # Argon2: keep the event loop free
        site.throttle.failed(*keys)
        site.audit(request, "login_failed", None, 401, subject_user=name)
        return site.page(request, "login.html", 401, next=target, user=None, error="Wrong name or password.")
    assert user is not None
    site.throttle.succeeded(keys[0])
    request.session.clear()  # a new session at login (no fixation)
    request.session.update(
        {
            "user": user.name,
            "role": user.role,
            "carrier": user.carrier,
            "csrf": secrets.token_urlsafe(32),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    site.audit(request, "login", user)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    site: Site = request.app.state.site
    form = await request.form()
    expected = request.session.get("csrf")
    if isinstance(expected, str) and hmac.compare_digest(expected, str(form.get("csrf", ""))):
        site.audit(request, "logout", site.user(request))
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


@signed_in
async def home(request: Request, site: Site, user: User) -> Response:
    if user.carrier is not None:
        return RedirectResponse(f"/c/{quote(user.carrier, safe='')}", status_code=303)
    run = request.query_params.get("run") or None
    view = site.portal.view(run)
    go = request.query_params.get("go")
    if go is not None:  # the carrier switch
        site.portal.check_carrier(view, go)
        return RedirectResponse(f"/c/{quote(go, safe='')}" + (f"?{urlencode({'run': run})}" if run else ""), 303)
    site.audit(request, "view", user, detail="carriers", run_id=run)
    return site.page(request, "carriers.html", user=user, run=run, listed=site.portal.carriers(view))


@signed_in
async def months(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    rows = await run_in_threadpool(site.portal.months, view, carrier)
    site.audit(request, "view", user, subject_carrier=carrier, run_id=run, detail="months")
    return site.page(
        request,
        "months.html",
        user=user,
        run=run,
        carrier=carrier,
        months=rows,
        runs=view.runs(),
        current_run=site.portal.view().run_id,
    )


@signed_in
async def summary(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    period = site.portal.period(view, request.path_params["period"])
    data = await run_in_threadpool(site.portal.summary, view, period, carrier)
    manifest = view.manifest(period)
    site.audit(request, "view", user, subject_carrier=carrier, period=period, run_id=run, detail="summary")
    return site.page(
        request, "summary.html", user=user, run=run, carrier=carrier, period=period, manifest=manifest, **data
    )


@signed_in
async def cell(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    period = site.portal.period(view, request.path_params["period"])
    key = {k: request.query_params.get(k) for k in CELL}
    e = await run_in_threadpool(site.portal.cell, view, period, carrier, key, run)  # type: ignore[arg-type]
    site.audit(
        request,
        "view",
        user,
        subject_carrier=carrier,
        period=period,
        run_id=run,
        detail="cell " + " ".join(f"{k}={v}" for k, v in key.items()),
    )
    return site.page(request, "cell.html", user=user, run=run, carrier=carrier, period=period, e=e, key=key)


@signed_in
async def record(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    period = site.portal.period(view, request.path_params["period"])
    measure_id, record_id = request.path_params["measure"], request.path_params["record"]
    rows = await run_in_threadpool(site.portal.record, view, period, carrier, measure_id, record_id)
    site.audit(
        request,
        "view",
        user,
        subject_carrier=carrier,
        period=period,
        run_id=run,
        detail=f"record {measure_id} {record_id}",
    )
    return site.page(
        request,
        "record.html",
        user=user,
        run=run,
        carrier=carrier,
        period=period,
        measure_id=measure_id,
        record_id=record_id,
        rows=rows,
    )


@signed_in
async def trends(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    last = request.query_params.get("last")
    if last is not None:
        last = site.portal.period(view, last)
    data = await run_in_threadpool(site.portal.trends, view, carrier, last)
    site.audit(request, "view", user, subject_carrier=carrier, run_id=run, detail="trends")
    return site.page(request, "trends.html", user=user, run=run, carrier=carrier, **data)


def _download(body: bytes, name: str, kind: str) -> Response:
    return Response(body, media_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@signed_in
async def download_package(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    period = site.portal.period(view, request.path_params["period"])
    body = await run_in_threadpool(site.portal.package_zip, period, carrier, run)
    site.audit(request, "download", user, subject_carrier=carrier, period=period, run_id=run, detail="package.zip")
    return _download(body, f"package-{carrier}-{period}.zip", "application/zip")


@signed_in
async def download_csv(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    period = site.portal.period(view, request.path_params["period"])
    table = request.path_params["table"]
    if table not in CSV_TABLES:
        raise NotFound(table)
    body = await run_in_threadpool(site.portal.csv, view, period, carrier, table)
    site.audit(request, "download", user, subject_carrier=carrier, period=period, run_id=run, detail=f"{table}.csv")
    return _download(body, f"{table}-{carrier}-{period}.csv", "text/csv; charset=utf-8")


@signed_in
async def download_records(request: Request, site: Site, user: User) -> Response:
    carrier, run, view = _carrier(request, site, user)
    period = site.portal.period(view, request.path_params["period"])
    measure_id = request.path_params["measure"]
    body = await run_in_threadpool(site.portal.csv, view, period, carrier, "records", measure_id)
    site.audit(
        request,
        "download",
        user,
        subject_carrier=carrier,
        period=period,
        run_id=run,
        detail=f"records {measure_id}.csv",
    )
    return _download(body, f"records-{measure_id}-{carrier}-{period}.csv", "text/csv; charset=utf-8")


# ---------------------------------------------------------------------- errors


async def not_found(request: Request, exc: Exception) -> Response:
    site: Site = request.app.state.site
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    user = site.user(request) if "session" in request.scope else None
    return site.page(
        request,
        "error.html",
        status,
        user=user,
        title="Not found" if status == 404 else "Error",
        message="There is nothing here that you may see." if status == 404 else "The request failed.",
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """A page without the traceback (which goes to the server's log); ServerErrorMiddleware sends it
    outside every other middleware, so the security headers are set here too."""
    site: Site = request.app.state.site
    log.error("error serving %s", request.url.path, exc_info=exc)
    html = site.templates.get_template("error.html").render(
        title="Something went wrong",
        message="The portal could not show this page. The error is logged.",
        user=None,
        csrf="",
        link=lambda *a, **k: "/",
        version=__version__,
        carriers=[],
    )
    return HTMLResponse(html, status_code=500, headers=security_headers(site.https))


# ---------------------------------------------------------------------- the application


def create_app(
    store: Path | str,
    users: dict[str, User],
    *,
    secret_key: str | None = None,
    https: bool = False,
    throttle: LoginThrottle | None = None,
) -> Starlette:
    """The portal over `store` for `users`. `secret_key` signs the session cookies (a new random key
    when None: every session ends when the server restarts); `https` marks cookies Secure and sends HSTS."""
    site = Site(Path(store), users, https, throttle)
    carrier = "/c/{carrier}"
    month = carrier + "/{period}"
    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home),
        Route(carrier, months),
        Route(carrier + "/trends", trends),
        Route(month, summary),
        Route(month + "/cell", cell),
        Route(month + "/record/{measure}/{record}", record),
        Route(month + "/download/package.zip", download_package),
        Route(month + "/download/records/{measure}.csv", download_records),
        Route(month + "/download/{table}.csv", download_csv),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders, https=https),
        Middleware(
            SessionMiddleware,
            secret_key=secret_key or secrets.token_urlsafe(32),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=https,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: not_found, 405: not_found, 500: server_error, Exception: server_error},
    )
    app.state.site = site
    return app
