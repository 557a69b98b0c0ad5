"""One entry for a channel: a command, free text, or an action string → replies."""

from __future__ import annotations

from shared.flows import actions, onboarding, report
from shared.flows.context import FlowContext
from shared.flows.reply import Reply
from shared.i18n import t


async def handle_command(ctx: FlowContext, command: str) -> list[Reply]:
    if command == "start":
        return await onboarding.start(ctx)
    if command == "menu" and onboarding.is_onboarded(ctx):
        return [onboarding.next_step(ctx)]
    if command == "help":
        return [Reply(t(ctx.locale, "menu.help_text"))]
    return [onboarding.next_step(ctx)]


async def handle_action(ctx: FlowContext, data: str | None) -> list[Reply]:
    action = actions.parse(data)
    if action is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    verb, args = action.verb, action.args
    if verb == "consent":
        return await onboarding.on_consent(ctx, args[0])
    if verb == "comm":
        return await onboarding.on_community(ctx, args[0])
    if verb == "lang":
        return await onboarding.on_language(ctx, args[0])
    if verb == "menu":
        return await report.on_menu(ctx, args[0])
    if verb == "cat":
        return await report.on_category_choice(ctx, args[0], args[1])
    return [Reply(t(ctx.locale, "errors.stale_button"))]


async def handle_text(ctx: FlowContext, text: str | None, *, idempotency_key: str, attachments: list | None = None) -> list[Reply]:
    return await report.on_text(ctx, text, idempotency_key=idempotency_key, attachments=attachments)
