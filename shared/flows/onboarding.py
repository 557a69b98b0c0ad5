"""/start: consent (PIPL notice) → community → language → main menu."""

from __future__ import annotations

from shared.domain.permissions import community_is_fixed
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.menu import main_menu
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import brand_name, community_name
from shared.i18n import LOCALES, t
from shared.repo.users import give_consent


def consent_prompt(locale: str) -> Reply:
    return Reply(
        t(locale, "consent.notice"),
        rows(Button(t(locale, "consent.accept"), actions.make("consent", "yes")),
             Button(t(locale, "consent.decline"), actions.make("consent", "no"))),
    )


def community_prompt(ctx: FlowContext) -> Reply:
    buttons = [
        Button(f"{community_name(ctx.config, c.code, ctx.locale)} · {brand_name(ctx.config, c.code, ctx.locale)}",
               actions.make("comm", c.code))
        for c in ctx.config.communities
    ]
    return Reply(t(ctx.locale, "community.ask"), rows(*buttons, per_row=1))


def language_prompt(locale: str) -> Reply:
    return Reply(
        t(locale, "language.ask"),
        rows(Button(t(locale, "language.zh"), actions.make("lang", "zh")),
             Button(t(locale, "language.en"), actions.make("lang", "en"))),
    )


def is_onboarded(ctx: FlowContext) -> bool:
    return ctx.user.consent_at is not None and ctx.user.community_code is not None


def next_step(ctx: FlowContext) -> Reply:
    """What to ask next for a person who is not fully set up, or the menu."""
    if ctx.user.consent_at is None:
        return consent_prompt(ctx.locale)
    if ctx.user.community_code is None or not ctx.config.has_community(ctx.user.community_code):
        return community_prompt(ctx)
    return main_menu(ctx.config, ctx.user.community_code, ctx.locale)


async def start(ctx: FlowContext) -> list[Reply]:
    ctx.state.clear()
    if ctx.user.consent_at is not None and ctx.user.community_code is not None:
        if community_is_fixed(ctx.user.roles, ctx.user.community_code):
            return [next_step(ctx)]   # staff: their community is set by an administrator
        # A returning person may want to change community: offer it with the menu.
        return [community_prompt(ctx)]
    return [next_step(ctx)]


async def on_consent(ctx: FlowContext, answer: str) -> list[Reply]:
    if answer == "yes":
        give_consent(ctx.user)
        await ctx.session.commit()
        return [community_prompt(ctx)]
    if answer == "no":
        return [Reply(t(ctx.locale, "consent.declined"))]
    return [Reply(t(ctx.locale, "errors.stale_button"))]


async def on_community(ctx: FlowContext, code: str) -> list[Reply]:
    if ctx.user.consent_at is None:
        return [consent_prompt(ctx.locale)]
    if not ctx.config.has_community(code):
        return [Reply(t(ctx.locale, "community.unknown")), community_prompt(ctx)]
    if code != ctx.user.community_code and community_is_fixed(ctx.user.roles, ctx.user.community_code):
        return [Reply(t(ctx.locale, "community.set_by_admin",
                        community=community_name(ctx.config, ctx.user.community_code, ctx.locale))),
                next_step(ctx)]
    ctx.user.community_code = code
    await ctx.session.commit()
    chosen = t(ctx.locale, "community.chosen", community=community_name(ctx.config, code, ctx.locale),
               brand=brand_name(ctx.config, code, ctx.locale))
    return [Reply(chosen), language_prompt(ctx.locale)]


async def on_language(ctx: FlowContext, locale: str) -> list[Reply]:
    if locale not in LOCALES:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    if ctx.user.consent_at is None:
        return [consent_prompt(locale)]
    ctx.user.locale = locale
    await ctx.session.commit()
    return [Reply(t(locale, "language.chosen")), next_step(ctx)]
