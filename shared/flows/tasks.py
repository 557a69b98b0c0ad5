"""Volunteer tasks in chat: claim, start, done with hours, release; staff confirm; /mytasks, /hours, /task."""

from __future__ import annotations

import re

from sqlalchemy import select

from shared import volunteering
from shared.clock import utcnow
from shared.db.models import Task
from shared.domain.tasks import ACTIVE, TaskStatus
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for, staff_request
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

HOURS = re.compile(r"(\d+(?:[.,]\d+)?)")
WINDOWS = volunteering.WINDOWS


async def _task(ctx: FlowContext, task_id: str) -> Task | None:
    return await ctx.session.get(Task, int(task_id)) if task_id.isdigit() and len(task_id) < 18 else None


async def on_action(ctx: FlowContext, op: str, task_id: str) -> list[Reply]:
    if op == "claim":
        return await _claim(ctx, task_id)
    task = await _task(ctx, task_id)
    if task is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    if op in ("start", "done", "rel"):
        if task.claimer_id != ctx.user.id:
            return [Reply(t(ctx.locale, "tasks.not_yours"))]
        if op == "start":
            if not await volunteering.start(ctx.session, task, ctx.user):
                return [Reply(t(ctx.locale, "errors.stale_button"))]
            await ctx.session.commit()
            return [volunteering.claimer_card(ctx.config, task, ctx.locale)]
        if op == "rel":
            ids = await volunteering.release(ctx.session, ctx.config, task, ctx.user)
            if ids is None:
                return [Reply(t(ctx.locale, "errors.stale_button"))]
            await commit_and_deliver(ctx, ids)
            return [Reply(t(ctx.locale, "tasks.released", title=task.title))]
        if task.status not in (TaskStatus.CLAIMED, TaskStatus.STARTED):
            return [Reply(t(ctx.locale, "errors.stale_button"))]
        ctx.state.update({"await": "task_done", "task_id": task.id})
        return [Reply(t(ctx.locale, "tasks.ask_done"))]
    if op in ("ok", "adj"):
        if not is_staff_for(ctx, task.community_code):
            return [Reply(t(ctx.locale, "staff.not_staff"))]
        if op == "adj":
            if task.status != TaskStatus.DONE:
                return [Reply(t(ctx.locale, "errors.stale_button"))]
            ctx.state.update({"await": "task_hours", "task_id": task.id})
            return [Reply(t(ctx.locale, "tasks.ask_hours", title=task.title))]
        return await _confirm(ctx, task, None)
    return [Reply(t(ctx.locale, "errors.stale_button"))]


async def _claim(ctx: FlowContext, task_id: str) -> list[Reply]:
    # A crowd presses Claim at once: no SELECT first; one statement checks and claims (shared.repo.tasks).
    if not (task_id.isdigit() and len(task_id) < 18):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    result = await volunteering.claim(ctx.session, ctx.config, int(task_id), ctx.user)
    if result.title is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    if not result.allowed:
        return [Reply(t(ctx.locale, "tasks.not_volunteer"))]
    if result.task is None:
        return [Reply(t(ctx.locale, "tasks.already_taken", title=result.title))]
    await commit_and_deliver(ctx, result.outbox_ids)
    return [volunteering.claimer_card(ctx.config, result.task, ctx.locale)]


async def _confirm(ctx: FlowContext, task: Task, hours: float | None) -> list[Reply]:
    ids = await volunteering.confirm(ctx.session, task, ctx.user, hours)
    if ids is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await commit_and_deliver(ctx, ids)
    await ctx.session.refresh(task)
    return [Reply(t(ctx.locale, "tasks.confirmed", title=task.title, hours=task.confirmed_hours))]


def parse_hours(text: str) -> float | None:
    match = HOURS.search(text)
    return float(match.group(1).replace(",", ".")) if match else None


async def on_done_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    task = await _task(ctx, str(ctx.state.get("task_id", "")))
    cleaned = clean_text(text)
    hours = parse_hours(cleaned)
    if task is None or task.claimer_id != ctx.user.id:
        ctx.state.clear()
        return [Reply(t(ctx.locale, "tasks.not_yours"))]
    if hours is None:
        return [Reply(t(ctx.locale, "tasks.hours_invalid"))]
    note = HOURS.sub("", cleaned, count=1).strip(" 小时hH,，。") or "-"
    ids = await volunteering.complete(ctx.session, ctx.config, task, ctx.user, hours, note[:500])
    if ids is None:
        return [Reply(t(ctx.locale, "tasks.hours_invalid"))]
    ctx.state.clear()
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "tasks.done_thanks", title=task.title, hours=hours))]


async def on_hours_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    task = await _task(ctx, str(ctx.state.get("task_id", "")))
    if task is None or not is_staff_for(ctx, task.community_code):
        ctx.state.clear()
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    hours = parse_hours(clean_text(text))
    if hours is None:
        return [Reply(t(ctx.locale, "tasks.hours_invalid"))]
    replies = await _confirm(ctx, task, hours)
    if replies[0].text != t(ctx.locale, "errors.stale_button"):
        ctx.state.clear()
    return replies


async def my_tasks(ctx: FlowContext) -> list[Reply]:
    tasks = list(await ctx.session.scalars(select(Task).where(Task.claimer_id == ctx.user.id,
                                                              Task.status.in_([TaskStatus.CLAIMED, TaskStatus.STARTED]))
                                           .order_by(Task.window_start)))
    if not tasks:
        return [Reply(t(ctx.locale, "tasks.none"))]
    return [volunteering.claimer_card(ctx.config, task, ctx.locale) for task in tasks[:10]]


async def hours(ctx: FlowContext) -> list[Reply]:
    month, year = volunteering.period_starts(ctx.config, utcnow())
    return [Reply(t(ctx.locale, "tasks.hours_summary",
                    month=await volunteering.confirmed_hours(ctx.session, ctx.user.id, month),
                    year=await volunteering.confirmed_hours(ctx.session, ctx.user.id, year),
                    total=await volunteering.confirmed_hours(ctx.session, ctx.user.id)))]


def _skill_buttons(ctx: FlowContext, make) -> tuple:  # type: ignore[no-untyped-def]
    return rows(*(Button(volunteering.skill_name(ctx.config, s.code, ctx.locale), make(s.code))
                  for s in ctx.config.defaults.volunteer_skills), per_row=3)


# --- staff create tasks --------------------------------------------------------------------

async def from_request_prompt(ctx: FlowContext, request_id: int) -> list[Reply]:
    return [Reply(t(ctx.locale, "tasks.pick_skill"),
                  _skill_buttons(ctx, lambda code: actions.make("stk", request_id, code)))]


async def from_request(ctx: FlowContext, request_id: str, skill: str) -> list[Reply]:
    request, refusal = await staff_request(ctx, request_id)
    if request is None:
        return refusal
    made = await volunteering.task_for_request(ctx.session, ctx.config, request, ctx.user, skill=skill,
                                               details=request.text)
    if made.result == "exists":
        return [Reply(t(ctx.locale, "tasks.exists", number=request.number))]
    if made.task is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await commit_and_deliver(ctx, made.outbox_ids)
    return [Reply(t(ctx.locale, "tasks.created", title=made.task.title, offers=len(made.outbox_ids)))]


async def new_task(ctx: FlowContext) -> list[Reply]:
    if ctx.user.community_code is None or not is_staff_for(ctx, ctx.user.community_code):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    ctx.state.clear()
    ctx.state["task"] = {}
    return [Reply(t(ctx.locale, "tasks.pick_skill"), _skill_buttons(ctx, lambda code: actions.make("nts", code)))]


async def new_task_skill(ctx: FlowContext, skill: str) -> list[Reply]:
    form = ctx.state.get("task")
    if form is None or ctx.config.skill(skill) is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    form["skill"] = skill
    ctx.state["await"] = "task_text"
    return [Reply(t(ctx.locale, "tasks.ask_text"))]


async def new_task_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    cleaned = clean_text(text)
    if not cleaned or not has_words(cleaned) or len(cleaned) > 2000:
        return [Reply(t(ctx.locale, "report.empty"))]
    lines = [line.strip() for line in cleaned.splitlines() if line.strip()]
    form = ctx.state.setdefault("task", {})
    form.update({"title": lines[0][:200], "details": "\n".join(lines[1:]) or None})
    ctx.state.pop("await", None)
    buttons = [Button(t(ctx.locale, f"tasks.window_{w}"), actions.make("ntw", w)) for w in WINDOWS]
    return [Reply(t(ctx.locale, "tasks.ask_window"), rows(*buttons))]


async def new_task_window(ctx: FlowContext, code: str) -> list[Reply]:
    form = ctx.state.get("task") or {}
    if code not in WINDOWS or "title" not in form or "skill" not in form:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    if ctx.user.community_code is None or not is_staff_for(ctx, ctx.user.community_code):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    start, end = volunteering.window_for(code, utcnow(), ctx.config.defaults.timezone)
    ctx.state.clear()
    task, ids = await volunteering.create_task(
        ctx.session, ctx.config, community=ctx.user.community_code, skill=form["skill"], title=form["title"],
        details=form.get("details"), place=None, window_start=start, window_end=end, created_by=ctx.user.id)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "tasks.created", title=task.title, offers=len(ids)))]


def active_statuses() -> list[str]:
    return [str(s) for s in ACTIVE]
