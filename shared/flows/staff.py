"""Staff triage in chat: the actions on a request card and the /queue, /mine, /request commands."""

from __future__ import annotations

from sqlalchemy import select

from datetime import timedelta

from shared import announcements, casework
from shared.clock import utcnow
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
from shared.stats import category_stats
from shared.taxonomy import LABELS

STAFF_OPS = ("view", "take", "reply", "cat", "move", "res", "ref", "refok", "task")
REFERENCE_LIMIT = 60
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
    if op == "task":
        if request.status not in OPEN_STATUSES:
            return _refused(ctx, request)
        from shared.flows.tasks import from_request_prompt

        return await from_request_prompt(ctx, request.id)
    if op == "ref":
        if request.status not in (RequestStatus.ROUTED, RequestStatus.IN_PROGRESS):
            return _refused(ctx, request)
        buttons = [Button(b.name.get(ctx.locale, b.name["zh"]), actions.make("stf", request.id, b.code))
                   for b in ctx.config.defaults.referral_bodies]
        return [Reply(t(ctx.locale, "staff.choose_body", number=request.number), rows(*buttons, per_row=2))]
    if op == "refok":
        if not await casework.referral_answered(ctx.session, request, ctx.user):
            return [Reply(t(ctx.locale, "staff.no_referral", number=request.number))]
        await ctx.session.commit()
        return [Reply(t(ctx.locale, "staff.referral_answered", number=request.number))]
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


async def choose_body(ctx: FlowContext, request_id: str, body: str) -> list[Reply]:
    request, refusal = await staff_request(ctx, request_id)
    if request is None:
        return refusal
    if ctx.config.referral_body(body) is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ctx.state.update({"await": "referral_ref", "request_id": request.id, "body": body})
    return [Reply(t(ctx.locale, "staff.reference_prompt", number=request.number))]


async def on_reference_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    request_id, body = ctx.state.get("request_id"), ctx.state.get("body")
    request, refusal = await staff_request(ctx, request_id or 0)
    if request is None:
        ctx.state.clear()
        return refusal
    reference = clean_text(text)
    if not reference or not has_words(reference) or len(reference) > REFERENCE_LIMIT:
        return [Reply(t(ctx.locale, "staff.reference_invalid", limit=REFERENCE_LIMIT))]
    ctx.state.clear()
    ids = await casework.refer(ctx.session, ctx.config, request, ctx.user, str(body), reference)
    if ids is None:
        return _refused(ctx, request)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "staff.referred", number=request.number))]


async def merge(ctx: FlowContext, args: str | None) -> list[Reply]:
    """/merge DUPLICATE INTO — close a duplicate; its reporter follows the other request."""
    if not is_staff(ctx):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    parts = (args or "").split()
    if len(parts) != 2 or any(parse_number(p) is None for p in parts):
        return [Reply(t(ctx.locale, "staff.merge_usage"))]
    found = [await ctx.session.scalar(select(Request).where(Request.number == p.upper())) for p in parts]
    if any(r is None or not is_staff_for(ctx, r.community_code) for r in found):
        return [Reply(t(ctx.locale, "staff.not_found", number=" / ".join(p.upper() for p in parts)))]
    duplicate, into = found
    ids = await casework.merge(ctx.session, ctx.config, duplicate, into, ctx.user)
    if ids is None:
        return [Reply(t(ctx.locale, "staff.merge_refused", number=duplicate.number, into=into.number))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "staff.merge_done", number=duplicate.number, into=into.number))]


async def start_announcement(ctx: FlowContext) -> list[Reply]:
    if not is_staff(ctx):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    ctx.state.update({"await": "announce_text"})
    return [Reply(t(ctx.locale, "staff.announce_prompt",
                    community=community_name(ctx.config, ctx.user.community_code, ctx.locale)))]


async def on_announcement_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    cleaned = clean_text(text)
    if not cleaned or not has_words(cleaned) or len(cleaned) > MAX_REQUEST_CHARS:
        return [Reply(t(ctx.locale, "report.empty" if len(cleaned) <= MAX_REQUEST_CHARS else "report.too_long",
                        limit=MAX_REQUEST_CHARS))]
    count = await announcements.count_recipients(ctx.session, ctx.user.community_code)
    ctx.state.update({"await": "announce_confirm", "text": cleaned})
    return [Reply(t(ctx.locale, "staff.announce_confirm", count=count, text=cleaned),
                  rows(Button(t(ctx.locale, "staff.announce_send"), actions.make("ann", "yes")),
                       Button(t(ctx.locale, "staff.announce_cancel"), actions.make("ann", "no"))))]


async def confirm_announcement(ctx: FlowContext, answer: str) -> list[Reply]:
    text = ctx.state.get("text") if ctx.state.get("await") == "announce_confirm" else None
    ctx.state.clear()
    if not is_staff(ctx):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    if answer != "yes" or not text:
        return [Reply(t(ctx.locale, "requests.cancelled" if answer == "no" else "errors.stale_button"))]
    announcement, ids = await announcements.announce(ctx.session, ctx.user.community_code, ctx.user, text)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "staff.announce_queued", count=len(ids)))]


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


async def stats(ctx: FlowContext) -> list[Reply]:
    if not is_staff(ctx):
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    now = utcnow()
    replies = []
    for period, days in (("week", 7), ("month", 30)):
        figures = await category_stats(ctx.session, ctx.user.community_code, now - timedelta(days=days), now)
        lines = [t(ctx.locale, f"staff.stats_{period}", community=community_name(ctx.config, ctx.user.community_code, ctx.locale))]
        for label, row in figures.items():
            name = t(ctx.locale, "staff.stats_total") if label == "*" else category_name(ctx.locale, label)
            lines.append(t(ctx.locale, "staff.stats_line", category=name, received=row.received, resolved=row.resolved,
                           response=_fmt(row.median_first_response_hours), sla=_fmt(row.sla_met_pct),
                           satisfaction=_fmt(row.satisfaction)))
        replies.append(Reply("\n".join(lines)))
    return replies
