"""Load the request an action names, and refuse unless this person may act on it."""

from __future__ import annotations

from shared.db.models import Request
from shared.domain.permissions import is_owner, is_staff_of
from shared.flows.context import FlowContext
from shared.flows.reply import Reply
from shared.i18n import t
from shared.repo.requests import get_request


async def _load(ctx: FlowContext, request_id: str | int) -> Request | None:
    if isinstance(request_id, str):
        if not request_id.isdigit() or len(request_id) > 18:
            return None
        request_id = int(request_id)
    return await get_request(ctx.session, request_id)


async def own_request(ctx: FlowContext, request_id: str | int) -> tuple[Request | None, list[Reply]]:
    request = await _load(ctx, request_id)
    if request is None or not is_owner(ctx.user.id, request.user_id):
        return None, [Reply(t(ctx.locale, "errors.not_allowed"))]
    return request, []


def is_staff_for(ctx: FlowContext, community: str) -> bool:
    return is_staff_of(ctx.user.roles, ctx.user.community_code, community)


async def staff_request(ctx: FlowContext, request_id: str | int) -> tuple[Request | None, list[Reply]]:
    request = await _load(ctx, request_id)
    if request is None or not is_staff_for(ctx, request.community_code):
        return None, [Reply(t(ctx.locale, "staff.not_staff"))]
    return request, []
