"""Two more staff actions on a request's page: merge it into another as a duplicate, and
make a volunteer task of it.

Both call the chat's own domain functions (`shared.casework.merge`,
`shared.volunteering.task_for_request`), so the rules, timeline events and notifications
are the chat's. As with the other actions, the request comes from the path and is
re-checked against the viewer's community; the merge target is looked up by its number
and must be visible too; each form's one-time nonce makes a double submit act once.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select

from services.dashboard.context import dashboard, read_form, viewer
from services.dashboard.requests_views import visible_request
from shared import casework, volunteering
from shared.clock import utcnow
from shared.db.models import Request, User
from shared.domain.requests import parse_number
from shared.domain.tasks import MAX_HOURS
from shared.domain.text import clean_text, has_words
from shared.staff_login import claim_submission

log = logging.getLogger("linju.dashboard")

NUMBER_LIMIT = 32
TITLE_LIMIT = 200     # tasks.title
DETAILS_LIMIT = 2000  # as the chat's /task text
PLACE_LIMIT = 200     # tasks.place
DUE_WINDOW = "due"    # from the next hour until the request's due time (the chat's default)


def _flash(request_id: int, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/requests/{request_id}?done={done}")


def _logged(who_id: int, request_id: int, action: str) -> None:
    log.info("dashboard action", extra={"user_id": who_id, "request_id": request_id, "action": action})


async def merge(request: web.Request) -> web.Response:
    """POST /requests/{id}/merge, value=the number of the request it duplicates."""
    dash, who = dashboard(request), viewer(request)
    form = await read_form(request)
    number = str(form.get("value", "")).strip().upper()
    async with dash.database.sessions() as session:
        duplicate = await visible_request(session, request)
        if len(number) > NUMBER_LIMIT or parse_number(number) is None:
            raise _flash(duplicate.id, "merge_bad_number")
        into = await session.scalar(select(Request).where(Request.number == number))
        # Another community's request is "not found", exactly like a missing one: nothing leaks.
        if into is None or not who.may_see(into.community_code):
            raise _flash(duplicate.id, "merge_not_found")
        staff = await session.get(User, who.user_id)
        if not await claim_submission(session, str(form.get("nonce", "")), staff):
            raise _flash(duplicate.id, "already")
        refusal = casework.merge_refusal(duplicate, into)
        if refusal is not None:
            raise _flash(duplicate.id, f"merge_{refusal}")
        ids = await casework.merge(session, dash.config, duplicate, into, staff)
        if ids is None:  # a race moved one of them on since they were read
            request_id = duplicate.id  # read before the rollback expires it
            await session.rollback()
            raise _flash(request_id, "refused")
        await session.commit()
    await dash.deliver(ids)
    _logged(who.user_id, duplicate.id, "merge")
    raise _flash(duplicate.id, "merged")


def _hours(text: str) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if 0 < value <= MAX_HOURS else None


async def create_task(request: web.Request) -> web.Response:
    """POST /requests/{id}/task: skill, window, title, details, place, hours — offered like the chat's."""
    dash, who = dashboard(request), viewer(request)
    form = await read_form(request)
    skill, window_code = str(form.get("skill", "")), str(form.get("window", ""))
    title = clean_text(str(form.get("title", "")))
    details = clean_text(str(form.get("details", ""))) or None
    place = clean_text(str(form.get("place", ""))) or None
    hours = _hours(str(form.get("hours", "1")).strip() or "1")
    async with dash.database.sessions() as session:
        found = await visible_request(session, request)
        # The two select boxes only offer valid values: anything else is a forged form.
        if dash.config.skill(skill) is None:
            raise web.HTTPBadRequest(text="unknown skill")
        if window_code != DUE_WINDOW and window_code not in volunteering.WINDOWS:
            raise web.HTTPBadRequest(text="unknown window")
        if not title or not has_words(title) or len(title) > TITLE_LIMIT:
            raise _flash(found.id, "task_bad_title")
        if details is not None and len(details) > DETAILS_LIMIT:
            raise _flash(found.id, "task_bad_details")
        if place is not None and (len(place) > PLACE_LIMIT or not has_words(place)):
            raise _flash(found.id, "task_bad_place")
        if hours is None:
            raise _flash(found.id, "task_bad_hours")
        staff = await session.get(User, who.user_id)
        if not await claim_submission(session, str(form.get("nonce", "")), staff):
            raise _flash(found.id, "already")
        window = None if window_code == DUE_WINDOW else \
            volunteering.window_for(window_code, utcnow(), dash.config.defaults.timezone)
        made = await volunteering.task_for_request(session, dash.config, found, staff, skill=skill, details=details,
                                                   title=title, place=place, window=window, est_hours=hours)
        if made.task is None:
            request_id = found.id  # read before the rollback expires it
            await session.rollback()
            raise _flash(request_id, {"exists": "task_exists", "not_open": "task_not_open",
                                    "window_over": "task_window_over"}.get(made.result, "refused"))
        await session.commit()
    await dash.deliver(made.outbox_ids)
    _logged(who.user_id, found.id, "task")
    raise _flash(found.id, "task_created")


def routes() -> list[web.RouteDef]:
    # Registered before requests_views' generic /requests/{id}/{action}.
    return [web.post("/requests/{id}/merge", merge), web.post("/requests/{id}/task", create_task)]
