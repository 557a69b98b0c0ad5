"""我的诉求: a resident's list, timeline, additions, answers, withdrawal and follow-up."""

from __future__ import annotations

from sqlalchemy import select

from shared import casework
from shared.db.models import Request, RequestEvent
from shared.domain.text import MAX_REQUEST_CHARS, clean_text, has_words
from shared.flows import actions
from shared.flows.ages import age
from shared.flows.cards import resident_view
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import own_request
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name, status_name
from shared.i18n import t
from shared.repo.requests import recent_for_user


async def list_requests(ctx: FlowContext) -> list[Reply]:
    requests = await recent_for_user(ctx.session, ctx.user.id, limit=10)
    if not requests:
        return [Reply(t(ctx.locale, "report.list_empty"))]
    buttons = [Button(t(ctx.locale, "requests.open", number=r.number, category=category_name(ctx.locale, r.category),
                        status=status_name(ctx.locale, r.status), age=age(ctx.locale, r.created_at)),
                      actions.make("req", r.id)) for r in requests]
    return [Reply(t(ctx.locale, "report.list_title"), rows(*buttons, per_row=1))]


async def open_request(ctx: FlowContext, request_id: str) -> list[Reply]:
    request, refusal = await own_request(ctx, request_id)
    if request is None:
        return refusal
    events = list(await ctx.session.scalars(select(RequestEvent).where(RequestEvent.request_id == request.id)
                                            .order_by(RequestEvent.id)))
    return [resident_view(ctx.config, request, events, ctx.locale)]


async def ask_text(ctx: FlowContext, request_id: str, mode: str) -> list[Reply]:
    """Start a two-step input: the next text of this person belongs to this request."""
    request, refusal = await own_request(ctx, request_id)
    if request is None:
        return refusal
    ctx.state.update({"await": mode, "request_id": request.id})
    key = {"add_info": "requests.add_info_prompt", "answer": "requests.answer_prompt"}[mode]
    return [Reply(t(ctx.locale, key, number=request.number))]


async def ask_withdraw(ctx: FlowContext, request_id: str) -> list[Reply]:
    request, refusal = await own_request(ctx, request_id)
    if request is None:
        return refusal
    return [Reply(t(ctx.locale, "requests.withdraw_confirm", number=request.number),
                  rows(Button(t(ctx.locale, "requests.withdraw_yes"), actions.make("wdy", request.id))))]


async def confirm_withdraw(ctx: FlowContext, request_id: str) -> list[Reply]:
    request, refusal = await own_request(ctx, request_id)
    if request is None:
        return refusal
    ids = await casework.withdraw(ctx.session, ctx.config, request, ctx.user)
    if ids is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "requests.withdrawn", number=request.number))]


async def followup(ctx: FlowContext, request_id: str, answer: str) -> list[Reply]:
    request, refusal = await own_request(ctx, request_id)
    if request is None:
        return refusal
    if answer not in ("yes", "no"):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ids = await casework.followup_answer(ctx.session, ctx.config, request, ctx.user, answer == "yes")
    if ids is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await commit_and_deliver(ctx, ids)
    return []


async def rate(ctx: FlowContext, request_id: str, value: str) -> list[Reply]:
    request, refusal = await own_request(ctx, request_id)
    if request is None:
        return refusal
    if not value.isdigit() or not await casework.rate(ctx.session, request, ctx.user, int(value)):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await ctx.session.commit()
    ctx.state.update({"await": "comment", "request_id": request.id})
    return [Reply(t(ctx.locale, "requests.rated"))]


async def on_awaited_text(ctx: FlowContext, text: str | None, attachments: list | None = None) -> list[Reply]:
    """The text that follows 'add information', 'answer' or a rating."""
    mode, request_id = ctx.state.pop("await", None), ctx.state.pop("request_id", None)
    request, refusal = await own_request(ctx, request_id or 0)
    if request is None:
        return refusal
    cleaned = clean_text(text)
    if len(cleaned) > MAX_REQUEST_CHARS:
        ctx.state.update({"await": mode, "request_id": request.id})
        return [Reply(t(ctx.locale, "report.too_long", limit=MAX_REQUEST_CHARS))]
    if not attachments and (not cleaned or not has_words(cleaned)):
        ctx.state.update({"await": mode, "request_id": request.id})
        return [Reply(t(ctx.locale, "report.empty"))]
    if mode == "comment":
        await casework.comment(ctx.session, request, ctx.user, cleaned)
        await ctx.session.commit()
        return [Reply(t(ctx.locale, "requests.comment_saved"))]
    if mode == "answer":
        ids = await casework.resident_answer(ctx.session, ctx.config, request, ctx.user, cleaned)
        done = "requests.answer_sent"
    else:
        ids = await casework.add_info(ctx.session, ctx.config, request, ctx.user, cleaned, attachments)
        done = "requests.info_added"
    if ids is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, done, number=request.number))]


async def follow_existing(ctx: FlowContext, new_id: str, existing_id: str) -> list[Reply]:
    """Follow an open request that says the same, instead of the resident's new one."""
    new, refusal = await own_request(ctx, new_id)
    if new is None:
        return refusal
    existing = await ctx.session.get(Request, int(existing_id)) if existing_id.isdigit() else None
    if existing is None or existing.community_code != new.community_code:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ids = await casework.follow_instead(ctx.session, ctx.config, new, existing, ctx.user)
    if ids is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "requests.following", number=existing.number, new=new.number))]
