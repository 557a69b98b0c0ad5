"""The request queue, a request's detail with its timeline, and the staff actions on it.

Actions call the same domain functions as the chat (`shared.casework`), so the rules live
once. Each action form carries a one-time nonce, consumed in the same transaction as
the change: a double submit changes the request once.
"""

from __future__ import annotations

import logging
from datetime import date

from aiohttp import web
from sqlalchemy import select

from services.dashboard.attachments import describe
from services.dashboard.context import dashboard, read_form, viewer
from services.dashboard.render import page
from shared import casework, volunteering
from shared.db.models import Referral, Request, RequestEvent, Task, User
from shared.domain.requests import OPEN_STATUSES, RequestStatus
from shared.domain.text import MAX_REQUEST_CHARS, clean_text, has_words
from shared.flows.cards import is_overdue, timeline_lines
from shared.repo.request_queue import PAGE_SIZE, QueueFilter, find
from shared.staff_login import claim_submission
from shared.taxonomy import LABELS

log = logging.getLogger("linju.dashboard")

FLASHES = frozenset({"taken", "replied", "resolved", "category", "reassigned", "referred", "referral_answered",
                     "already", "refused", "empty", "bad_reference",
                     # services/dashboard/request_tools.py
                     "merged", "merge_bad_number", "merge_not_found", "merge_self", "merge_other_community",
                     "merge_target_closed", "merge_not_open", "task_created", "task_exists", "task_not_open",
                     "task_window_over", "task_bad_title", "task_bad_details", "task_bad_place", "task_bad_hours"})
MERGE_TARGETS_SHOWN = 50
ACTIONS = ("take", "reply", "resolve", "category", "reassign", "refer", "referral_answered")
REFERENCE_LIMIT = 60  # as in chat (shared.flows.staff)
STATUS_CHOICES = ("open", *[s.value for s in RequestStatus])


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_filter(request: web.Request) -> QueueFilter:
    """Unknown or malformed values are ignored (shown as "any"), never passed to the database."""
    q, who, config = request.query, viewer(request), dashboard(request).config
    community = q.get("community") or None
    if community is not None and (not config.has_community(community) or not who.may_see(community)):
        community = None
    category = q.get("category") if q.get("category") in LABELS else None
    status = q.get("status") if q.get("status") in STATUS_CHOICES else None
    page_text = q.get("page", "1")
    page_no = int(page_text) if page_text.isdigit() and len(page_text) < 6 else 1
    number = (q.get("q") or "").strip()[:32] or None
    return QueueFilter(communities=who.communities, community=community, category=category, status=status,
                       overdue=q.get("overdue") == "1", urgent=q.get("urgent") == "1",
                       since=_date(q.get("from")), until=_date(q.get("to")), number=number, page=max(1, page_no))


async def queue(request: web.Request) -> web.Response:
    dash = dashboard(request)
    f = parse_filter(request)
    async with dash.database.sessions() as session:
        rows, total = await find(session, f, dash.config.defaults.timezone)
    return page(request, "queue.html", {
        "rows": rows, "total": total, "filter": f, "labels": LABELS, "statuses": STATUS_CHOICES,
        "is_overdue": is_overdue, "page_size": PAGE_SIZE, "query": request.query,
        "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)})


def _request_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPNotFound()
    return int(text)


async def visible_request(session, request: web.Request) -> Request:  # type: ignore[no-untyped-def]
    """The request named in the path, if the viewer may see it; another community's is "not found"."""
    found = await session.get(Request, _request_id(request))
    if found is None or not viewer(request).may_see(found.community_code):
        raise web.HTTPNotFound(text="no such request")
    return found


async def detail(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    async with dash.database.sessions() as session:
        found = await visible_request(session, request)
        events = list(await session.scalars(select(RequestEvent).where(RequestEvent.request_id == found.id)
                                            .order_by(RequestEvent.created_at, RequestEvent.id)))
        referrals = list(await session.scalars(select(Referral).where(Referral.request_id == found.id)))
        resident = await session.get(User, found.user_id) if found.user_id else None
        assignee = await session.get(User, found.assignee_id) if found.assignee_id else None
        tasks = list(await session.scalars(select(Task).where(Task.request_id == found.id).order_by(Task.id)))
        has_task = await volunteering.has_active_task(session, found.id)
        # Open requests of the same community this one could be merged into (offered, not imposed).
        merge_targets = list(await session.scalars(
            select(Request).where(Request.community_code == found.community_code, Request.id != found.id,
                                  Request.status.in_([str(s) for s in OPEN_STATUSES]))
            .order_by(Request.created_at.desc()).limit(MERGE_TARGETS_SHOWN)))
    timeline = timeline_lines(dash.config, events, who.locale, for_resident=False)
    flash = request.query.get("done")
    return page(request, "detail.html", {
        "r": found, "attachments": describe(found.attachments), "timeline": timeline, "referrals": referrals,
        "resident": resident, "assignee": assignee,
        "labels": [label for label in LABELS if label != found.category],
        "moves": [c for c in dash.config.communities if c.code != found.community_code],
        "bodies": dash.config.defaults.referral_bodies,
        "body_names": {b.code: b.name.get(who.locale) or b.name["zh"] for b in dash.config.defaults.referral_bodies},
        "waiting_referral": any(ref.answered_at is None for ref in referrals),
        "open": found.status in OPEN_STATUSES, "may_reply": found.status in OPEN_STATUSES or found.status == RequestStatus.RESOLVED,
        "may_take": found.status == RequestStatus.ROUTED, "is_overdue": is_overdue(found),
        "may_merge": found.status in casework.MERGEABLE, "merge_targets": merge_targets,
        "tasks": tasks, "may_task": found.status in OPEN_STATUSES and not has_task,
        "skills": dash.config.defaults.volunteer_skills, "windows": volunteering.WINDOWS,
        "task_title": volunteering.default_task_title(found),
        "skill_name": lambda code: volunteering.skill_name(dash.config, code, who.locale),
        "flash": flash if flash in FLASHES else None})


async def act(request: web.Request) -> web.Response:
    """POST /requests/{id}/{action}: the chat's staff actions, through `shared.casework`."""
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    dash, who = dashboard(request), viewer(request)
    form = await read_form(request)
    async with dash.database.sessions() as session:
        found = await visible_request(session, request)
        back = f"/requests/{found.id}"
        staff = await session.get(User, who.user_id)
        argument = str(form.get("value", ""))
        if action == "reply":
            argument = clean_text(argument)
            if not argument or not has_words(argument) or len(argument) > MAX_REQUEST_CHARS:
                raise web.HTTPSeeOther(f"{back}?done=empty")
        if action == "category" and argument not in LABELS:
            raise web.HTTPBadRequest(text="unknown category")
        if action == "reassign" and not dash.config.has_community(argument):
            raise web.HTTPBadRequest(text="unknown community")
        reference = clean_text(str(form.get("reference", "")))
        if action == "refer":
            if dash.config.referral_body(argument) is None:
                raise web.HTTPBadRequest(text="unknown referral body")
            if not reference or not has_words(reference) or len(reference) > REFERENCE_LIMIT:
                raise web.HTTPSeeOther(f"{back}?done=bad_reference")
        if not await claim_submission(session, str(form.get("nonce", "")), staff):
            raise web.HTTPSeeOther(f"{back}?done=already")
        if action == "take":
            ids, done = await casework.take(session, dash.config, found, staff), "taken"
        elif action == "reply":
            ids, done = await casework.staff_reply(session, dash.config, found, staff, argument), "replied"
        elif action == "resolve":
            ids, done = await casework.resolve(session, dash.config, found, staff), "resolved"
        elif action == "category":
            ids, done = await casework.change_category(session, dash.config, found, staff, argument), "category"
        elif action == "reassign":
            ids, done = await casework.reassign(session, dash.config, found, staff, argument), "reassigned"
        elif action == "refer":
            ids, done = await casework.refer(session, dash.config, found, staff, argument, reference), "referred"
        else:
            answered = await casework.referral_answered(session, found, staff)
            ids, done = ([] if answered else None), "referral_answered"
        if ids is None:
            await session.rollback()
            raise web.HTTPSeeOther(f"{back}?done=refused")
        await session.commit()
    await dash.deliver(ids)
    log.info("dashboard action", extra={"user_id": who.user_id, "request_id": found.id, "action": action})
    if action == "reassign" and not who.may_see(argument):
        raise web.HTTPSeeOther("/requests?done=reassigned")
    raise web.HTTPSeeOther(f"{back}?done={done}")


def routes() -> list[web.RouteDef]:
    return [web.get("/requests", queue), web.get("/requests/{id}", detail),
            web.post("/requests/{id}/{action}", act)]
