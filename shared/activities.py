"""Activities and enrolment (四点半课堂, 假期小课堂, 老年大学, lectures, clubs). Each rule once, here.

Flows and the scheduler call these. Operations return outbox ids to deliver after the caller
commits (shared.flows.deliver). Places are decided under a per-activity lock (a row lock on
PostgreSQL, the single writer on SQLite), so concurrent enrolments never exceed the capacity and
the waiting list keeps its order. Every state change is a conditional UPDATE and every notice has
an outbox key, so a repeated press or sweep changes and sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.activity_config import ActivityConfig
from shared.clock import as_utc
from shared.config import CommunitiesConfig
from shared.db.models import (
    Activity,
    ActivityAttendance,
    ActivityChild,
    ActivityEnrolment,
    ActivitySession,
    ActivityTutorHours,
    Task,
    User,
    Volunteer,
)
from shared.db.upsert import insert_for
from shared.domain import activities as rules
from shared.domain.activities import (
    ACTIVE,
    HOLDS_PLACE,
    ActivityStatus,
    Audience,
    EnrolmentStatus,
    SessionStatus,
)
from shared.domain.fridge import in_quiet_hours
from shared.domain.permissions import is_staff_of
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

OutboxIds = list[int]
STAFF_LOCALE = "zh"
BROWSE_LIMIT = 8


def _ids(*ids: int | None) -> OutboxIds:
    return [i for i in ids if i]


def tz(config: CommunitiesConfig) -> str:
    return config.defaults.timezone


def local(config: CommunitiesConfig, when: datetime) -> datetime:
    return as_utc(when).astimezone(ZoneInfo(tz(config)))


def title_of(activity: Activity, locale: str) -> str:
    return activity.title_en if locale == "en" and activity.title_en else activity.title


def when_text(config: CommunitiesConfig, locale: str, starts: datetime, ends: datetime | None = None) -> str:
    start = local(config, starts)
    text = t(locale, "activities.when", month=start.month, day=start.day,
             weekday=t(locale, f"activities.wd_{start.weekday()}"), time=f"{start:%H:%M}")
    if ends is not None:
        text += f"-{local(config, ends):%H:%M}"
    return text


def fee_text(locale: str, fee: float) -> str:
    return t(locale, "activities.free") if fee <= 0 else t(locale, "activities.fee", fee=f"{fee:g}")


def audience_text(locale: str, activity: Activity) -> str:
    text = t(locale, f"activities.audience_{activity.audience}")
    if activity.age_min is not None and activity.age_max is not None:
        text += t(locale, "activities.ages", low=activity.age_min, high=activity.age_max)
    return text


def may_organise(user: User, activity: Activity) -> bool:
    """Staff of the activity's community (admins everywhere) and its named organiser."""
    return (is_staff_of(user.roles, user.community_code, activity.community_code)
            or (activity.organiser_id is not None and activity.organiser_id == user.id))


def may_enrol_in(user: User, activity: Activity) -> bool:
    return activity.open_to_all or user.community_code == activity.community_code


async def _lock(session: AsyncSession, activity_id: int) -> None:
    """Serialise place decisions per activity: a row lock on PostgreSQL, the write lock on SQLite."""
    await session.execute(update(Activity).where(Activity.id == activity_id).values(capacity=Activity.capacity)
                          .execution_options(synchronize_session=False))


# --- creating activities ------------------------------------------------------------------------

async def _add_sessions(session: AsyncSession, activity_id: int, spans: Iterable[tuple[datetime, datetime]]) -> int:
    existing = {as_utc(s) for s in await session.scalars(select(ActivitySession.starts_at)
                                                        .where(ActivitySession.activity_id == activity_id))}
    fresh = [{"activity_id": activity_id, "starts_at": s, "ends_at": e, "status": SessionStatus.SCHEDULED,
              "reminder_stage": 0} for s, e in spans if as_utc(s) not in existing]
    if fresh:
        await session.execute(insert_for(session, ActivitySession).values(fresh)
                              .on_conflict_do_nothing(index_elements=["activity_id", "starts_at"]))
    return len(fresh)


async def create_activity(session: AsyncSession, *, community: str, title: str, audience: str, place: str,
                          capacity: int, spans: list[tuple[datetime, datetime]], fee: float = 0.0,
                          age_min: int | None = None, age_max: int | None = None, description: str | None = None,
                          organiser_id: int | None = None, organiser_name: str | None = None,
                          created_by: int | None = None, keywords: list[str] | None = None,
                          opens: datetime | None = None, closes: datetime | None = None,
                          open_to_all: bool = False, title_en: str | None = None) -> Activity:
    """A new activity with its sessions (UTC spans)."""
    activity = Activity(community_code=community, title=title, title_en=title_en, description=description,
                        organiser_id=organiser_id, organiser_name=organiser_name, audience=str(Audience(audience)),
                        age_min=age_min, age_max=age_max, place=place, capacity=capacity, fee=fee,
                        enrol_opens_at=opens, enrol_closes_at=closes, keywords=list(keywords or []),
                        open_to_all=open_to_all, status=ActivityStatus.OPEN, summary_stage=0, created_by=created_by)
    session.add(activity)
    await session.flush()
    await _add_sessions(session, activity.id, spans)
    return activity


def _local_midnight(config: CommunitiesConfig, day) -> datetime:  # type: ignore[no-untyped-def]
    """Stored in UTC: SQLite keeps the wall time of whatever offset it is given."""
    return datetime.combine(day, time(0, 0), ZoneInfo(tz(config))).astimezone(UTC)


async def sync_configured(session: AsyncSession, config: CommunitiesConfig) -> int:
    """Keep activities from config/communities.yaml in the database; returns sessions added.

    Details follow the file; sessions are added, never removed (an organiser cancels a session in chat).
    Cheap when nothing changed (two queries), because the scheduler runs it every few minutes.
    """
    specs = [(c.code, spec) for c in config.communities for spec in c.activities]
    if not specs:
        return 0
    stored = {a.code: a for a in await session.scalars(select(Activity).where(
        Activity.code.in_([spec.code for _c, spec in specs])))}
    sessions = dict((await session.execute(select(ActivitySession.activity_id, func.count()).where(
        ActivitySession.activity_id.in_([a.id for a in stored.values()])).group_by(ActivitySession.activity_id))).all())
    added = 0
    for community, spec in specs:
        activity = stored.get(spec.code)
        slots = spec.all_slots()
        values = _config_values(config, community, spec)
        if activity is not None and all(getattr(activity, k) == v or _same_time(getattr(activity, k), v)
                                        for k, v in values.items()) and sessions.get(activity.id, 0) >= len(slots):
            continue
        added += await _sync_one(session, config, spec, values, slots)
    return added


def _same_time(stored: object, wanted: object) -> bool:
    return isinstance(stored, datetime) and isinstance(wanted, datetime) and as_utc(stored) == as_utc(wanted)


def _config_values(config: CommunitiesConfig, community: str, spec: ActivityConfig) -> dict[str, object]:
    return dict(
        community_code=community, title=spec.title["zh"], title_en=spec.title.get("en"),
        description=(spec.description or {}).get("zh"), organiser_name=(spec.organiser or {}).get("zh"),
        audience=spec.audience, age_min=spec.age_min, age_max=spec.age_max, place=spec.place["zh"],
        capacity=spec.capacity, fee=spec.fee, keywords=list(spec.keywords), open_to_all=spec.open_to_all,
        enrol_opens_at=_local_midnight(config, spec.enrol_opens) if spec.enrol_opens else None,
        enrol_closes_at=(_local_midnight(config, spec.enrol_closes) + timedelta(days=1)) if spec.enrol_closes else None)


async def _sync_one(session: AsyncSession, config: CommunitiesConfig, spec: ActivityConfig, values: dict[str, object],
                    slots: list[rules.Slot]) -> int:
    activity_id = await session.scalar(select(Activity.id).where(Activity.code == spec.code))
    if activity_id is None:
        activity_id = (await session.execute(insert_for(session, Activity).values(
            code=spec.code, status=ActivityStatus.OPEN, summary_stage=0, **values)
            .on_conflict_do_nothing(index_elements=["code"]).returning(Activity.id))).scalar_one_or_none()
        if activity_id is None:   # another scheduler inserted it at the same moment
            activity_id = await session.scalar(select(Activity.id).where(Activity.code == spec.code))
    else:
        await session.execute(update(Activity).where(Activity.id == activity_id).values(**values)
                              .execution_options(synchronize_session=False))
    return await _add_sessions(session, activity_id, [slot.utc(tz(config)) for slot in slots])


# --- what is on ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    activity: Activity
    holding: int           # places taken (enrolled + offered)
    waiting: int
    next_start: datetime | None
    sessions_left: int

    @property
    def free(self) -> int:
        return max(0, self.activity.capacity - self.holding)


async def counts(session: AsyncSession, activity_ids: list[int]) -> dict[int, tuple[int, int]]:
    """activity id → (holding a place, waiting)."""
    if not activity_ids:
        return {}
    out = {i: (0, 0) for i in activity_ids}
    stmt = (select(ActivityEnrolment.activity_id, ActivityEnrolment.status, func.count())
            .where(ActivityEnrolment.activity_id.in_(activity_ids),
                   ActivityEnrolment.status.in_([str(s) for s in ACTIVE]))
            .group_by(ActivityEnrolment.activity_id, ActivityEnrolment.status))
    for activity_id, status, n in await session.execute(stmt):
        holding, waiting = out[activity_id]
        if status == EnrolmentStatus.WAITING:
            waiting += n
        else:
            holding += n
        out[activity_id] = (holding, waiting)
    return out


async def upcoming(session: AsyncSession, activity_id: int, now: datetime, limit: int = 50) -> list[ActivitySession]:
    return list(await session.scalars(select(ActivitySession).where(
        ActivitySession.activity_id == activity_id, ActivitySession.status == SessionStatus.SCHEDULED,
        ActivitySession.starts_at > now).order_by(ActivitySession.starts_at).limit(limit)))


async def listing(session: AsyncSession, activity: Activity, now: datetime) -> Listing:
    holding, waiting = (await counts(session, [activity.id]))[activity.id]
    ahead = await upcoming(session, activity.id, now, limit=500)
    return Listing(activity, holding, waiting, ahead[0].starts_at if ahead else None, len(ahead))


AUDIENCES = {"children": (Audience.CHILDREN, Audience.EVERYONE), "seniors": (Audience.SENIORS, Audience.EVERYONE),
             "all": tuple(Audience)}


async def browse(session: AsyncSession, community: str | None, audience: str, now: datetime,
                 limit: int = BROWSE_LIMIT) -> list[Listing]:
    """Open activities with sessions still ahead, the person's community first (and those open to all)."""
    wanted = [str(a) for a in AUDIENCES.get(audience, ())]
    nxt = (select(ActivitySession.activity_id, func.min(ActivitySession.starts_at).label("next_start"),
                  func.count().label("left"))
           .where(ActivitySession.status == SessionStatus.SCHEDULED, ActivitySession.starts_at > now)
           .group_by(ActivitySession.activity_id).subquery())
    stmt = (select(Activity, nxt.c.next_start, nxt.c.left).join(nxt, nxt.c.activity_id == Activity.id)
            .where(Activity.status == ActivityStatus.OPEN, Activity.audience.in_(wanted),
                   or_(Activity.community_code == community, Activity.open_to_all.is_(True)))
            .order_by((Activity.community_code != community), nxt.c.next_start, Activity.id).limit(limit))
    found = list((await session.execute(stmt)).all())
    numbers = await counts(session, [a.id for a, _n, _l in found])
    return [Listing(a, *numbers[a.id], next_start, int(left)) for a, next_start, left in found]


# --- enrolment ------------------------------------------------------------------------------------

@dataclass
class EnrolOutcome:
    result: str   # enrolled | waiting | already | gone | other_community | not_allowed | no_consent | child_needed
    #               | self_only | age | not_yet | closed
    enrolment: ActivityEnrolment | None = None
    position: int = 0
    outbox: OutboxIds = field(default_factory=list)


async def waiting_position(session: AsyncSession, enrolment: ActivityEnrolment) -> int:
    return int(await session.scalar(select(func.count()).select_from(ActivityEnrolment).where(
        ActivityEnrolment.activity_id == enrolment.activity_id, ActivityEnrolment.status == EnrolmentStatus.WAITING,
        ActivityEnrolment.queue_no <= enrolment.queue_no)) or 0)


async def enrol(session: AsyncSession, config: CommunitiesConfig, activity_id: int, user: User,
                child_id: int | None, now: datetime) -> EnrolOutcome:
    """A place if one is free and nobody waits for it, else a place in line. Checks everything first."""
    activity = await session.get(Activity, activity_id)
    if activity is None or activity.status != ActivityStatus.OPEN:
        return EnrolOutcome("gone")
    if not may_enrol_in(user, activity):
        return EnrolOutcome("other_community")
    child = None
    if child_id is not None:
        child = await session.get(ActivityChild, child_id)
        if child is None or child.guardian_id != user.id:
            return EnrolOutcome("not_allowed")
        if child.consent_at is None:
            return EnrolOutcome("no_consent")
    why = rules.who_fits(activity.audience, child is not None)
    if why:
        return EnrolOutcome(why)
    if child is not None and not rules.age_fits(child.age, activity.age_min, activity.age_max):
        return EnrolOutcome("age")
    window = rules.window_state(now, activity.enrol_opens_at and as_utc(activity.enrol_opens_at),
                                activity.enrol_closes_at and as_utc(activity.enrol_closes_at))
    if window != "open":
        return EnrolOutcome(window)
    if not await upcoming(session, activity.id, now, limit=1):
        return EnrolOutcome("closed")

    await _lock(session, activity.id)
    who = rules.who_key(child_id)
    existing = await session.scalar(select(ActivityEnrolment).where(
        ActivityEnrolment.activity_id == activity.id, ActivityEnrolment.user_id == user.id,
        ActivityEnrolment.who == who).execution_options(populate_existing=True))
    if existing is not None and existing.status in ACTIVE:
        return EnrolOutcome("already", existing)
    holding, waiting = (await counts(session, [activity.id]))[activity.id]
    take = rules.place_free(holding, activity.capacity) and waiting == 0
    status = EnrolmentStatus.ENROLLED if take else EnrolmentStatus.WAITING
    queue_no = int(await session.scalar(select(func.coalesce(func.max(ActivityEnrolment.queue_no), 0))
                                        .where(ActivityEnrolment.activity_id == activity.id)) or 0) + 1
    if existing is None:
        enrolment_id = (await session.execute(insert_for(session, ActivityEnrolment).values(
            activity_id=activity.id, user_id=user.id, child_id=child_id, who=who, status=status, queued_at=now,
            queue_no=queue_no, round=1).on_conflict_do_nothing(index_elements=["activity_id", "user_id", "who"])
            .returning(ActivityEnrolment.id))).scalar_one_or_none()
        if enrolment_id is None:
            return EnrolOutcome("already")
    else:
        again = await session.execute(update(ActivityEnrolment).where(
            ActivityEnrolment.id == existing.id, ActivityEnrolment.status.in_([str(s) for s in rules.ENDED]))
            .values(status=status, queued_at=now, queue_no=queue_no, offer_expires_at=None,
                    round=ActivityEnrolment.round + 1)
            .execution_options(synchronize_session=False))
        if again.rowcount != 1:
            return EnrolOutcome("already", existing)
        enrolment_id = existing.id
    enrolment = await session.scalar(select(ActivityEnrolment).where(ActivityEnrolment.id == enrolment_id)
                                     .execution_options(populate_existing=True))
    if take:
        return EnrolOutcome("enrolled", enrolment)
    return EnrolOutcome("waiting", enrolment, await waiting_position(session, enrolment))


async def cancel_enrolment(session: AsyncSession, config: CommunitiesConfig, enrolment_id: int, user: User,
                           now: datetime) -> tuple[str, OutboxIds]:
    """The person gives up their place (or place in line); a freed place goes to the first in line."""
    enrolment = await session.get(ActivityEnrolment, enrolment_id)
    if enrolment is None or enrolment.user_id != user.id:
        return "not_allowed", []
    await _lock(session, enrolment.activity_id)
    was = await session.scalar(select(ActivityEnrolment.status).where(ActivityEnrolment.id == enrolment_id))
    done = await session.execute(update(ActivityEnrolment).where(
        ActivityEnrolment.id == enrolment_id, ActivityEnrolment.status.in_([str(s) for s in ACTIVE]))
        .values(status=EnrolmentStatus.CANCELLED, offer_expires_at=None).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        return "already", []
    outbox: OutboxIds = []
    if was in HOLDS_PLACE:
        outbox += await promote(session, config, enrolment.activity_id, now)
    return "ok", outbox


async def promote(session: AsyncSession, config: CommunitiesConfig, activity_id: int, now: datetime) -> OutboxIds:
    """Offer free places to the first in line, each for a limited time. Caller holds the activity lock.

    Never in quiet hours: the scheduler makes the offer when they end.
    """
    if in_quiet_hours(config.defaults.activities.quiet_hours, now, tz(config)):
        return []
    activity = await session.get(Activity, activity_id)
    if activity is None or activity.status != ActivityStatus.OPEN:
        return []
    ahead = await upcoming(session, activity_id, now, limit=1)
    if not ahead:
        return []
    holding, waiting = (await counts(session, [activity_id]))[activity_id]
    n = rules.places_to_offer(holding, activity.capacity, waiting)
    if n <= 0:
        return []
    first = list(await session.scalars(select(ActivityEnrolment).where(
        ActivityEnrolment.activity_id == activity_id, ActivityEnrolment.status == EnrolmentStatus.WAITING)
        .order_by(ActivityEnrolment.queue_no, ActivityEnrolment.id).limit(n)))
    expires = rules.offer_expiry(now, config.defaults.activities.offer_hours, as_utc(ahead[0].starts_at))
    outbox: list[int | None] = []
    for enrolment in first:
        done = await session.execute(update(ActivityEnrolment).where(
            ActivityEnrolment.id == enrolment.id, ActivityEnrolment.status == EnrolmentStatus.WAITING)
            .values(status=EnrolmentStatus.OFFERED, offer_expires_at=expires, round=ActivityEnrolment.round + 1)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            continue
        rnd = await session.scalar(select(ActivityEnrolment.round).where(ActivityEnrolment.id == enrolment.id))
        person = await session.get(User, enrolment.user_id)
        locale = (person.locale if person else None) or "zh"
        text = t(locale, "activities.offer", title=title_of(activity, locale), who=await who_text(session, locale, enrolment),
                 until=when_text(config, locale, expires))
        outbox.append(await notify.to_user(session, person, f"ac_offer:{enrolment.id}:{rnd}", Reply(text, rows(
            Button(t(locale, "activities.accept"), actions.make("acy", enrolment.id, "yes")),
            Button(t(locale, "activities.decline"), actions.make("acy", enrolment.id, "no"))))))
    return _ids(*outbox)


async def answer_offer(session: AsyncSession, config: CommunitiesConfig, enrolment_id: int, user: User, accept: bool,
                       now: datetime) -> tuple[str, OutboxIds]:
    """ok | declined | stale (lapsed or already answered) | not_allowed."""
    enrolment = await session.get(ActivityEnrolment, enrolment_id)
    if enrolment is None or enrolment.user_id != user.id:
        return "not_allowed", []
    await _lock(session, enrolment.activity_id)
    if accept:
        done = await session.execute(update(ActivityEnrolment).where(
            ActivityEnrolment.id == enrolment_id, ActivityEnrolment.status == EnrolmentStatus.OFFERED,
            ActivityEnrolment.offer_expires_at > now)
            .values(status=EnrolmentStatus.ENROLLED, offer_expires_at=None).execution_options(synchronize_session=False))
        return ("ok" if done.rowcount == 1 else "stale"), []
    done = await session.execute(update(ActivityEnrolment).where(
        ActivityEnrolment.id == enrolment_id, ActivityEnrolment.status == EnrolmentStatus.OFFERED)
        .values(status=EnrolmentStatus.DECLINED, offer_expires_at=None).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        return "stale", []
    return "declined", await promote(session, config, enrolment.activity_id, now)


async def who_text(session: AsyncSession, locale: str, enrolment: ActivityEnrolment) -> str:
    if enrolment.child_id is None:
        return t(locale, "activities.who_self")
    child = await session.get(ActivityChild, enrolment.child_id)
    return child.name if child else "-"


# --- children -------------------------------------------------------------------------------------

async def add_child(session: AsyncSession, guardian: User, *, name: str, age: int, school_class: str | None,
                    pickup: list[str], now: datetime) -> ActivityChild:
    """A child with the guardian's consent (given by the button that calls this) and the pick-up list."""
    child = ActivityChild(guardian_id=guardian.id, name=name[:rules.NAME_LIMIT], age=age,
                          school_class=(school_class or None) and school_class[:rules.CLASS_LIMIT],
                          pickup=pickup[:rules.MAX_PICKUP], consent_at=now)
    session.add(child)
    await session.flush()
    return child


async def children_of(session: AsyncSession, user_id: int) -> list[ActivityChild]:
    return list(await session.scalars(select(ActivityChild).where(ActivityChild.guardian_id == user_id,
                                                                  ActivityChild.consent_at.is_not(None))
                                      .order_by(ActivityChild.id).limit(10)))


# --- organisers: cancellations, roll call, pick-up, tutor hours ----------------------------------------

async def _participants(session: AsyncSession, activity_id: int,
                        statuses: Iterable[str] = (EnrolmentStatus.ENROLLED,)) -> list[ActivityEnrolment]:
    return list(await session.scalars(select(ActivityEnrolment).where(
        ActivityEnrolment.activity_id == activity_id, ActivityEnrolment.status.in_([str(s) for s in statuses]))
        .order_by(ActivityEnrolment.queue_no, ActivityEnrolment.id)))


async def _tell(session: AsyncSession, enrolments: list[ActivityEnrolment], key: str, text_key: str,
                **params: object) -> OutboxIds:
    """Tell each enrolled person (once per key), in their language; `{who}` names the child where there is one."""
    outbox: list[int | None] = []
    for enrolment in enrolments:
        person = await session.get(User, enrolment.user_id)
        locale = (person.locale if person else None) or "zh"
        values = {k: (v(locale) if callable(v) else v) for k, v in params.items()}
        outbox.append(await notify.to_user(session, person, f"{key}:{enrolment.id}", Reply(t(
            locale, text_key, who=await who_text(session, locale, enrolment), **values))))
    return _ids(*outbox)


async def cancel_session(session: AsyncSession, config: CommunitiesConfig, session_id: int, user: User,
                         now: datetime) -> tuple[str, OutboxIds]:
    meeting = await session.get(ActivitySession, session_id)
    activity = await session.get(Activity, meeting.activity_id) if meeting else None
    if meeting is None or activity is None or not may_organise(user, activity):
        return "not_allowed", []
    done = await session.execute(update(ActivitySession).where(
        ActivitySession.id == session_id, ActivitySession.status == SessionStatus.SCHEDULED,
        ActivitySession.starts_at > now).values(status=SessionStatus.CANCELLED)
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        return "already", []
    people = await _participants(session, activity.id, HOLDS_PLACE)
    return "ok", await _tell(session, people, f"ac_sess_cancel:{session_id}", "activities.session_cancelled_note",
                             title=lambda loc: title_of(activity, loc),
                             when=lambda loc: when_text(config, loc, meeting.starts_at, meeting.ends_at))


async def cancel_activity(session: AsyncSession, config: CommunitiesConfig, activity_id: int, user: User,
                          now: datetime) -> tuple[str, OutboxIds]:
    """The whole activity is called off: everyone enrolled, offered or waiting is told."""
    activity = await session.get(Activity, activity_id)
    if activity is None or not may_organise(user, activity):
        return "not_allowed", []
    await _lock(session, activity_id)
    done = await session.execute(update(Activity).where(Activity.id == activity_id,
                                                        Activity.status == ActivityStatus.OPEN)
                                 .values(status=ActivityStatus.CANCELLED).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        return "already", []
    await session.execute(update(ActivitySession).where(
        ActivitySession.activity_id == activity_id, ActivitySession.status == SessionStatus.SCHEDULED,
        ActivitySession.starts_at > now).values(status=SessionStatus.CANCELLED)
        .execution_options(synchronize_session=False))
    people = await _participants(session, activity_id, ACTIVE)
    await session.execute(update(ActivityEnrolment).where(
        ActivityEnrolment.activity_id == activity_id, ActivityEnrolment.status.in_([str(s) for s in ACTIVE]))
        .values(status=EnrolmentStatus.CANCELLED, offer_expires_at=None).execution_options(synchronize_session=False))
    return "ok", await _tell(session, people, f"ac_cancel:{activity_id}", "activities.activity_cancelled_note",
                             title=lambda loc: title_of(activity, loc))


@dataclass(frozen=True)
class RollEntry:
    enrolment: ActivityEnrolment
    name: str
    child: ActivityChild | None
    present: bool
    picked_up_by: str | None
    pickup_ok: bool | None


async def roll(session: AsyncSession, session_id: int) -> list[RollEntry]:
    meeting = await session.get(ActivitySession, session_id)
    if meeting is None:
        return []
    people = await _participants(session, meeting.activity_id)
    marks = {a.enrolment_id: a for a in await session.scalars(select(ActivityAttendance).where(
        ActivityAttendance.session_id == session_id).execution_options(populate_existing=True))}
    out = []
    for enrolment in people:
        child = await session.get(ActivityChild, enrolment.child_id) if enrolment.child_id else None
        person = await session.get(User, enrolment.user_id)
        mark = marks.get(enrolment.id)
        name = child.name if child else ((person.display_name if person else None) or "-")
        out.append(RollEntry(enrolment, name, child, bool(mark and mark.present), mark.picked_up_by if mark else None,
                             mark.pickup_ok if mark else None))
    return out


async def _organised_session(session: AsyncSession, session_id: int, enrolment_id: int | None,
                             user: User) -> tuple[ActivitySession | None, Activity | None, ActivityEnrolment | None]:
    meeting = await session.get(ActivitySession, session_id)
    activity = await session.get(Activity, meeting.activity_id) if meeting else None
    if meeting is None or activity is None or not may_organise(user, activity):
        return None, None, None
    if enrolment_id is None:
        return meeting, activity, None
    enrolment = await session.get(ActivityEnrolment, enrolment_id)
    if enrolment is None or enrolment.activity_id != activity.id or enrolment.status != EnrolmentStatus.ENROLLED:
        return None, None, None
    return meeting, activity, enrolment


async def _upsert_mark(session: AsyncSession, session_id: int, enrolment_id: int, user: User, now: datetime,
                       **values: object) -> None:
    stmt = insert_for(session, ActivityAttendance).values(session_id=session_id, enrolment_id=enrolment_id,
                                                          marked_by=user.id, marked_at=now,
                                                          **{"present": False, **values})
    await session.execute(stmt.on_conflict_do_update(index_elements=["session_id", "enrolment_id"],
                                                     set_={"marked_by": user.id, "marked_at": now, **values}))


async def mark(session: AsyncSession, session_id: int, enrolment_id: int, user: User, present: bool,
               now: datetime) -> str:
    """Set (not toggle) one person's presence, so a repeated press changes nothing. ok | not_allowed | closed."""
    meeting, _activity, enrolment = await _organised_session(session, session_id, enrolment_id, user)
    if meeting is None:
        return "not_allowed"
    if meeting.status == SessionStatus.CANCELLED:
        return "closed"
    await _upsert_mark(session, session_id, enrolment_id, user, now, present=present)
    return "ok"


async def record_pickup(session: AsyncSession, config: CommunitiesConfig, session_id: int, enrolment_id: int,
                        user: User, name: str, now: datetime) -> tuple[str, OutboxIds]:
    """Who collected a child, checked against the guardian's list: ok | flagged | not_allowed | not_child."""
    meeting, activity, enrolment = await _organised_session(session, session_id, enrolment_id, user)
    if meeting is None:
        return "not_allowed", []
    child = await session.get(ActivityChild, enrolment.child_id) if enrolment.child_id else None
    if child is None:
        return "not_child", []
    allowed = rules.pickup_allowed(name, list(child.pickup or []))
    await _upsert_mark(session, session_id, enrolment_id, user, now, present=True, picked_up_by=name[:60],
                       pickup_ok=allowed)
    guardian = await session.get(User, enrolment.user_id)
    locale = (guardian.locale if guardian else None) or "zh"
    key = f"ac_pickup:{session_id}:{enrolment_id}:{rules.name_key(name)[:20]}"
    outbox = [await notify.to_user(session, guardian, key, Reply(t(
        locale, "activities.pickup_note" if allowed else "activities.pickup_flag_guardian",
        child=child.name, name=name, title=title_of(activity, locale))))]
    if not allowed:
        outbox += await notify.to_group(session, config, activity.community_code, "staff", f"g:{key}", t(
            STAFF_LOCALE, "activities.pickup_flag_staff", child=child.name, name=name,
            title=activity.title, allowed="、".join(child.pickup or [])))
    return ("ok" if allowed else "flagged"), _ids(*outbox)


async def finish_roll(session: AsyncSession, config: CommunitiesConfig, session_id: int, user: User,
                      now: datetime) -> tuple[str, int, int]:
    """Close the roll call: the session counts as held; a volunteer organiser's hours go into the ledger once.

    Returns (ok | already | not_allowed | too_early, present, enrolled).
    """
    meeting, activity, _ = await _organised_session(session, session_id, None, user)
    if meeting is None:
        return "not_allowed", 0, 0
    if now < as_utc(meeting.starts_at) - timedelta(minutes=30):
        return "too_early", 0, 0
    done = await session.execute(update(ActivitySession).where(
        ActivitySession.id == session_id, ActivitySession.status == SessionStatus.SCHEDULED)
        .values(status=SessionStatus.HELD, held_at=now, marked_by=user.id).execution_options(synchronize_session=False))
    entries = await roll(session, session_id)
    present = sum(1 for e in entries if e.present)
    if done.rowcount != 1:
        return "already", present, len(entries)
    await _book_tutor_hours(session, config, meeting, activity, user, now)
    return "ok", present, len(entries)


async def _book_tutor_hours(session: AsyncSession, config: CommunitiesConfig, meeting: ActivitySession,
                            activity: Activity, marker: User, now: datetime) -> None:
    tutor_id = activity.organiser_id
    if tutor_id is None:
        return
    volunteer = await session.get(Volunteer, tutor_id)
    if volunteer is None or volunteer.status != "approved":
        return
    hours = round((as_utc(meeting.ends_at) - as_utc(meeting.starts_at)).total_seconds() / 3600, 2)
    if await session.get(ActivityTutorHours, (meeting.id, tutor_id)) is not None:
        return
    skill = "tutoring" if config.skill("tutoring") else (config.defaults.volunteer_skills[0].code
                                                          if config.defaults.volunteer_skills else "tutoring")
    task = Task(community_code=activity.community_code, source="activity", skill=skill,
                title=f"{activity.title} {local(config, meeting.starts_at):%m-%d}", place=activity.place,
                window_start=meeting.starts_at, window_end=meeting.ends_at, est_hours=hours, status="confirmed",
                claimer_id=tutor_id, claimed_at=now, done_at=now, hours=hours, confirmed_hours=hours,
                confirmed_by=marker.id, confirmed_at=now, created_by=marker.id)
    session.add(task)
    await session.flush()
    await session.execute(insert_for(session, ActivityTutorHours).values(
        session_id=meeting.id, user_id=tutor_id, task_id=task.id, hours=hours)
        .on_conflict_do_nothing(index_elements=["session_id", "user_id"]))


# --- the sweep (scheduler, explicit now) --------------------------------------------------------------

async def activity_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """Config activities kept in step; then, outside quiet hours: lapsed offers, free places offered to
    those waiting, reminders before sessions, end-of-term summaries. Running it twice sends nothing twice."""
    await sync_configured(session, config)
    if in_quiet_hours(config.defaults.activities.quiet_hours, now, tz(config)):
        return []
    outbox: OutboxIds = []
    outbox += await _expire_offers(session, config, now)
    outbox += await _fill_places(session, config, now)
    outbox += await _reminders(session, config, now)
    outbox += await _term_summaries(session, config, now)
    return outbox


async def _expire_offers(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    lapsed = list(await session.scalars(select(ActivityEnrolment).where(
        ActivityEnrolment.status == EnrolmentStatus.OFFERED, ActivityEnrolment.offer_expires_at <= now)
        .order_by(ActivityEnrolment.activity_id, ActivityEnrolment.id).limit(500)))   # locks in one order: no deadlock
    outbox: list[int | None] = []
    for enrolment in lapsed:
        await _lock(session, enrolment.activity_id)
        done = await session.execute(update(ActivityEnrolment).where(
            ActivityEnrolment.id == enrolment.id, ActivityEnrolment.status == EnrolmentStatus.OFFERED,
            ActivityEnrolment.offer_expires_at <= now).values(status=EnrolmentStatus.EXPIRED)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            continue
        activity = await session.get(Activity, enrolment.activity_id)
        outbox += await _tell(session, [enrolment], f"ac_lapsed:{enrolment.round}", "activities.offer_lapsed",
                              title=lambda loc: title_of(activity, loc))
        outbox += await promote(session, config, enrolment.activity_id, now)
    return _ids(*outbox)


async def _fill_places(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """Activities with people waiting and a place free (capacity raised, or a freeing in quiet hours)."""
    waiting = list(await session.scalars(select(ActivityEnrolment.activity_id).join(
        Activity, Activity.id == ActivityEnrolment.activity_id).where(
        ActivityEnrolment.status == EnrolmentStatus.WAITING, Activity.status == ActivityStatus.OPEN).distinct()
        .order_by(ActivityEnrolment.activity_id)))
    outbox: OutboxIds = []
    numbers = await counts(session, waiting)
    for activity_id in waiting:
        activity = await session.get(Activity, activity_id)
        if numbers[activity_id][0] >= activity.capacity:
            continue
        await _lock(session, activity_id)
        outbox += await promote(session, config, activity_id, now)
    return outbox


async def _reminders(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    hours = config.defaults.activities.reminder_hours
    due = list(await session.scalars(select(ActivitySession).where(
        ActivitySession.status == SessionStatus.SCHEDULED, ActivitySession.reminder_stage == 0,
        ActivitySession.starts_at > now, ActivitySession.starts_at <= now + timedelta(hours=hours))
        .order_by(ActivitySession.starts_at).limit(500)))
    outbox: OutboxIds = []
    for meeting in due:
        done = await session.execute(update(ActivitySession).where(
            ActivitySession.id == meeting.id, ActivitySession.reminder_stage == 0).values(reminder_stage=1)
            .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            continue
        activity = await session.get(Activity, meeting.activity_id)
        if activity is None or activity.status != ActivityStatus.OPEN:
            continue
        people = await _participants(session, activity.id)
        outbox += await _tell(session, people, f"ac_remind:{meeting.id}", "activities.reminder",
                              title=lambda loc: title_of(activity, loc), place=activity.place,
                              when=lambda loc: when_text(config, loc, meeting.starts_at, meeting.ends_at))
    return outbox


async def attendance_of(session: AsyncSession, activity_id: int) -> tuple[int, dict[int, int]]:
    """(sessions held, enrolment id → sessions present)."""
    held = int(await session.scalar(select(func.count()).select_from(ActivitySession).where(
        ActivitySession.activity_id == activity_id, ActivitySession.status == SessionStatus.HELD)) or 0)
    present = dict((await session.execute(
        select(ActivityAttendance.enrolment_id, func.count()).join(
            ActivitySession, ActivitySession.id == ActivityAttendance.session_id).where(
            ActivitySession.activity_id == activity_id, ActivitySession.status == SessionStatus.HELD,
            ActivityAttendance.present.is_(True)).group_by(ActivityAttendance.enrolment_id))).all())
    return held, present


async def _term_summaries(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """After an activity's last session: each participant's attendance summary, staff the statistics."""
    ahead = select(ActivitySession.activity_id).where(ActivitySession.status == SessionStatus.SCHEDULED,
                                                      ActivitySession.ends_at > now)
    had = select(ActivitySession.activity_id)
    finished = list(await session.scalars(select(Activity).where(
        Activity.status == ActivityStatus.OPEN, Activity.summary_stage == 0, Activity.id.in_(had),
        Activity.id.not_in(ahead)).limit(100)))
    outbox: list[int | None] = []
    for activity in finished:
        done = await session.execute(update(Activity).where(Activity.id == activity.id, Activity.summary_stage == 0)
                                     .values(summary_stage=1).execution_options(synchronize_session=False))
        if done.rowcount != 1:
            continue
        held, present = await attendance_of(session, activity.id)
        if held == 0:
            continue
        for enrolment in await _participants(session, activity.id):
            person = await session.get(User, enrolment.user_id)
            locale = (person.locale if person else None) or "zh"
            n = present.get(enrolment.id, 0)
            outbox.append(await notify.to_user(session, person, f"ac_summary:{activity.id}:{enrolment.id}", Reply(t(
                locale, "activities.summary", who=await who_text(session, locale, enrolment),
                title=title_of(activity, locale), present=n, held=held,
                rate=f"{rules.attendance_rate(n, held):.0%}"))))
        if notify.groups_of(config, activity.community_code, "staff"):
            outbox += await notify.to_group(session, config, activity.community_code, "staff",
                                            f"g:ac_summary:{activity.id}",
                                            await stats_text(session, config, activity.community_code,
                                                             STAFF_LOCALE, [activity.id]))
    return _ids(*outbox)


# --- statistics ---------------------------------------------------------------------------------------

async def stats_text(session: AsyncSession, config: CommunitiesConfig, community: str, locale: str,
                     activity_ids: list[int] | None = None) -> str:
    """Per activity: places taken of capacity, waiting, sessions held, attendance rate."""
    stmt = select(Activity).where(Activity.community_code == community).order_by(Activity.id)
    if activity_ids is not None:
        stmt = stmt.where(Activity.id.in_(activity_ids))
    found = list(await session.scalars(stmt.limit(50)))
    numbers = await counts(session, [a.id for a in found])
    lines = []
    for activity in found:
        held, present = await attendance_of(session, activity.id)
        holding, waiting = numbers[activity.id]
        enrolled = len(await _participants(session, activity.id))
        rate = rules.attendance_rate(sum(present.values()), held * enrolled) if held and enrolled else 0.0
        lines.append(t(locale, "activities.stats_line", title=title_of(activity, locale), holding=holding,
                       capacity=activity.capacity, waiting=waiting, held=held, rate=f"{rate:.0%}",
                       status=t(locale, f"activities.status_{activity.status}")))
    return t(locale, "activities.stats", lines="\n".join(lines) or t(locale, "activities.none"))


# --- intake: youth and culture requests are offered matching activities ----------------------------------

INTAKE_AUDIENCE = {"youth": "children", "culture": "seniors"}


async def intake_offer(session: AsyncSession, community: str, label: str, text: str, locale: str,
                       now: datetime) -> Reply | None:
    """Activities with free places that match what the resident wrote (by keywords), best first.

    None when the label is not youth/culture or nothing is on; a generic "see activities" button
    when activities are on but none matches the words.
    """
    audience = INTAKE_AUDIENCE.get(label)
    if audience is None:
        return None
    found = await browse(session, community, audience, now, limit=30)
    open_ones = [x for x in found if x.activity.community_code == community and x.free > 0]
    if not open_ones:
        return None
    scored = sorted(((rules.keyword_hits(text, list(x.activity.keywords or [])), x) for x in open_ones),
                    key=lambda pair: (-pair[0], -pair[1].free))
    matched = [x for hits, x in scored if hits > 0][:3]
    if not matched:
        return Reply(t(locale, f"activities.intake_generic_{audience}"),
                     rows(Button(t(locale, f"activities.browse_{audience}"), actions.make("ac", audience))))
    lines = [t(locale, "activities.intake_line", title=title_of(x.activity, locale), free=x.free) for x in matched]
    buttons = [Button(title_of(x.activity, locale)[:30], actions.make("aco", x.activity.id)) for x in matched]
    return Reply(t(locale, "activities.intake_offer") + "\n" + "\n".join(lines), rows(*buttons, per_row=1))


# --- a person's own data (/mydata, /forgetme) ------------------------------------------------------------

async def export_data(session: AsyncSession, user: User) -> dict[str, object]:
    children = list(await session.scalars(select(ActivityChild).where(ActivityChild.guardian_id == user.id)
                                          .order_by(ActivityChild.id)))
    enrolled = list((await session.execute(
        select(ActivityEnrolment, Activity.title).join(Activity, Activity.id == ActivityEnrolment.activity_id)
        .where(ActivityEnrolment.user_id == user.id).order_by(ActivityEnrolment.id))).all())
    names = {c.id: c.name for c in children}
    return {
        "children": [{"name": c.name, "age": c.age, "school_class": c.school_class, "pickup": c.pickup,
                      "consent_at": c.consent_at.isoformat() if c.consent_at else None} for c in children],
        "enrolments": [{"activity": title, "for": names.get(e.child_id, "self") if e.child_id else "self",
                        "status": e.status} for e, title in enrolled],
    }


async def forget(session: AsyncSession, user: User, erased: str) -> None:
    """Names of children and pick-up people go; attendance counts stay for the statistics.

    Places held are given up; the scheduler offers them to those waiting.
    """
    enrolment_ids = list(await session.scalars(select(ActivityEnrolment.id).where(ActivityEnrolment.user_id == user.id)))
    await session.execute(update(ActivityChild).where(ActivityChild.guardian_id == user.id)
                          .values(name=erased, school_class=None, pickup=[], consent_at=None)
                          .execution_options(synchronize_session=False))
    await session.execute(update(ActivityEnrolment).where(
        ActivityEnrolment.user_id == user.id, ActivityEnrolment.status.in_([str(s) for s in ACTIVE]))
        .values(status=EnrolmentStatus.CANCELLED, offer_expires_at=None).execution_options(synchronize_session=False))
    if enrolment_ids:
        await session.execute(update(ActivityAttendance).where(
            ActivityAttendance.enrolment_id.in_(enrolment_ids), ActivityAttendance.picked_up_by.is_not(None))
            .values(picked_up_by=erased).execution_options(synchronize_session=False))
