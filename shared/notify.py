"""Queue notifications about a request: to its resident, its community's staff group, a person.

Outbox keys name the recipient (`r:` resident, `g:` staff group, `u<id>:` a person), so the
same event told to two audiences never collides, and the same event told twice is queued once.
A community's group is its Telegram group, its Matrix room, or both (`groups_of`): every producer
that posts into a group goes through `to_group` (or `group_rows`), one row per group.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import CommunitiesConfig
from shared.db.models import Request, User
from shared.flows.reply import Reply
from shared.repo.outbox import queue_notification

STAFF_LOCALE = "zh"
STAFF_TEXT_LIMIT = 1000
# A Matrix room's group row: the Telegram group's key plus this.
MATRIX_KEY_SUFFIX = ":mx"


async def resident_of(session: AsyncSession, request: Request) -> User | None:
    return await session.get(User, request.user_id) if request.user_id else None


async def to_user(session: AsyncSession, user: User | None, key: str, reply: Reply, request_id: int | None = None) -> int | None:
    if user is None:
        return None
    return await queue_notification(session, key=f"u{user.id}:{key}", chat_id=user.external_id, platform=user.platform,
                                    text=reply.text, options=reply.options_json(), request_id=request_id)


async def to_resident(session: AsyncSession, request: Request, key: str, reply: Reply) -> int | None:
    return await to_user(session, await resident_of(session, request), f"r:{key}:{request.id}", reply, request.id)


class Group(NamedTuple):
    """One place a community's staff or volunteers read: a Telegram group or a Matrix room."""

    platform: str
    chat_id: str | int

    def key(self, key: str) -> str:
        """The outbox key of `key` told in this group. A Telegram group keeps the key as it is; a Matrix
        room's row gets its own, so a community with both gets one row in each, each sent once."""
        return key if self.platform == "telegram" else f"{key}{MATRIX_KEY_SUFFIX}"


def groups_of(config: CommunitiesConfig, community: str, kind: Literal["staff", "volunteer"]) -> list[Group]:
    """Every group of a community's `kind` ("staff" or "volunteer"): its Telegram group and its Matrix
    room, each when configured (a centre may run both while it moves to its own homeserver)."""
    entry = config.community(community)
    chat_id = entry.staff_chat_id if kind == "staff" else entry.volunteer_chat_id
    room = entry.matrix_staff_room if kind == "staff" else entry.matrix_volunteer_room
    groups = [] if chat_id is None else [Group("telegram", chat_id)]
    return groups + ([Group("matrix", room)] if room else [])


def group_rows(config: CommunitiesConfig, community: str, kind: Literal["staff", "volunteer"], key: str,
               **values: Any) -> list[dict[str, Any]]:
    """Outbox rows (for one bulk INSERT) of the same notification for each of the community's groups."""
    return [{"key": group.key(key), "platform": group.platform, "chat_id": str(group.chat_id), **values}
            for group in groups_of(config, community, kind)]


async def to_group(session: AsyncSession, config: CommunitiesConfig, community: str,
                   kind: Literal["staff", "volunteer"], key: str, text: str, *,
                   options: list[list[dict[str, str]]] | None = None, request_id: int | None = None,
                   batch: str | None = None) -> list[int]:
    """Queue one notification into every group of the community's `kind`: the ids queued now (a key
    already queued adds nothing, so the same event told twice is one message per group)."""
    ids = []
    for group in groups_of(config, community, kind):
        outbox_id = await queue_notification(session, key=group.key(key), chat_id=group.chat_id,
                                             platform=group.platform, text=text, options=options,
                                             request_id=request_id, batch=batch)
        if outbox_id:
            ids.append(outbox_id)
    return ids


async def to_staff_group(session: AsyncSession, config: CommunitiesConfig, request: Request, key: str,
                         reply: Reply) -> list[int]:
    return await to_group(session, config, request.community_code, "staff", f"g:{key}:{request.id}", reply.text,
                          options=reply.options_json(), request_id=request.id)


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
