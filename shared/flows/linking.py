"""/link: ask for a one-time code on one platform, send it back from the other (shared/linking.py)."""

from __future__ import annotations

from shared import linking
from shared.flows.context import FlowContext
from shared.flows.reply import Reply
from shared.i18n import t

FAILURES = "link_failures"   # kept in the conversation state of the account typing codes


async def on_link(ctx: FlowContext, args: str | None) -> list[Reply]:
    code = (args or "").strip().replace(" ", "")
    if not code:
        issued = await linking.issue_code(ctx.session, ctx.user)
        await ctx.session.commit()
        return [Reply(t(ctx.locale, "linking.code", code=issued, minutes=int(linking.CODE_TTL.total_seconds() // 60)))]
    failures = int(ctx.state.get(FAILURES, 0))
    if failures >= linking.MAX_FAILURES:
        return [Reply(t(ctx.locale, "linking.too_many"))]
    outcome, target = await linking.redeem(ctx.session, ctx.user, code)
    if outcome is not linking.LinkOutcome.LINKED:   # redeem changed nothing
        if outcome is linking.LinkOutcome.INVALID:
            ctx.state[FAILURES] = failures + 1
        return [Reply(t(ctx.locale, f"linking.{outcome.value}"))]
    await ctx.session.commit()
    ctx.state.pop(FAILURES, None)
    return [Reply(t(target.locale if target else ctx.locale, "linking.linked"))]
