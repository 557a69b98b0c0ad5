"""Time-based deliberation work, run by the scheduler with an explicit `now`.

- votes whose closing time has come are counted and their result published;
- supporters are reminded of a meeting (议事会) the day before;
- actions past their due date are flagged to the staff group once.

Each item is claimed by a conditional UPDATE, and every notification has a unique outbox
key, so two schedulers, or one run twice, change and send nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import deliberation as service
from shared.clock import as_utc
from shared.config import CommunitiesConfig
from shared.db.models import DelibAction, DelibMeeting, DelibTopic, DelibVote
from shared.domain import deliberation as rules
from shared.flows.reply import Reply, rows
from shared.i18n import t

BATCH = 200


async def close_due_votes(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    due = list(await session.scalars(select(DelibVote.id).where(DelibVote.closed_at.is_(None), DelibVote.closes_at <= now)
                                     .order_by(DelibVote.closes_at).limit(BATCH)))
    ids: list[int] = []
    for vote_id in due:
        ids += (await service.close_vote(session, config, vote_id, now)).ids
    return ids


async def remind_meetings(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    lead = timedelta(hours=config.defaults.deliberation.meeting_reminder_hours)
    due = list(await session.scalars(select(DelibMeeting).where(DelibMeeting.reminded_at.is_(None),
                                                                DelibMeeting.starts_at > now,
                                                                DelibMeeting.starts_at <= now + lead)
                                     .order_by(DelibMeeting.starts_at).limit(BATCH)))
    ids: list[int] = []
    for meeting in due:
        if not rules.reminder_due(as_utc(meeting.starts_at), now, lead):
            continue
        claimed = await session.scalar(service.guarded(DelibMeeting).where(DelibMeeting.id == meeting.id,
                                                                  DelibMeeting.reminded_at.is_(None))
                                       .values(reminded_at=now).returning(DelibMeeting.id))
        if claimed is None:
            continue
        topic = await session.get(DelibTopic, meeting.topic_id)
        if topic is None or topic.stage in rules.FINAL_STAGES:
            continue
        when = service.local_time(config, meeting.starts_at)
        ids += await service.tell_users(session, await service.supporters(session, topic), f"remind:{meeting.id}",
                                       lambda locale: Reply(t(locale, "deliberation.meeting_reminder", title=topic.title,
                                                              when=when, place=meeting.place),
                                                            rows(service.view_button(locale, topic.id))))
    return ids


async def flag_overdue_actions(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    today = now.astimezone(ZoneInfo(config.defaults.timezone)).date()
    due = list(await session.scalars(select(DelibAction).where(DelibAction.status == "open", DelibAction.due_on < today,
                                                               DelibAction.overdue_alerted_at.is_(None))
                                     .order_by(DelibAction.due_on).limit(BATCH)))
    ids: list[int] = []
    for action in due:
        claimed = await session.scalar(service.guarded(DelibAction).where(DelibAction.id == action.id,
                                                                 DelibAction.overdue_alerted_at.is_(None))
                                       .values(overdue_alerted_at=now).returning(DelibAction.id))
        topic = await session.get(DelibTopic, action.topic_id)
        if claimed is None or topic is None:
            continue
        reply = Reply(t(service.STAFF_LOCALE, "deliberation.action_overdue", id=topic.id, title=topic.title,
                        action=action.title, owner=action.owner, due=action.due_on.isoformat()),
                      rows(service.view_button(service.STAFF_LOCALE, topic.id)))
        ids += await service.tell_group(session, config, topic.community_code, f"overdue:{action.id}", reply)
    return ids


async def deliberation_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """All of the above, in one transaction the caller commits; returns outbox ids to deliver."""
    return [*await close_due_votes(session, config, now), *await remind_meetings(session, config, now),
            *await flag_overdue_actions(session, config, now)]
