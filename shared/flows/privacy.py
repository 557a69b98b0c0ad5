"""/mydata and /forgetme."""

from __future__ import annotations

import json

from shared import privacy
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

CHUNK = 3500


async def my_data(ctx: FlowContext) -> list[Reply]:
    data = await privacy.export_user_data(ctx.session, ctx.user)
    body = json.dumps(data, ensure_ascii=False, indent=1)
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    return [Reply(t(ctx.locale, "privacy.mydata_title"))] + [Reply(chunk) for chunk in chunks]


async def ask_forget(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "privacy.forget_confirm"),
                  rows(Button(t(ctx.locale, "privacy.forget_yes"), actions.make("fm", "yes")),
                       Button(t(ctx.locale, "privacy.forget_no"), actions.make("fm", "no"))))]


async def forget(ctx: FlowContext, answer: str) -> list[Reply]:
    locale = ctx.locale
    if answer != "yes":
        return [Reply(t(locale, "requests.cancelled"))]
    outbox = await privacy.forget_user(ctx.session, ctx.user, ctx.config)
    await commit_and_deliver(ctx, outbox)
    ctx.state.clear()
    return [Reply(t(locale, "privacy.forgotten"))]
