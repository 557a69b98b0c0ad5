"""Reporting a problem: free text becomes a request with a number at once."""

from __future__ import annotations

import logging

from shared.domain.requests import RequestStatus
from shared.domain.text import MAX_REQUEST_CHARS, clean_text, has_words
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.menu import main_menu
from shared.flows.my_requests import list_requests
from shared.flows.onboarding import is_onboarded, language_prompt, next_step
from shared.flows.reply import Reply
from shared.flows.texts import category_name
from shared.i18n import t
from shared.intake.outcome import route
from shared.queue.contracts import CLASSIFY_REQUEST, ClassifyRequest
from shared.repo.requests import add_event, create_request, get_request, requests_in_last_hour
from shared.taxonomy import LABELS

log = logging.getLogger("linju.flows.report")


async def on_text(ctx: FlowContext, text: str | None, *, idempotency_key: str, attachments: list | None = None,
                  on_behalf_name: str | None = None) -> list[Reply]:
    """Store the request, reply with its number, enqueue intake — never wait on intake."""
    if not is_onboarded(ctx):
        return [Reply(t(ctx.locale, "consent.needed"))] if ctx.user.consent_at is None else [next_step(ctx)]
    problem = invalid_text(ctx, text)
    if problem is not None:
        return [problem]
    cleaned = clean_text(text)
    if await requests_in_last_hour(ctx.session, ctx.user.id) >= ctx.max_requests_per_hour:
        log.warning("flood control: request refused", extra={"user_id": ctx.user.id})
        return [Reply(t(ctx.locale, "report.too_many", limit=ctx.max_requests_per_hour))]
    request, created = await create_request(
        ctx.session,
        community_code=ctx.user.community_code,
        user_id=ctx.user.id,
        text=cleaned,
        idempotency_key=idempotency_key,
        source=ctx.platform,
        attachments=attachments,
        on_behalf_name=on_behalf_name,
    )
    if not created:
        # The same message delivered again: the resident already has their number.
        log.info("duplicate message ignored", extra={"request_id": request.id})
        return []
    log.info("request stored", extra={"request_id": request.id, "community": request.community_code})
    try:
        await ctx.enqueue(CLASSIFY_REQUEST, ClassifyRequest(request_id=request.id))
    except Exception:  # noqa: BLE001 - the scheduler re-enqueues requests stuck in "received"
        log.warning("enqueue failed; the scheduler will pick the request up", extra={"request_id": request.id},
                    exc_info=True)
    return [Reply(t(ctx.locale, "report.ack", number=request.number))]


async def on_menu(ctx: FlowContext, item: str) -> list[Reply]:
    if not is_onboarded(ctx):
        return [next_step(ctx)]
    if item == "report":
        return [Reply(t(ctx.locale, "report.ask"))]
    if item == "requests":
        return await list_requests(ctx)
    if item == "behalf":
        ctx.state.update({"await": "behalf_name"})
        return [Reply(t(ctx.locale, "report.behalf_name"))]
    if item == "language":
        return [language_prompt(ctx.locale)]
    if item == "fridge":
        from shared.flows.fridge import entry

        return await entry(ctx)
    if item == "help":
        return [Reply(t(ctx.locale, "menu.help_text")), main_menu(ctx.config, ctx.user.community_code, ctx.locale)]
    return [Reply(t(ctx.locale, "errors.stale_button"))]


async def on_category_choice(ctx: FlowContext, request_id: str, label: str) -> list[Reply]:
    """The resident picked a category for a request intake was unsure about."""
    request = await get_request(ctx.session, int(request_id)) if request_id.isdigit() else None
    if request is None or request.user_id != ctx.user.id:
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    if label not in LABELS or request.status != RequestStatus.NEEDS_CATEGORY:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    outbox_ids = await route(ctx.session, ctx.config, request, label, urgent=request.urgent,
                             confidence=request.confidence, actor=f"user:{ctx.user.id}",
                             only_from={RequestStatus.NEEDS_CATEGORY}, offer_duplicate=True)
    if not outbox_ids:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    await add_event(ctx.session, request.id, "category_chosen", actor=f"user:{ctx.user.id}", label=label)
    await commit_and_deliver(ctx, outbox_ids)
    return [Reply(t(ctx.locale, "intake.chosen", category=category_name(ctx.locale, label)))]


NAME_LIMIT = 40


def invalid_text(ctx: FlowContext, text: str | None) -> Reply | None:
    """The kind reply for text that cannot be a request, or None when it can."""
    cleaned = clean_text(text)
    if len(cleaned) > MAX_REQUEST_CHARS:
        return Reply(t(ctx.locale, "report.too_long", limit=MAX_REQUEST_CHARS))
    if not cleaned or not has_words(cleaned):
        # A photo or location alone, emoji-only or invisible text: ask for words, store nothing.
        return Reply(t(ctx.locale, "report.empty"))
    return None


async def on_behalf_name(ctx: FlowContext, text: str | None) -> list[Reply]:
    """Reporting for a neighbour without a chat account: first their name (or how to find them)."""
    name = clean_text(text)
    if not name or not has_words(name) or len(name) > NAME_LIMIT:
        return [Reply(t(ctx.locale, "report.behalf_name_invalid", limit=NAME_LIMIT))]
    ctx.state.update({"await": "behalf_text", "behalf_name": name})
    return [Reply(t(ctx.locale, "report.behalf_text", name=name))]


async def on_behalf_text(ctx: FlowContext, text: str | None, *, idempotency_key: str, attachments: list | None = None) -> list[Reply]:
    problem = invalid_text(ctx, text)
    if problem is not None:
        return [problem]  # still waiting for the neighbour's problem
    name = ctx.state.get("behalf_name")
    ctx.state.clear()
    return await on_text(ctx, text, idempotency_key=idempotency_key, attachments=attachments, on_behalf_name=name)
