"""Queue notifications about a request: to its resident, its community's staff group, a person.

Outbox keys name the recipient (`r:` resident, `g:` staff group, `u<id>:` a person), so the
same event told to two audiences never collides, and the same event told twice is queued once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import CommunitiesConfig
from shared.db.models import Request, User
from shared.flows.reply import Reply
from shared.repo.outbox import queue_notification

STAFF_LOCALE = "zh"
STAFF_TEXT_LIMIT = 1000


async def resident_of(session: AsyncSession, request: Request) -> User | None:
    return await session.get(User, request.user_id) if request.user_id else None


async def to_user(session: AsyncSession, user: User | None, key: str, reply: Reply, request_id: int | None = None) -> int | None:
    if user is None:
        return None
    return await queue_notification(session, key=f"u{user.id}:{key}", chat_id=user.external_id, platform=user.platform,
                                    text=reply.text, options=reply.options_json(), request_id=request_id)


async def to_resident(session: AsyncSession, request: Request, key: str, reply: Reply) -> int | None:
    return await to_user(session, await resident_of(session, request), f"r:{key}:{request.id}", reply, request.id)


def group_of(config: CommunitiesConfig, community: str, kind: str) -> tuple[str, str | int] | None:
    """(platform, chat id) of a community's "staff" or "volunteer" group: its Matrix room when one
    is configured (a centre running its own homeserver), else its Telegram group, else None."""
    entry = config.community(community)
    room = entry.matrix_staff_room if kind == "staff" else entry.matrix_volunteer_room
    if room:
        return "matrix", room
    chat_id = entry.staff_chat_id if kind == "staff" else entry.volunteer_chat_id
    return None if chat_id is None else ("telegram", chat_id)


async def to_staff_group(session: AsyncSession, config: CommunitiesConfig, request: Request, key: str, reply: Reply) -> int | None:
    group = group_of(config, request.community_code, "staff")
    if group is None:
        return None
    return await queue_notification(session, key=f"g:{key}:{request.id}", chat_id=group[1], platform=group[0],
                                    text=reply.text, options=reply.options_json(), request_id=request.id)


def excerpt(text: str) -> str:
    return text if len(text) <= STAFF_TEXT_LIMIT else text[:STAFF_TEXT_LIMIT] + "…"


async def to_followers(session: AsyncSession, request: Request, key: str, text_key: str, **params: object) -> list[int]:
    """Tell everyone following this request (each in their own language)."""
    from sqlalchemy import select

    from shared.db.models import RequestFollower
    from shared.i18n import t

    followers = await session.scalars(select(User).join(RequestFollower, RequestFollower.user_id == User.id)
                                      .where(RequestFollower.request_id == request.id))
    ids = []
    for follower in followers:
        outbox_id = await to_user(session, follower, f"f:{key}:{request.id}",
                                  Reply(t(follower.locale, text_key, number=request.number, **params)), request.id)
        if outbox_id:
            ids.append(outbox_id)
    return ids
