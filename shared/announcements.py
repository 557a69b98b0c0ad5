"""Announcements from staff to every resident of a community, through the rate-limited delivery path."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.db.models import Announcement, OutboxMessage, User
from shared.flows.reply import Reply
from shared.i18n import t
from shared.repo.outbox import queue_notification


def _recipients_query(community: str):  # type: ignore[no-untyped-def]
    return select(User).where(User.community_code == community, User.consent_at.is_not(None))


async def count_recipients(session: AsyncSession, community: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(_recipients_query(community).subquery())) or 0)


async def announce(session: AsyncSession, community: str, author: User, text: str) -> tuple[Announcement, list[int]]:
    announcement = Announcement(community_code=community, author_id=author.id, text=text)
    session.add(announcement)
    await session.flush()
    batch = f"announcement:{announcement.id}"
    ids = []
    for user in await session.scalars(_recipients_query(community)):
        outbox_id = await queue_notification(session, key=f"ann:{announcement.id}:{user.id}", chat_id=user.external_id,
                                             platform=user.platform, text=text, batch=batch)
        if outbox_id:
            ids.append(outbox_id)
    announcement.recipients = len(ids)
    return announcement, ids


async def report_sweep(session: AsyncSession, now: datetime) -> list[int]:
    """Tell each author how their announcement went once every message is sent or failed."""
    ids = []
    for announcement in list(await session.scalars(select(Announcement).where(Announcement.reported_at.is_(None)))):
        batch = f"announcement:{announcement.id}"
        rows = dict((await session.execute(select(OutboxMessage.status, func.count()).where(OutboxMessage.batch == batch)
                                           .group_by(OutboxMessage.status))).all())
        if rows.get("pending") or rows.get("sending"):
            continue
        done = await session.execute(update(Announcement).where(Announcement.id == announcement.id,
                                                                Announcement.reported_at.is_(None)).values(reported_at=now))
        if done.rowcount != 1:
            continue
        author = await session.get(User, announcement.author_id)
        locale = author.locale if author else "zh"
        outbox_id = await notify.to_user(session, author, f"ann_report:{announcement.id}", Reply(
            t(locale, "staff.announce_report", sent=rows.get("sent", 0), failed=rows.get("failed", 0))))
        if outbox_id:
            ids.append(outbox_id)
    return ids
