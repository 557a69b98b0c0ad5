"""Open311 GeoReport v2 endpoints (JSON) at /open311/v2/, described by /open311/v2/openapi.json.

Reads are public and carry no personal data; writes need an `api_key` from OPEN311_API_KEYS.
A stored request is handed to the intake queue exactly like a chat message.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from services.dashboard.context import dashboard
from shared import open311
from shared.i18n import normalize_locale
from shared.queue.contracts import CLASSIFY_REQUEST, ClassifyRequest

log = logging.getLogger("linju.open311")
PREFIX = "/open311/v2"
OPENAPI = Path(__file__).resolve().parent / "open311_openapi.json"


def _error(status: int, description: str) -> web.Response:
    return web.json_response([{"code": status, "description": description}], status=status)


def _locale(request: web.Request) -> str:
    return normalize_locale(request.query.get("locale") or request.headers.get("Accept-Language", "zh")[:2])


def _jurisdiction(request: web.Request) -> str | None | web.Response:
    code = request.query.get("jurisdiction_id")
    if code is None or code == "":
        return None
    if not dashboard(request).config.has_community(code):
        return _error(404, "unknown jurisdiction_id")
    return code


async def list_services(request: web.Request) -> web.Response:
    found = _jurisdiction(request)
    if isinstance(found, web.Response):
        return found
    return web.json_response(open311.services(_locale(request)))


async def service_definition(request: web.Request) -> web.Response:
    found = _jurisdiction(request)
    if isinstance(found, web.Response):
        return found
    code = request.match_info["code"]
    if code not in open311.SERVICE_CODES:
        return _error(404, "unknown service_code")
    return web.json_response(open311.definition(code, _locale(request)))


def _key_ok(dash, given: str) -> bool:  # type: ignore[no-untyped-def]
    return any(hmac.compare_digest(given.encode(), key.encode()) for key in dash.settings.open311_api_keys if key)


async def post_request(request: web.Request) -> web.Response:
    dash = dashboard(request)
    try:
        form = {k: str(v) for k, v in (await request.post()).items()}
    except ValueError:
        return _error(400, "the body must be application/x-www-form-urlencoded")
    if not form.get("api_key") or not _key_ok(dash, form["api_key"]):
        return _error(403, "a valid api_key is required")
    try:
        submission = open311.parse_submission(dash.config, form)
    except open311.SubmissionError as exc:
        return _error(exc.code, exc.description)
    async with dash.database.sessions() as session:
        stored, token = await open311.submit(session, submission)
    # Same path as the bot: the intake worker classifies, routes and notifies staff.
    await dash.enqueue(CLASSIFY_REQUEST, ClassifyRequest(request_id=stored.id))
    log.info("open311 request stored", extra={"request_id": stored.id, "community": stored.community_code})
    return web.json_response([{"service_request_id": stored.number, "token": token,
                               "service_notice": None, "account_id": None}], status=201)


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps([{"code": 400, "description": f"{name} must be ISO 8601"}]),
                                 content_type="application/json") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _positive(text: str | None, default: int, limit: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= limit:
        raise web.HTTPBadRequest(text=json.dumps([{"code": 400, "description": f"paging values are 1 to {limit}"}]),
                                 content_type="application/json")
    return int(text)


async def list_requests(request: web.Request) -> web.Response:
    found = _jurisdiction(request)
    if isinstance(found, web.Response):
        return found
    q = request.query
    start, end = _when(q.get("start_date"), "start_date"), _when(q.get("end_date"), "end_date")
    if start and end and (end < start or end - start > open311.MAX_RANGE):
        return _error(400, "end_date must follow start_date by at most 90 days")
    if start and not end:
        end = start + open311.MAX_RANGE
    if end and not start:
        start = end - open311.MAX_RANGE
    status = q.get("status")
    if status not in (None, "", "open", "closed"):
        return _error(400, "status is open or closed")
    numbers = tuple(n.strip() for n in (q.get("service_request_id") or "").split(",") if n.strip())[:100]
    codes = tuple(c.strip() for c in (q.get("service_code") or "").split(",") if c.strip())[:20]
    query = open311.Query(numbers=numbers, service_codes=codes, status=status or None, start=start, end=end,
                          community=found, page=_positive(q.get("page"), 1, 10_000),
                          page_size=_positive(q.get("page_size"), open311.DEFAULT_PAGE_SIZE, open311.MAX_PAGE_SIZE))
    dash = dashboard(request)
    async with dash.database.sessions() as session:
        rows = await open311.find(session, query)
    locale = _locale(request)
    return web.json_response([open311.public_view(dash.config, r, locale) for r in rows])


async def get_request(request: web.Request) -> web.Response:
    number = request.match_info["id"]
    if len(number) > 32:
        return _error(404, "no such request")
    dash = dashboard(request)
    async with dash.database.sessions() as session:
        rows = await open311.find(session, open311.Query(numbers=(number,), page_size=1))
    if not rows:
        return _error(404, "no such request")
    return web.json_response([open311.public_view(dash.config, rows[0], _locale(request))])


async def get_token(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    dash = dashboard(request)
    async with dash.database.sessions() as session:
        found = await open311.by_token(session, token)
    if found is None:
        return _error(404, "no such token")
    return web.json_response([{"service_request_id": found.number, "token": token}])


async def openapi(_request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.get(f"{PREFIX}/services.json", list_services),
            web.get(f"{PREFIX}/services/{{code}}.json", service_definition),
            web.post(f"{PREFIX}/requests.json", post_request),
            web.get(f"{PREFIX}/requests.json", list_requests),
            web.get(f"{PREFIX}/requests/{{id}}.json", get_request),
            web.get(f"{PREFIX}/tokens/{{token}}.json", get_token),
            web.get(f"{PREFIX}/openapi.json", openapi)]
