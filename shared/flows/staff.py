"""Staff triage in chat: the actions on a request card and the /queue, /mine, /request commands."""

from __future__ import annotations

from sqlalchemy import select

from shared import casework
from shared.db.models import Request
from shared.domain.requests import OPEN_STATUSES, RequestStatus, parse_number
from shared.domain.text import MAX_REQUEST_CHARS, clean_text, has_words
from shared.flows import actions
from shared.flows.ages import age
from shared.flows.cards import is_overdue, staff_card
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for, staff_request
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name, community_name, status_name
from shared.i18n import t
from shared.taxonomy import LABELS

STAFF_OPS = ("view", "take", "reply", "cat", "move", "res")
QUEUE_LIMIT = 20


def _refused(ctx: FlowContext, request: Request) -> list[Reply]:
    return [Reply(t(ctx.locale, "staff.refused", number=request.number, status=status_name(ctx.locale, request.status)))]


async def on_action(ctx: FlowContext, op: str, request_id: str) -> list[Reply]:
    if op not in STAFF_OPS:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    request, refusal = await staff_request(ctx, request_id)
    if request is None:
        return refusal
    if op == "view":
        return [staff_card(ctx.config, request, ctx.locale, in_group=False, headline="staff.card")]
    if op == "reply":
        if request.status not in OPEN_STATUSES and request.status != RequestStatus.RESOLVED:
            return _refused(ctx, request)
        ctx.state.update({"await": "staff_reply", "request_id": request.id})
        # The card in the group hides private details; the staff member sees them here.
        return [staff_card(ctx.config, request, ctx.locale, in_group=False, headline="staff.card"),
                Reply(t(ctx.locale, "staff.reply_prompt", number=request.number))]
    if op == "cat":
        buttons = [Button(category_name(ctx.locale, label), actions.make("stc", request.id, label))
                   for label in LABELS if label != request.category]
        return [Reply(t(ctx.locale, "staff.choose_category", number=request.number), rows(*buttons, per_row=3))]
    if op == "move":
        buttons = [Button(community_name(ctx.config, c.code, ctx.locale), actions.make("stm", request.id, c.code))
                   for c in ctx.config.communities if c.code != request.community_code]
        return [Reply(t(ctx.locale, "staff.choose_community", number=request.number), rows(*buttons, per_row=2))]
    if op == "take":
        ids = await casework.take(ctx.session, ctx.config, request, ctx.user)
        done = "staff.taken"
    else:
        ids = await casework.resolve(ctx.session, ctx.config, request, ctx.user)
        done = "staff.resolved"
    if ids is None:
        return _refused(ctx, request)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, done, number=request.number))]


async def set_category(ctx: FlowContext, request_id: str, label: str) -> list[Reply]:
    request, refusal = await staff_request(ctx, request_id)
    if request is None:
        return refusal
    if label not in LABELS:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ids = await casework.change_category(ctx.session, ctx.config, request, ctx.user, label)
    if ids is None:
        return _refused(ctx, request)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "staff.category_changed", number=request.number, category=category_name(ctx.locale, label)))]


async def move(ctx: FlowContext, request_id: str, community: str) -> list[Reply]:
    request, refusal = await staff_request(ctx, request_id)
    if request is None:
        return refusal
    if not ctx.config.has_community(community):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ids = await casework.reassign(ctx.session, ctx.config, request, ctx.user, community)
    if ids is None:
        return _refused(ctx, request)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "staff.reassigned", number=request.number,
                    community=community_name(ctx.config, community, ctx.locale)))]


async def on_reply_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    request_id = ctx.state.pop("request_id", None)
    ctx.state.pop("await", None)
    request, refusal = await staff_request(ctx, request_id or 0)
    if request is None:
        return refusal
    cleaned = clean_text(text)
    if not cleaned or not has_words(cleaned) or len(cleaned) > MAX_REQUEST_CHARS:
        ctx.state.update({"await": "staff_reply", "request_id": request.id})
        return [Reply(t(ctx.locale, "report.empty" if len(cleaned) <= MAX_REQUEST_CHARS else "report.too_long",
                        limit=MAX_REQUEST_CHARS))]
    ids = await casework.staff_reply(ctx.session, ctx.config, request, ctx.user, cleaned)
    if ids is None:
        return _refused(ctx, request)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "staff.reply_sent", number=request.number))]


def _listing(ctx: FlowContext, requests: list[Request], title: str) -> Reply:
    buttons = []
    for r in requests:
        mark = t(ctx.locale, "staff.overdue_mark") + " " if is_overdue(r) else ""
        label = t(ctx.locale, "staff.queue_item", mark=mark, number=r.number, category=category_name(ctx.locale, r.category),
                  status=status_name(ctx.locale, r.status), age=age(ctx.locale, r.created_at))
        buttons.append(Button(label, actions.make("st", "view", r.id)))
    return Reply(t(ctx.locale, title), rows(*buttons, per_row=1))


def is_staff(ctx: FlowContext) -> bool:
    return ctx.user.community_code is not None and is_staff_for(ctx, ctx.user.community_code)


async def queue(ctx: FlowContext) -> list[Reply]:
    if not is_staff(ctx):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    stmt = (select(Request).where(Request.community_code == ctx.user.community_code,
                                  Request.status.in_([RequestStatus.ROUTED, RequestStatus.IN_PROGRESS,
                                                      RequestStatus.NEEDS_CATEGORY]))
            .order_by(Request.created_at, Request.id).limit(QUEUE_LIMIT))
    requests = list(await ctx.session.scalars(stmt))
    if not requests:
        return [Reply(t(ctx.locale, "staff.queue_empty"))]
    return [_listing(ctx, requests, "staff.queue_title")]


async def mine(ctx: FlowContext) -> list[Reply]:
    if not is_staff(ctx):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    stmt = (select(Request).where(Request.assignee_id == ctx.user.id, Request.status.in_(list(OPEN_STATUSES)))
            .order_by(Request.created_at).limit(QUEUE_LIMIT))
    requests = list(await ctx.session.scalars(stmt))
    if not requests:
        return [Reply(t(ctx.locale, "staff.mine_empty"))]
    return [_listing(ctx, requests, "staff.mine_title")]


async def show(ctx: FlowContext, args: str | None) -> list[Reply]:
    if not is_staff(ctx) and "admin" not in (ctx.user.roles or []):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    number = (args or "").strip()
    if parse_number(number) is None:
        return [Reply(t(ctx.locale, "staff.request_usage"))]
    request = await ctx.session.scalar(select(Request).where(Request.number == number.upper()))
    if request is None or not is_staff_for(ctx, request.community_code):
        # Another community's request is reported as not found: nothing leaks.
        return [Reply(t(ctx.locale, "staff.not_found", number=number.upper()))]
    return [staff_card(ctx.config, request, ctx.locale, in_group=False, headline="staff.card")]
