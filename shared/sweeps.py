"""Time-driven rules over requests (run by the scheduler with an explicit `now`).

Each step is a conditional UPDATE on a stage column, so a sweep that runs twice,
or in two schedulers at once, sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import as_utc
from shared.casework import followup_question
from shared.config import CommunitiesConfig
from shared.db.models import Request, User
from shared.domain.requests import RequestStatus
from shared.flows.cards import staff_card
from shared.flows.reply import Reply
from shared.flows.texts import format_due
from shared.i18n import t
from shared.repo.requests import add_event, transition

ACTIVE = (RequestStatus.ROUTED, RequestStatus.IN_PROGRESS)
BATCH = 500


async def _advance(session: AsyncSession, request_id: int, column, current: int, nxt: int) -> bool:  # type: ignore[no-untyped-def]
    result = await session.execute(update(Request).where(Request.id == request_id, column == current).values({column: nxt})
                                   .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def _take_stage(session: AsyncSession, column, current: int, nxt: int, *criteria) -> list[Request]:  # type: ignore[no-untyped-def]
    """Move up to BATCH matching requests from stage `current` to `nxt` in one statement and return
    them. The stage is re-checked by the UPDATE itself, so a sweep running twice, or in two
    schedulers at once, takes each request once."""
    chosen = select(Request.id).where(*criteria, column == current).order_by(Request.id).limit(BATCH)
    stmt = (update(Request).where(Request.id.in_(chosen.scalar_subquery()), column == current)
            .values({column: nxt}).returning(Request)
            .execution_options(synchronize_session=False, populate_existing=True))
    return list((await session.scalars(stmt)).all())


async def _users(session: AsyncSession, ids: set[int | None]) -> dict[int, User]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {u.id: u for u in await session.scalars(select(User).where(User.id.in_(wanted)))}


async def sla_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """Overdue requests: a reminder to the assignee (or the team), then escalation to the staff group."""
    grace = timedelta(hours=config.defaults.sla_escalate_after_hours)
    outbox: list[int | None] = []
    with session.no_autoflush:  # events are written once, with the batch, not before every notification
        due = await _take_stage(session, Request.sla_stage, 0, 1, Request.status.in_(ACTIVE), Request.due_at < now)
        assignees = await _users(session, {r.assignee_id for r in due})
        for request in due:
            await add_event(session, request.id, "sla_reminder")
            text = t(notify.STAFF_LOCALE, "staff.sla_reminder", number=request.number,
                     due=format_due(config, notify.STAFF_LOCALE, request.due_at))
            card = staff_card(config, request, notify.STAFF_LOCALE, in_group=True)
            if request.assignee_id:
                outbox.append(await notify.to_user(session, assignees.get(request.assignee_id),
                                                   f"sla_reminder:{request.id}:{request.due_at.isoformat()}",
                                                   Reply(text, card.buttons), request.id))
            else:
                outbox += await notify.to_staff_group(session, config, request, f"sla_reminder:{request.due_at.isoformat()}",
                                                      Reply(text + "\n\n" + card.text, card.buttons))
        late = await _take_stage(session, Request.sla_stage, 1, 2, Request.status.in_(ACTIVE), Request.due_at < now - grace)
        for request in late:
            await add_event(session, request.id, "sla_escalated")
            card = staff_card(config, request, notify.STAFF_LOCALE, in_group=True)
            outbox += await notify.to_staff_group(
                session, config, request, f"sla_escalated:{request.due_at.isoformat()}",
                Reply(t(notify.STAFF_LOCALE, "staff.sla_escalated", number=request.number) + "\n\n" + card.text, card.buttons))
    return [i for i in outbox if i]


async def followup_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """Resolved requests the resident has not answered: one reminder, then closed as unrated."""
    remind = timedelta(days=config.defaults.followup_remind_after_days)
    close = remind + timedelta(days=config.defaults.followup_close_after_days)
    outbox: list[int | None] = []
    waiting = await _take_stage(session, Request.followup_stage, 0, 1, Request.status == RequestStatus.RESOLVED,
                                Request.solved.is_(None), Request.resolved_at < now - remind)
    for request in waiting:
        await add_event(session, request.id, "followup_reminder")
        question = await followup_question(session, request, reminder=True)
        outbox.append(await notify.to_resident(session, request, f"followup_reminder:{request.resolved_at.isoformat()}",
                                               question))
    silent = await session.scalars(select(Request).where(
        Request.status == RequestStatus.RESOLVED, Request.resolved_at < now - close,
        or_(Request.followup_stage == 1, Request.solved.is_(True))).limit(BATCH))
    for request in list(silent):
        if await transition(session, request.id, RequestStatus.CLOSED, only_from={RequestStatus.RESOLVED},
                            closed_at=now, followup_stage=2) is None:
            continue
        await add_event(session, request.id, "closed_unrated")
    return [i for i in outbox if i]


CHASE_EVERY = timedelta(days=1)


async def referral_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """Outside referrals past their deadline: chase them in the staff group, once a day until answered."""
    from shared.db.models import Referral

    outbox: list[int | None] = []
    overdue = await session.scalars(select(Referral).where(
        Referral.answered_at.is_(None), Referral.deadline < now,
        or_(Referral.chased_at.is_(None), Referral.chased_at < now - CHASE_EVERY)).limit(BATCH))
    for referral in list(overdue):
        claimed = await session.execute(update(Referral).where(
            Referral.id == referral.id, Referral.answered_at.is_(None),
            or_(Referral.chased_at.is_(None), Referral.chased_at < now - CHASE_EVERY)).values(chased_at=now))
        request = await session.get(Request, referral.request_id)
        if claimed.rowcount != 1 or request is None or request.status not in ACTIVE:
            continue
        await add_event(session, request.id, "referral_chased", body=referral.body, reference=referral.reference)
        body = config.referral_body(referral.body)
        name = body.name["zh"] if body else referral.body
        outbox += await notify.to_staff_group(session, config, request, f"referral_chase:{referral.id}:{now.date()}",
                                              Reply(t(notify.STAFF_LOCALE, "staff.referral_chase", number=request.number,
                                                      body=name, reference=referral.reference)))
    return [i for i in outbox if i]


async def task_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """Volunteer tasks over time: remind the claimer, tell staff about overdue ones, re-offer wider,
    then alert staff, then expire tasks nobody took. Stage columns make every step happen once."""
    from shared import volunteering
    from shared.db.models import Task
    from shared.domain.tasks import TaskStatus

    remind = timedelta(hours=config.defaults.task_reminder_hours)
    reoffer = timedelta(hours=config.defaults.task_reoffer_hours)
    outbox: list[int | None] = []

    async def staff(task: Task, key: str, text: str) -> None:
        outbox.extend(await notify.to_group(session, config, task.community_code, "staff",
                                            f"g:{key}:{task.id}:{task.offer_round}", text))

    async def step(task: Task, current: int, nxt: int) -> bool:
        result = await session.execute(update(Task).where(Task.id == task.id, Task.reminder_stage == current,
                                                          Task.status == task.status).values(reminder_stage=nxt))
        return result.rowcount == 1

    claimed = (TaskStatus.CLAIMED, TaskStatus.STARTED)
    # Only tasks whose window starts soon can need anything; the exact timing is checked per task.
    candidates = list(await session.scalars(select(Task).where(
        Task.status.in_([*claimed, TaskStatus.OPEN]), Task.window_start < now + max(remind, reoffer)).limit(BATCH * 4)))
    for task in candidates:
        start, end = as_utc_dt(task.window_start), as_utc_dt(task.window_end)
        if task.status in claimed:
            if end < now and task.reminder_stage < 2 and await step(task, task.reminder_stage, 2):
                claimer = await session.get(User, task.claimer_id)
                await staff(task, "task_overdue", t(notify.STAFF_LOCALE, "tasks.overdue_staff", title=task.title,
                                                    name=(claimer.display_name if claimer else "-") or "-"))
            elif start - remind <= now < end and task.reminder_stage == 0 and await step(task, 0, 1):
                claimer = await session.get(User, task.claimer_id)
                locale = (claimer.locale if claimer else None) or "zh"
                outbox.append(await notify.to_user(session, claimer, f"task_reminder:{task.id}:{task.offer_round}",
                                                   Reply(t(locale, "tasks.reminder", title=task.title,
                                                           window=volunteering.window_text(config, locale, task)))))
            continue
        # Open: nobody has taken it yet.
        if end < now:
            expired = await session.execute(update(Task).where(Task.id == task.id, Task.status == TaskStatus.OPEN)
                                            .values(status=TaskStatus.EXPIRED))
            if expired.rowcount == 1:
                await staff(task, "task_expired", t(notify.STAFF_LOCALE, "tasks.expired_staff", title=task.title))
        elif start <= now and task.reminder_stage < 2 and await step(task, task.reminder_stage, 2):
            await staff(task, "task_no_taker", t(notify.STAFF_LOCALE, "tasks.no_taker_staff", title=task.title))
        elif start - reoffer <= now and task.reminder_stage == 0 and await step(task, 0, 1):
            outbox.extend(await volunteering.offer(session, config, task, wider=True))
    return [i for i in outbox if i]


async def recognition_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """In the first days of a month: thank last month's volunteers by name (only those who agreed)."""
    from zoneinfo import ZoneInfo

    from shared import volunteering

    local = as_utc_dt(now).astimezone(ZoneInfo(config.defaults.timezone))
    if local.day > 3:
        return []
    this_month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    outbox: list[int | None] = []
    for community in config.communities:
        if not notify.groups_of(config, community.code, "volunteer"):
            continue
        top = await volunteering.recognition(session, community.code, last_month, this_month)
        if not top:
            continue
        lines = "\n".join(t("zh", "tasks.recognition_line", rank=i, name=name, hours=round(hours, 1))
                          for i, (name, hours) in enumerate(top, start=1))
        text = t("zh", "tasks.recognition", month=f"{last_month.year}-{last_month.month:02d}",
                 community=community.name["zh"], lines=lines)
        outbox += await notify.to_group(session, config, community.code, "volunteer",
                                        f"g:recognition:{community.code}:{last_month:%Y-%m}", text)
    return [i for i in outbox if i]


def as_utc_dt(value: datetime) -> datetime:
    return as_utc(value)
