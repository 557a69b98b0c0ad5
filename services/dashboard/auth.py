"""Sign-in (one-time code from the bot), the session cookie, and CSRF on every form.

Every page except sign-in, static files and health/metrics needs a live session, re-checked
against the person's current roles on each request. Every POST carries a CSRF token:
the session's own, or before sign-in one bound to a random per-browser cookie.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web

from services.dashboard.context import VIEWER, Viewer, dashboard, read_form, request_locale
from shared import staff_login
from shared.i18n import t

log = logging.getLogger("linju.dashboard")

SESSION_COOKIE = "linju_session"
BROWSER_COOKIE = "linju_browser"
PUBLIC_PREFIXES = ("/login", "/static/", "/healthz", "/readyz", "/metrics", "/lang/", "/open311/")
PLATFORM = "telegram"


def _cookie_options(request: web.Request) -> dict:
    return {"httponly": True, "samesite": "Lax", "secure": dashboard(request).settings.dashboard_cookie_secure,
            "path": "/"}


def apply_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The headers every response carries; a handler that streams calls this itself before `prepare`
    (headers set afterwards never reach the browser). A header the handler set is kept."""
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def security_headers(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        response = await handler(request)
    except web.HTTPException as answer:  # a 404, 403 or redirect raised by a handler is a response too
        apply_security_headers(request, answer)
        raise
    if not response.prepared:
        apply_security_headers(request, response)
    return response


@web.middleware
async def require_staff(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Attach the viewer, or send strangers to the sign-in page; check CSRF on every POST."""
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    dash = dashboard(request)
    async with dash.database.sessions() as session:
        active = await staff_login.load_session(session, request.cookies.get(SESSION_COOKIE))
    if active is None:
        if request.method == "GET":
            raise web.HTTPSeeOther("/login")
        raise web.HTTPForbidden(text="not signed in")
    user = active.user
    request[VIEWER] = Viewer(user_id=user.id, roles=tuple(user.roles or ()), community=user.community_code,
                               locale=request_locale(request, user.locale), csrf=active.csrf,
                               token_hash=active.token_hash)
    if request.method == "POST":
        form = await read_form(request)
        if not staff_login.csrf_matches(active.csrf, form.get("csrf")):  # type: ignore[arg-type]
            log.warning("dashboard csrf rejected", extra={"user_id": user.id, "path": request.path})
            raise web.HTTPForbidden(text="invalid or missing CSRF token")
    return await handler(request)


def _browser_token(request: web.Request) -> tuple[str, bool]:
    token = request.cookies.get(BROWSER_COOKIE)
    if token and 20 <= len(token) <= 64:
        return token, False
    return secrets.token_urlsafe(24), True


def _render_login(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    token, new = _browser_token(request)
    locale = request_locale(request)
    csrf = staff_login.anonymous_csrf(dashboard(request).secret, token)
    response = aiohttp_jinja2.render_template(template, request, {
        "csrf": csrf, "locale": locale, "tr": lambda key, **kw: t(locale, key, **kw), "viewer": None, "error": None,
        "challenge": "", **context},
        status=status)
    if new:
        response.set_cookie(BROWSER_COOKIE, token, max_age=86400, **_cookie_options(request))
    return response


async def _check_anonymous_csrf(request: web.Request) -> dict:
    form = await read_form(request)
    token = request.cookies.get(BROWSER_COOKIE) or ""
    expected = staff_login.anonymous_csrf(dashboard(request).secret, token)
    if not token or not staff_login.csrf_matches(expected, form.get("csrf")):  # type: ignore[arg-type]
        raise web.HTTPForbidden(text="invalid or missing CSRF token")
    return dict(form)


async def login_page(request: web.Request) -> web.Response:
    return _render_login(request, "login.html")


async def login_request_code(request: web.Request) -> web.Response:
    form = await _check_anonymous_csrf(request)
    account = str(form.get("account", "")).strip()
    if not account.isdigit() or len(account) > 20:
        return _render_login(request, "login.html", status=400, error="dashboard.login_bad_account")
    dash = dashboard(request)
    async with dash.database.sessions() as session:
        result = await staff_login.request_code(session, dash.secret, PLATFORM, account,
                                                code_ttl=timedelta(minutes=dash.settings.dashboard_code_minutes))
        await session.commit()
    if result.outbox_id is not None:
        await dash.deliver([result.outbox_id])
    # The same page whoever asked: the form never tells whether the account is staff.
    log.info("dashboard code requested", extra={"queued": result.outbox_id is not None, "limited": result.limited})
    return _render_login(request, "login_code.html", challenge=result.challenge,
                         error="dashboard.login_limited" if result.limited else None)


async def login_verify(request: web.Request) -> web.Response:
    form = await _check_anonymous_csrf(request)
    challenge, code = str(form.get("challenge", "")), str(form.get("code", ""))
    dash = dashboard(request)
    new = None
    if challenge and code.strip().isdigit() and len(code.strip()) <= 12:
        async with dash.database.sessions() as session:
            new = await staff_login.verify_code(
                session, dash.secret, challenge, code,
                session_ttl=timedelta(hours=dash.settings.dashboard_session_hours))
            await session.commit()
    if new is None:
        log.info("dashboard sign-in refused")
        return _render_login(request, "login_code.html", status=401, challenge=challenge,
                             error="dashboard.login_wrong_code")
    log.info("dashboard sign-in", extra={"user_id": new.user.id})
    response = web.HTTPSeeOther("/requests")
    response.set_cookie(SESSION_COOKIE, new.token, max_age=int(dash.settings.dashboard_session_hours * 3600),
                        **_cookie_options(request))
    if new.user.locale and not request.cookies.get("lang"):
        response.set_cookie("lang", new.user.locale, max_age=365 * 86400, path="/", samesite="Lax")
    raise response


async def logout(request: web.Request) -> web.Response:
    viewer: Viewer = request[VIEWER]
    dash = dashboard(request)
    async with dash.database.sessions() as session:
        await staff_login.end_session(session, viewer.token_hash)
        await session.commit()
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in ("zh", "en"):
        raise web.HTTPNotFound()
    # Only a local path is followed back, so this is no open redirect.
    back = request.query.get("next", "/requests")
    if not back.startswith("/") or back.startswith("//"):
        back = "/requests"
    response = web.HTTPSeeOther(back)
    response.set_cookie("lang", lang, max_age=365 * 86400, path="/", samesite="Lax")
    raise response


def routes() -> list[web.RouteDef]:
    return [web.get("/login", login_page), web.post("/login", login_request_code),
            web.post("/login/verify", login_verify), web.post("/logout", logout),
            web.get("/lang/{lang}", set_language)]
