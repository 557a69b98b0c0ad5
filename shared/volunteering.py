"""Volunteers and their tasks: registration, approval, offers, claims, hours. Each rule once, here.

Operations return outbox ids to deliver after the caller commits (see shared.flows.deliver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, cast, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import as_utc, utcnow
from shared.config import CommunitiesConfig
from shared.db.models import OutboxMessage, Request, Task, User, Volunteer
from shared.db.upsert import insert_for
from shared.domain.requests import OPEN_STATUSES
from shared.domain.tasks import ACTIVE, TaskStatus, available, valid_hours
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name, community_name, format_due
from shared.i18n import t
from shared.repo import tasks as task_repo
from shared.repo.outbox import queue_notification
from shared.repo.requests import add_event
from shared.repo.users import grant_role

OutboxIds = list[int]


def _ids(*ids: int | None) -> OutboxIds:
    return [i for i in ids if i]


def skill_name(config: CommunitiesConfig, code: str, locale: str) -> str:
    skill = config.skill(code)
    return (skill.name.get(locale) or skill.name["zh"]) if skill else code


def window_text(config: CommunitiesConfig, locale: str, task: Task) -> str:
    return f"{format_due(config, locale, task.window_start)} – {format_due(config, locale, task.window_end)}"


# --- registration -------------------------------------------------------------------------

async def register(session: AsyncSession, config: CommunitiesConfig, user: User, *, name: str, skills: list[str],
                   days: list[str], parts: list[str], phone: str | None, named: bool) -> OutboxIds:
    """Store (or update) a registration and ask the community's staff to approve it."""
    volunteer = await session.get(Volunteer, user.id)
    if volunteer is None:
        volunteer = Volunteer(user_id=user.id, status="pending")
        session.add(volunteer)
    # An approval holds for the community that gave it: registering again after moving to another
    # community (a resident may change theirs) asks that community's staff.
    moved = volunteer.community_code is not None and volunteer.community_code != user.community_code
    volunteer.name, volunteer.community_code = name, user.community_code
    volunteer.skills, volunteer.days, volunteer.parts = skills, days, parts
    volunteer.phone, volunteer.share_phone, volunteer.named_in_recognition = phone, phone is not None, named
    if volunteer.status != "approved" or moved:
        volunteer.status = "pending"
    await session.flush()
    if volunteer.status == "approved":
        return []
    if not notify.groups_of(config, user.community_code, "staff"):
        return []
    locale = notify.STAFF_LOCALE
    text = t(locale, "volunteer.staff_card", name=name, community=community_name(config, user.community_code, locale),
             skills="、".join(skill_name(config, s, locale) for s in skills),
             availability=availability_text(locale, days, parts))
    buttons = rows(Button(t(locale, "volunteer.approve"), actions.make("vol", "ok", user.id)),
                   Button(t(locale, "volunteer.decline"), actions.make("vol", "no", user.id)))
    seq = int(await session.scalar(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.key.like(f"g:vol_reg:{user.id}:%"))) or 0) + 1
    return await notify.to_group(session, config, user.community_code, "staff", f"g:vol_reg:{user.id}:{seq}", text,
                                 options=Reply(text, buttons).options_json())


def availability_text(locale: str, days: list[str], parts: list[str]) -> str:
    return "、".join(t(locale, f"volunteer.day_{d}") for d in days) + " · " + \
        "、".join(t(locale, f"volunteer.part_{p}") for p in parts)


async def decide(session: AsyncSession, config: CommunitiesConfig, volunteer_user_id: int, staff: User,
                 approve: bool) -> OutboxIds | None:
    """Staff approve or decline a pending registration, once."""
    status = "approved" if approve else "declined"
    result = await session.execute(update(Volunteer).where(Volunteer.user_id == volunteer_user_id,
                                                           Volunteer.status == "pending")
                                   .values(status=status, decided_by=staff.id))
    if result.rowcount != 1:
        return None
    user = await session.get(User, volunteer_user_id)
    if approve:
        grant_role(user, "volunteer")
    locale = user.locale or "zh"
    return _ids(await notify.to_user(session, user, f"vol_decision:{status}",
                                     Reply(t(locale, f"volunteer.{status}"))))


async def approved_volunteer(session: AsyncSession, user: User, community: str) -> Volunteer | None:
    volunteer = await session.get(Volunteer, user.id)
    if volunteer is None or volunteer.status != "approved" or volunteer.community_code != community:
        return None
    return volunteer


# --- tasks and offers ------------------------------------------------------------------------

def offer_card(config: CommunitiesConfig, task: Task, locale: str) -> Reply:
    text = t(locale, "tasks.offer", title=task.title, skill=skill_name(config, task.skill, locale),
             place=task.place or "-", window=window_text(config, locale, task), hours=task.est_hours)
    return Reply(text, rows(Button(t(locale, "tasks.claim"), actions.make("tk", "claim", task.id))))


async def create_task(session: AsyncSession, config: CommunitiesConfig, *, community: str, skill: str, title: str,
                      details: str | None, place: str | None, window_start: datetime, window_end: datetime,
                      est_hours: float = 1.0, source: str = "staff", request_id: int | None = None,
                      created_by: int | None = None) -> tuple[Task, OutboxIds]:
    task = Task(community_code=community, skill=skill, title=title[:200], details=details, place=place,
                window_start=window_start, window_end=window_end, est_hours=est_hours, source=source,
                request_id=request_id, created_by=created_by, status=TaskStatus.OPEN)
    session.add(task)
    await session.flush()
    if request_id is not None:
        await add_event(session, request_id, "task_created", skill=skill)
    return task, await offer(session, config, task)


# Windows staff pick for a new task (chat `/task`, the dashboard): local day offset and hours.
WINDOWS = ("today_pm", "tomorrow_am", "tomorrow_pm", "in2_am")
_WINDOW_SPANS = {"today_pm": (0, (14, 17)), "tomorrow_am": (1, (9, 12)), "tomorrow_pm": (1, (14, 17)),
                 "in2_am": (2, (9, 12))}


def window_for(code: str, now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The window named `code` (one of WINDOWS) in the communities' time zone, stored in UTC."""
    local = now.astimezone(ZoneInfo(tz)).replace(minute=0, second=0, microsecond=0)
    day, (start_h, end_h) = _WINDOW_SPANS[code]
    base = local + timedelta(days=day)
    # Stored in UTC like every other time (SQLite keeps no time zone).
    return base.replace(hour=start_h).astimezone(UTC), base.replace(hour=end_h).astimezone(UTC)


def default_task_title(request: Request) -> str:
    """The title a task made from a request gets unless staff write one: category and number (offers go out in zh)."""
    return f"{category_name('zh', request.category)} {request.number}"


@dataclass
class RequestTask:
    """What `task_for_request` did: result "ok", or why nothing was made.

    "unknown_skill": not a configured skill; "bad_hours": estimated hours outside (0, 24];
    "window_over": the chosen window has already ended; "not_open": the request is no longer open; "exists": the request already has an
    active volunteer task.
    """

    result: str
    task: Task | None = None
    outbox_ids: OutboxIds = field(default_factory=list)


async def task_for_request(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User, *,
                           skill: str, details: str | None, title: str | None = None, place: str | None = None,
                           window: tuple[datetime, datetime] | None = None, est_hours: float = 1.0) -> RequestTask:
    """Staff turn an open request into a volunteer task (one active task per request) and offer it.

    The request's row is locked first (PostgreSQL; SQLite serialises writers), so two
    concurrent attempts for the same request make one task. Without a `window` the task
    runs from the next hour until the request's due time (`default_window`).
    """
    if config.skill(skill) is None:
        return RequestTask("unknown_skill")
    if not valid_hours(est_hours):
        return RequestTask("bad_hours")
    now = utcnow()
    start, end = window or default_window(now, request.due_at)
    if as_utc(end) <= now:
        return RequestTask("window_over")
    status = await session.scalar(select(Request.status).where(Request.id == request.id).with_for_update())
    if status not in OPEN_STATUSES:
        return RequestTask("not_open")
    if await has_active_task(session, request.id):
        return RequestTask("exists")
    task, ids = await create_task(session, config, community=request.community_code, skill=skill,
                                  title=title or default_task_title(request), details=details, place=place,
                                  window_start=start, window_end=end, est_hours=est_hours, source="request",
                                  request_id=request.id, created_by=staff.id)
    return RequestTask("ok", task, ids)


async def matching_volunteers(session: AsyncSession, config: CommunitiesConfig, task: Task, *, wider: bool) -> list[Volunteer]:
    local = as_utc(task.window_start).astimezone(ZoneInfo(config.defaults.timezone))
    approved = await session.scalars(select(Volunteer).where(Volunteer.community_code == task.community_code,
                                                             Volunteer.status == "approved"))
    if wider:
        return list(approved)
    return [v for v in approved if task.skill in (v.skills or [])
            and available(v.days or [], v.parts or [], local.weekday(), local.hour)]


async def offer(session: AsyncSession, config: CommunitiesConfig, task: Task, *, wider: bool = False) -> OutboxIds:
    """Post the task to the volunteer group and privately to matching volunteers, with a Claim button."""
    batch = f"offer:{task.id}"
    ids: list[int | None] = []
    round_key = f"{task.offer_round}{'w' if wider else ''}"
    if not wider:
        card = offer_card(config, task, "zh")
        ids += await notify.to_group(session, config, task.community_code, "volunteer",
                                     f"g:offer:{task.id}:{round_key}", card.text, options=card.options_json(),
                                     batch=batch)
    for volunteer in await matching_volunteers(session, config, task, wider=wider):
        user = await session.get(User, volunteer.user_id)
        card = offer_card(config, task, user.locale or "zh")
        ids.append(await queue_notification(session, key=f"u{user.id}:offer:{task.id}:{round_key}",
                                            chat_id=user.external_id, platform=user.platform, text=card.text,
                                            options=card.options_json(), batch=batch))
    return _ids(*ids)


def claimer_card(config: CommunitiesConfig, task: Task, locale: str) -> Reply:
    text = t(locale, "tasks.details", title=task.title, details=task.details or "-", place=task.place or "-",
             window=window_text(config, locale, task), status=t(locale, f"tasks.status_{task.status}"))
    ops: list[tuple[str, str]] = []
    if task.status == TaskStatus.CLAIMED:
        ops = [("start", "tasks.start"), ("done", "tasks.done"), ("rel", "tasks.release")]
    elif task.status == TaskStatus.STARTED:
        ops = [("done", "tasks.done"), ("rel", "tasks.release")]
    return Reply(text, rows(*(Button(t(locale, key), actions.make("tk", op, task.id)) for op, key in ops), per_row=3))


async def _retire_offers(session: AsyncSession, task: Task, text: str) -> OutboxIds:
    """Offers already delivered are edited to say who took it; offers not yet sent are dropped.

    Two statements whatever the number of offers: the claim's row lock is held until commit,
    so every other claimer waiting on it waits for these too.
    """
    batch = f"offer:{task.id}"
    await session.execute(update(OutboxMessage).where(OutboxMessage.batch == batch, OutboxMessage.status == "pending")
                          .values(status="cancelled"))
    key = literal("edit:") + cast(OutboxMessage.id, String) + literal(f":{task.offer_round}")
    edits = select(key, OutboxMessage.platform, OutboxMessage.chat_id, literal(text, String),
                   literal([], OutboxMessage.options.type), literal("pending", String), literal(0, Integer),
                   OutboxMessage.sent_message_id).where(OutboxMessage.batch == batch, OutboxMessage.status == "sent")
    stmt = (insert_for(session, OutboxMessage)
            .from_select(["key", "platform", "chat_id", "text", "options", "status", "attempts", "edit_message_id"], edits)
            .on_conflict_do_nothing(index_elements=["key"]).returning(OutboxMessage.id))
    return list(await session.scalars(stmt))


@dataclass
class ClaimResult:
    """One press of Claim. `task` is set only for the one claimer who won; `title` is None when there is
    no such task; `allowed` is False for someone who is not an approved volunteer of the task's community."""

    task: Task | None
    outbox_ids: OutboxIds
    title: str | None = None
    allowed: bool = True


async def claim(session: AsyncSession, config: CommunitiesConfig, task_id: int, user: User) -> ClaimResult:
    """Claim for an approved volunteer of the task's community, exactly once under any concurrency.

    The permission check and the conditional UPDATE are one statement (shared.repo.tasks), with no
    SELECT before it; only the winner does more work, in the same transaction: retire the other
    offers and tell the resident.
    """
    attempt = await task_repo.claim_as_volunteer(session, task_id, user.id)
    task = attempt.task
    if task is None:
        return ClaimResult(None, [], attempt.title, attempt.allowed)
    name = attempt.volunteer_name or "-"
    ids = await _retire_offers(session, task, t("zh", "tasks.taken_by", title=task.title, name=name))
    if task.request_id is not None:
        request = await session.get(Request, task.request_id)
        await add_event(session, task.request_id, "volunteer_coming", name=name)
        resident = await notify.resident_of(session, request)
        locale = (resident.locale if resident else None) or "zh"
        text = t(locale, "tasks.resident_coming", number=request.number, name=name,
                 window=window_text(config, locale, task))
        if attempt.volunteer_phone:
            text += "\n" + t(locale, "tasks.resident_phone", phone=attempt.volunteer_phone)
        ids += _ids(await notify.to_resident(session, request, f"volunteer_coming:{task.id}:{task.offer_round}", Reply(text)))
    return ClaimResult(task, ids, task.title)


async def release(session: AsyncSession, config: CommunitiesConfig, task: Task, user: User) -> OutboxIds | None:
    released = await task_repo.move(session, task.id, TaskStatus.OPEN, claimer_id=user.id,
                                    only_from={TaskStatus.CLAIMED, TaskStatus.STARTED})
    return None if released is None else await _reoffer(session, config, released)


async def _reoffer(session: AsyncSession, config: CommunitiesConfig, task: Task) -> OutboxIds:
    await session.execute(update(Task).where(Task.id == task.id).values(claimer_id=None, claimed_at=None,
                                                                        started_at=None, reminder_stage=0,
                                                                        offer_round=Task.offer_round + 1))
    await session.refresh(task)
    return await offer(session, config, task)


async def start(session: AsyncSession, task: Task, user: User) -> bool:
    return await task_repo.move(session, task.id, TaskStatus.STARTED, claimer_id=user.id,
                                only_from={TaskStatus.CLAIMED}, started_at=utcnow()) is not None


async def complete(session: AsyncSession, config: CommunitiesConfig, task: Task, user: User, hours: float,
                   note: str) -> OutboxIds | None:
    if not valid_hours(hours):
        return None
    done = await task_repo.move(session, task.id, TaskStatus.DONE, claimer_id=user.id,
                                only_from={TaskStatus.CLAIMED, TaskStatus.STARTED}, hours=hours, note=note,
                                done_at=utcnow())
    if done is None:
        return None
    volunteer = await session.get(Volunteer, user.id)
    name = volunteer.name if volunteer else (user.display_name or "-")
    ids: list[int | None] = []
    text = t("zh", "tasks.staff_confirm", title=task.title, name=name, hours=hours, note=note)
    buttons = rows(Button(t("zh", "tasks.confirm"), actions.make("tk", "ok", task.id)),
                   Button(t("zh", "tasks.adjust"), actions.make("tk", "adj", task.id)))
    ids += await notify.to_group(session, config, task.community_code, "staff", f"g:task_done:{task.id}", text,
                                 options=Reply(text, buttons).options_json())
    if task.request_id is not None:
        request = await session.get(Request, task.request_id)
        await add_event(session, task.request_id, "volunteer_done", name=name)
        resident = await notify.resident_of(session, request)
        locale = (resident.locale if resident else None) or "zh"
        ids.append(await notify.to_resident(session, request, f"volunteer_done:{task.id}",
                                            Reply(t(locale, "tasks.resident_done", number=request.number, name=name))))
    return _ids(*ids)


async def confirm(session: AsyncSession, task: Task, staff: User, hours: float | None = None) -> OutboxIds | None:
    hours = task.hours if hours is None else hours
    if hours is None or not valid_hours(hours):
        return None
    confirmed = await task_repo.move(session, task.id, TaskStatus.CONFIRMED, only_from={TaskStatus.DONE},
                                     confirmed_hours=hours, confirmed_by=staff.id, confirmed_at=utcnow())
    if confirmed is None:
        return None
    claimer = await session.get(User, task.claimer_id)
    locale = (claimer.locale if claimer else None) or "zh"
    return _ids(await notify.to_user(session, claimer, f"hours_confirmed:{task.id}",
                                     Reply(t(locale, "tasks.hours_confirmed", title=task.title, hours=hours)), None))


# --- the ledger ------------------------------------------------------------------------------

async def confirmed_hours(session: AsyncSession, user_id: int, since: datetime | None = None) -> float:
    stmt = select(func.coalesce(func.sum(Task.confirmed_hours), 0.0)).where(Task.claimer_id == user_id,
                                                                          Task.status == TaskStatus.CONFIRMED)
    if since is not None:
        stmt = stmt.where(Task.done_at >= since)
    return float(await session.scalar(stmt) or 0.0)


def period_starts(config: CommunitiesConfig, now: datetime) -> tuple[datetime, datetime]:
    """Start of this month and this year in the communities' time zone, as UTC instants.

    UTC because SQLite stores timestamps as text without their offset: a bound value in another
    zone would be compared as a string and miss the first local hours of a month.
    """
    local = as_utc(now).astimezone(ZoneInfo(config.defaults.timezone))
    month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return month.astimezone(UTC), month.replace(month=1).astimezone(UTC)


async def recognition(session: AsyncSession, community: str, since: datetime, until: datetime, limit: int = 10) -> list[tuple[str, float]]:
    """Top volunteers by confirmed hours in a period — only those who agreed to be named."""
    stmt = (select(Volunteer.name, func.sum(Task.confirmed_hours).label("hours"))
            .join(Task, Task.claimer_id == Volunteer.user_id)
            .where(Task.community_code == community, Task.status == TaskStatus.CONFIRMED,
                   Task.done_at >= since, Task.done_at < until, Volunteer.named_in_recognition.is_(True))
            .group_by(Volunteer.name).order_by(func.sum(Task.confirmed_hours).desc()).limit(limit))
    return [(name, float(hours)) for name, hours in await session.execute(stmt)]


async def has_active_task(session: AsyncSession, request_id: int) -> bool:
    stmt = select(func.count()).select_from(Task).where(Task.request_id == request_id, Task.status.in_(list(ACTIVE)))
    return bool(await session.scalar(stmt))


def default_window(now: datetime, due: datetime | None) -> tuple[datetime, datetime]:
    start = now + timedelta(hours=1)
    end = as_utc(due) if due is not None and as_utc(due) > start + timedelta(hours=1) else start + timedelta(hours=24)
    return start, end
