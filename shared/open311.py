"""Open311 GeoReport v2 in our words: services are intake categories, jurisdictions are communities.

A request submitted this way is stored like a chat message (`create_request`, source
`open311`, no chat account) and classified by the same intake worker; the submitter's
`service_code` is a hint the intake uses when the classifier is unsure (see
`service_hint`). Our rich statuses map to GeoReport's `open`/`closed`, the rich one is
kept in the `linju_status` extension field.

Privacy: the public read endpoints never return the description, names, contact
details or an exact location — only numbers, categories, statuses and times.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import as_utc
from shared.config import CommunitiesConfig
from shared.db.models import Request
from shared.domain.requests import OPEN_STATUSES
from shared.domain.text import MAX_REQUEST_CHARS, clean_text, has_words
from shared.i18n import t
from shared.repo.requests import create_request
from shared.taxonomy import FLOW_LABELS, LABELS, MENU_LABEL

SOURCE = "open311"
SERVICE_CODES: tuple[str, ...] = tuple(label for label in LABELS if label not in FLOW_LABELS and label != MENU_LABEL)
MAX_RANGE = timedelta(days=90)
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 200
TOKEN_PREFIX = "open311:"


def service(code: str, locale: str) -> dict[str, Any]:
    return {"service_code": code, "service_name": t(locale, f"category.{code}"),
            "description": t(locale, f"open311.service.{code}"), "metadata": True, "type": "realtime",
            "keywords": code, "group": t(locale, "open311.group")}


def services(locale: str) -> list[dict[str, Any]]:
    return [service(code, locale) for code in SERVICE_CODES]


def definition(code: str, locale: str) -> dict[str, Any]:
    """The attributes a submitter may add (GeoReport `attribute[code]`)."""
    return {"service_code": code, "attributes": [
        {"variable": True, "code": "on_behalf_name", "datatype": "string", "required": False, "order": 1,
         "datatype_description": t(locale, "open311.attr_on_behalf_hint"),
         "description": t(locale, "open311.attr_on_behalf")},
        {"variable": True, "code": "building", "datatype": "string", "required": False, "order": 2,
         "datatype_description": t(locale, "open311.attr_building_hint"),
         "description": t(locale, "open311.attr_building")},
    ]}


class SubmissionError(ValueError):
    """A submission we cannot store; `code` is the GeoReport error code (HTTP status) and the text."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


@dataclass(frozen=True)
class Submission:
    community: str
    service_code: str
    description: str
    address: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None
    attributes: dict[str, str] | None = None


def _coordinate(text: str | None, limit: float, name: str) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(text)  # type: ignore[arg-type]
    except ValueError:
        raise SubmissionError(400, f"{name} must be a number") from None
    if not -limit <= value <= limit or value != value:
        raise SubmissionError(400, f"{name} is out of range")
    return value


def parse_submission(config: CommunitiesConfig, form: dict[str, str]) -> Submission:
    """Validate a form-encoded POST /requests.json (GeoReport v2 field names)."""
    community = (form.get("jurisdiction_id") or "").strip()
    if not config.has_community(community):
        raise SubmissionError(404, "jurisdiction_id must be a community code")
    code = (form.get("service_code") or "").strip()
    if code not in SERVICE_CODES:
        raise SubmissionError(404, "unknown service_code")
    description = clean_text(form.get("description"))
    if not description or not has_words(description):
        raise SubmissionError(400, "description is required")
    if len(description) > MAX_REQUEST_CHARS:
        raise SubmissionError(400, f"description is longer than {MAX_REQUEST_CHARS} characters")
    address = clean_text(form.get("address_string"))[:200] or None
    lat = _coordinate(form.get("lat"), 90, "lat")
    long = _coordinate(form.get("long"), 180, "long")
    if address is None and (lat is None or long is None):
        raise SubmissionError(400, "address_string or lat and long are required")
    media = (form.get("media_url") or "").strip()
    if media and (len(media) > 500 or not media.startswith(("https://", "http://"))):
        raise SubmissionError(400, "media_url must be an http(s) URL")
    attributes = {key[len("attribute["):-1]: clean_text(value)[:100] for key, value in form.items()
                  if key.startswith("attribute[") and key.endswith("]") and key[len("attribute["):-1] in
                  ("on_behalf_name", "building")}
    return Submission(community, code, description, address, lat, long, media or None, attributes)


async def submit(session: AsyncSession, submission: Submission) -> tuple[Request, str]:
    """Store the request for intake; returns it and its token. Commits (like the chat's store)."""
    token = secrets.token_urlsafe(16)
    attachment = {"kind": SOURCE, "service_code": submission.service_code, "address": submission.address,
                  "lat": submission.lat, "long": submission.long, "media_url": submission.media_url,
                  "building": (submission.attributes or {}).get("building")}
    request, _ = await create_request(session, community_code=submission.community, user_id=None,
                                      text=submission.description, idempotency_key=TOKEN_PREFIX + token,
                                      source=SOURCE, attachments=[{k: v for k, v in attachment.items() if v is not None}],
                                      on_behalf_name=(submission.attributes or {}).get("on_behalf_name") or None)
    return request, token


def service_hint(request: Request) -> str | None:
    """The service code an Open311 submitter chose, if this request came that way."""
    if request.source != SOURCE:
        return None
    for item in request.attachments or []:
        if isinstance(item, dict) and item.get("kind") == SOURCE and item.get("service_code") in SERVICE_CODES:
            return str(item["service_code"])
    return None


def georeport_status(status: str) -> str:
    return "open" if status in OPEN_STATUSES else "closed"


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat(timespec="seconds") if value else None


def public_view(config: CommunitiesConfig, request: Request, locale: str) -> dict[str, Any]:
    team = config.team_name(request.community_code, request.team, locale) if request.team else None
    return {"service_request_id": request.number, "status": georeport_status(request.status),
            "linju_status": request.status, "status_notes": None,
            "service_name": t(locale, f"category.{request.category}") if request.category else None,
            "service_code": request.category, "jurisdiction_id": request.community_code,
            "agency_responsible": team, "requested_datetime": _iso(request.created_at),
            "updated_datetime": _iso(request.updated_at), "expected_datetime": _iso(request.due_at)}


@dataclass(frozen=True)
class Query:
    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    community: str | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


async def find(session: AsyncSession, query: Query) -> list[Request]:
    # Cases only: chat messages that turned out not to be requests (greetings, flows) are not listed.
    stmt = select(Request).where(Request.team.is_not(None) | (Request.source == SOURCE))
    if query.numbers:
        stmt = stmt.where(Request.number.in_([n.upper() for n in query.numbers]))
    if query.service_codes:
        stmt = stmt.where(Request.category.in_(query.service_codes))
    if query.status == "open":
        stmt = stmt.where(Request.status.in_(sorted(OPEN_STATUSES)))
    elif query.status == "closed":
        stmt = stmt.where(Request.status.not_in(sorted(OPEN_STATUSES)))
    if query.community:
        stmt = stmt.where(Request.community_code == query.community)
    if query.start:
        stmt = stmt.where(Request.created_at >= query.start)
    if query.end:
        stmt = stmt.where(Request.created_at <= query.end)
    stmt = stmt.order_by(Request.created_at.desc(), Request.id.desc())
    return list(await session.scalars(stmt.offset((query.page - 1) * query.page_size).limit(query.page_size)))


async def by_token(session: AsyncSession, token: str) -> Request | None:
    if not token or len(token) > 64:
        return None
    return await session.scalar(select(Request).where(Request.idempotency_key == TOKEN_PREFIX + token))
