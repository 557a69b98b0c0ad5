"""Activities and enrolment against SQLite and PostgreSQL with a controllable clock (explicit `now`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from shared import activities as service
from shared.activity_config import ActivityDefaults
from shared.clock import as_utc
from shared.db.models import (
    Activity,
    ActivityEnrolment,
    ActivitySession,
    ActivityTutorHours,
    OutboxMessage,
    Task,
    Volunteer,
)
from shared.domain import activities as rules
from shared.volunteering import confirmed_hours
from tests.people import person as onboarded

# 10:00 in Lanzhou (Asia/Shanghai), outside the default quiet hours.
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def calm(config):
    """The shipped config without quiet hours (tests that are not about them run at any hour)."""
    return config.model_copy(update={"defaults": config.defaults.model_copy(
        update={"activities": ActivityDefaults(reminder_hours=24, offer_hours=24, quiet_hours=None)})})


async def person(db, external: str, community: str = "cjx", *, staff: bool = False, name: str | None = None):
    async with db.sessions() as session:
        user = await onboarded(session, external, community, staff=staff, name=name or f"居民{external}")
        await session.commit()
        return user


async def make_activity(db, *, capacity=2, audience="everyone", community="cjx", sessions=3, first=NOW + timedelta(days=1),
                        age=(None, None), organiser_id=None, opens=None, closes=None) -> int:
    spans = [(first + timedelta(days=7 * i), first + timedelta(days=7 * i, hours=2)) for i in range(sessions)]
    async with db.sessions() as session:
        activity = await service.create_activity(session, community=community, title="四点半课堂", audience=audience,
                                                  place="活动室", capacity=capacity, spans=spans, age_min=age[0],
                                                  age_max=age[1], organiser_id=organiser_id, opens=opens, closes=closes,
                                                  keywords=["放学", "托管"])
        await session.commit()
        return activity.id


async def enrol(db, config, activity_id, user, child_id=None, now=NOW):
    async with db.sessions() as session:
        fresh = await session.merge(user)
        outcome = await service.enrol(session, config, activity_id, fresh, child_id, now)
        await session.commit()
        return outcome


async def child_of(db, user, *, age=8, consent=True, pickup=("妈妈 王芳",)) -> int:
    async with db.sessions() as session:
        child = await service.add_child(session, await session.merge(user), name="小明", age=age, school_class="三年级二班",
                                        pickup=list(pickup), now=NOW)
        if not consent:
            child.consent_at = None
        await session.commit()
        return child.id


async def statuses(db, activity_id) -> list[tuple[int, str]]:
    async with db.sessions() as session:
        return [(e.user_id, e.status) for e in await session.scalars(
            select(ActivityEnrolment).where(ActivityEnrolment.activity_id == activity_id).order_by(ActivityEnrolment.id))]


async def sweep(db, config, now):
    async with db.sessions() as session:
        ids = await service.activity_sweep(session, config, now)
        await session.commit()
        return ids


async def outbox_keys(db, like: str) -> list[str]:
    async with db.sessions() as session:
        return sorted(await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(like))))


# --- config ------------------------------------------------------------------------------------------

async def test_config_activities_sync_idempotently(db, config):
    async with db.sessions() as session:
        added = await service.sync_configured(session, config)
        await session.commit()
    async with db.sessions() as session:
        again = await service.sync_configured(session, config)
        await session.commit()
        activities = list(await session.scalars(select(Activity).order_by(Activity.id)))
        total = await session.scalar(select(func.count()).select_from(ActivitySession))
    expected = sum(len(a.all_slots()) for c in config.communities for a in c.activities)
    assert added == expected == total and again == 0
    taichi = next(a for a in activities if a.code == "yjy_taichi")
    assert taichi.community_code == "yjy" and taichi.audience == "seniors" and taichi.capacity == 30
    holiday = next(a for a in activities if a.code == "cjx_holiday_class")
    # enrol_opens 2026-12-15 local midnight = 12-14 16:00 UTC; enrol_closes is inclusive.
    assert as_utc(holiday.enrol_opens_at) == datetime(2026, 12, 14, 16, 0, tzinfo=UTC)
    assert as_utc(holiday.enrol_closes_at) == datetime(2027, 1, 18, 16, 0, tzinfo=UTC)   # the end of 01-18 local


# --- places and the waiting list ------------------------------------------------------------------------

async def test_capacity_waiting_list_offer_accept_decline_expire(db, calm):
    people = [await person(db, f"70{i}") for i in range(5)]
    aid = await make_activity(db, capacity=2)
    results = [await enrol(db, calm, aid, p) for p in people]
    assert [r.result for r in results] == ["enrolled", "enrolled", "waiting", "waiting", "waiting"]
    assert [r.position for r in results[2:]] == [1, 2, 3]
    assert (await enrol(db, calm, aid, people[0])).result == "already"      # a duplicate press
    assert len(await statuses(db, aid)) == 5

    # A place frees: the first in line is offered it (not the next newcomer), once.
    async with db.sessions() as session:
        result, ids = await service.cancel_enrolment(session, calm, results[0].enrolment.id, await session.merge(people[0]), NOW)
        await session.commit()
    assert result == "ok" and len(ids) == 1
    async with db.sessions() as session:
        again, more = await service.cancel_enrolment(session, calm, results[0].enrolment.id, await session.merge(people[0]), NOW)
    assert (again, more) == ("already", [])
    late = await person(db, "799")
    assert (await enrol(db, calm, aid, late)).result == "waiting"            # behind those already waiting
    assert [s for _u, s in await statuses(db, aid)] == ["cancelled", "enrolled", "offered", "waiting", "waiting", "waiting"]

    # Someone else cannot accept it; the one offered declines → the next is offered.
    async with db.sessions() as session:
        assert (await service.answer_offer(session, calm, results[2].enrolment.id, await session.merge(people[3]), True, NOW))[0] == "not_allowed"
        result, ids = await service.answer_offer(session, calm, results[2].enrolment.id, await session.merge(people[2]), False, NOW)
        await session.commit()
    assert result == "declined" and len(ids) == 1
    assert [s for _u, s in await statuses(db, aid)][2:4] == ["declined", "offered"]

    # The next lets it lapse: the sweep expires it and offers the place on (twice: nothing more).
    later = NOW + timedelta(hours=25)
    first = await sweep(db, calm, later)
    second = await sweep(db, calm, later)
    assert second == [] and len(first) >= 2
    assert [s for _u, s in await statuses(db, aid)][3:] == ["expired", "offered", "waiting"]
    async with db.sessions() as session:
        assert (await service.answer_offer(session, calm, results[3].enrolment.id, await session.merge(people[3]), True, later))[0] == "stale"
        assert (await service.answer_offer(session, calm, results[4].enrolment.id, await session.merge(people[4]), True, later))[0] == "ok"
        await session.commit()
    holding, waiting = (await _counts(db, aid))
    assert holding == 2 and waiting == 1


async def _counts(db, aid):
    async with db.sessions() as session:
        return (await service.counts(session, [aid]))[aid]


async def test_raising_capacity_offers_places_to_those_waiting(db, calm):
    people = [await person(db, f"71{i}") for i in range(4)]
    aid = await make_activity(db, capacity=1)
    for p in people:
        await enrol(db, calm, aid, p)
    async with db.sessions() as session:
        activity = await session.get(Activity, aid)
        activity.capacity = 3
        await session.commit()
    await sweep(db, calm, NOW)
    assert [s for _u, s in await statuses(db, aid)] == ["enrolled", "offered", "offered", "waiting"]


async def test_offers_wait_for_the_end_of_quiet_hours(db, config):
    people = [await person(db, f"72{i}") for i in range(2)]
    aid = await make_activity(db, capacity=1)
    first = await enrol(db, config, aid, people[0])
    await enrol(db, config, aid, people[1])
    night = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)     # 23:00 local
    async with db.sessions() as session:
        _result, ids = await service.cancel_enrolment(session, config, first.enrolment.id, await session.merge(people[0]), night)
        await session.commit()
    assert ids == [] and [s for _u, s in await statuses(db, aid)] == ["cancelled", "waiting"]
    assert await sweep(db, config, night) == []
    morning = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)    # 08:00 local
    assert len(await sweep(db, config, morning)) == 1
    assert [s for _u, s in await statuses(db, aid)] == ["cancelled", "offered"]


# --- eligibility --------------------------------------------------------------------------------------

async def test_eligibility_community_age_consent_audience_window(db, calm):
    parent = await person(db, "730")
    stranger = await person(db, "731", community="zjy")
    children_only = await make_activity(db, audience="children", age=(6, 12))
    seniors = await make_activity(db, audience="seniors")
    assert (await enrol(db, calm, children_only, stranger)).result == "other_community"
    assert (await enrol(db, calm, children_only, parent)).result == "child_needed"
    young = await child_of(db, parent, age=4)
    unconsented = await child_of(db, parent, consent=False)
    fine = await child_of(db, parent, age=9)
    assert (await enrol(db, calm, children_only, parent, young)).result == "age"
    assert (await enrol(db, calm, children_only, parent, unconsented)).result == "no_consent"
    assert (await enrol(db, calm, children_only, stranger, fine)).result == "other_community"
    other_parent = await person(db, "732")
    assert (await enrol(db, calm, children_only, other_parent, fine)).result == "not_allowed"   # someone else's child
    assert (await enrol(db, calm, seniors, parent, fine)).result == "self_only"
    assert (await enrol(db, calm, children_only, parent, fine)).result == "enrolled"
    assert (await enrol(db, calm, 999999, parent)).result == "gone"
    soon = await make_activity(db, opens=NOW + timedelta(days=1))
    over = await make_activity(db, closes=NOW - timedelta(minutes=1))
    past = await make_activity(db, first=NOW - timedelta(days=30), sessions=2)
    assert (await enrol(db, calm, soon, parent)).result == "not_yet"
    assert (await enrol(db, calm, over, parent)).result == "closed"
    assert (await enrol(db, calm, past, parent)).result == "closed"
    assert len(await statuses(db, children_only)) == 1


# --- reminders across a month --------------------------------------------------------------------------

async def test_weekly_sessions_across_a_month_are_each_reminded_once(db, calm):
    parent = await person(db, "740")
    slots = rules.weekly([2], time(16, 30), time(18, 0), date(2026, 12, 1), date(2026, 12, 31))
    async with db.sessions() as session:
        activity = await service.create_activity(session, community="cjx", title="四点半课堂", audience="everyone",
                                                  place="活动室", capacity=5, spans=[s.utc("Asia/Shanghai") for s in slots])
        await session.commit()
    await enrol(db, calm, activity.id, parent)
    clock = NOW
    sent_per_day = []
    while clock < datetime(2027, 1, 2, tzinfo=UTC):
        sent_per_day.append(len(await sweep(db, calm, clock)))
        await sweep(db, calm, clock)            # the same tick twice: nothing more
        clock += timedelta(hours=6)
    keys = await outbox_keys(db, "%ac_remind:%")
    assert len(keys) == len(slots) == 5 and sum(sent_per_day) == 5
    assert sum(1 for n in sent_per_day if n) == 5


async def test_reminders_respect_quiet_hours(db, config):
    parent = await person(db, "741")
    morning = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)   # 08:30 local
    aid = await make_activity(db, first=morning, sessions=1)
    await enrol(db, config, aid, parent)
    night = morning - timedelta(hours=9)                  # 23:30 local: in the reminder window, but quiet
    assert await sweep(db, config, night) == []
    assert len(await sweep(db, config, morning - timedelta(minutes=45))) == 1    # 07:45 local
    assert await sweep(db, config, morning - timedelta(minutes=40)) == []


# --- organisers ------------------------------------------------------------------------------------------

async def test_cancellations_reach_everyone_once(db, calm):
    staff = await person(db, "750", staff=True)
    outsider = await person(db, "751", community="zjy", staff=True)
    people = [await person(db, f"75{i}") for i in range(2, 5)]
    aid = await make_activity(db, capacity=2)
    for p in people:
        await enrol(db, calm, aid, p)
    async with db.sessions() as session:
        first_session = (await service.upcoming(session, aid, NOW))[0]
        assert (await service.cancel_session(session, calm, first_session.id, await session.merge(outsider), NOW))[0] == "not_allowed"
        assert (await service.cancel_session(session, calm, first_session.id, await session.merge(people[0]), NOW))[0] == "not_allowed"
        result, ids = await service.cancel_session(session, calm, first_session.id, await session.merge(staff), NOW)
        await session.commit()
    assert result == "ok" and len(ids) == 2               # those with a place
    async with db.sessions() as session:
        assert (await service.cancel_session(session, calm, first_session.id, await session.merge(staff), NOW)) == ("already", [])
        result, ids = await service.cancel_activity(session, calm, aid, await session.merge(staff), NOW)
        await session.commit()
    assert result == "ok" and len(ids) == 3               # enrolled and waiting
    async with db.sessions() as session:
        assert (await service.cancel_activity(session, calm, aid, await session.merge(staff), NOW)) == ("already", [])
    assert {s for _u, s in await statuses(db, aid)} == {"cancelled"}


async def test_roll_call_pickup_tutor_hours_and_term_summary(db, calm):
    staff = await person(db, "760", staff=True)
    tutor = await person(db, "761", name="志愿者小李")
    parent = await person(db, "762", name="王芳")
    resident = await person(db, "763")
    async with db.sessions() as session:
        session.add(Volunteer(user_id=tutor.id, name="小李", community_code="cjx", skills=["tutoring"], days=[], parts=[],
                              status="approved"))
        await session.commit()
    aid = await make_activity(db, capacity=5, sessions=2, organiser_id=tutor.id)
    kid = await child_of(db, parent, pickup=("妈妈 王芳", "爷爷 李建国"))
    child_enrolment = (await enrol(db, calm, aid, parent, kid)).enrolment.id
    own = (await enrol(db, calm, aid, resident)).enrolment.id
    async with db.sessions() as session:
        meetings = await service.upcoming(session, aid, NOW)
    at = as_utc(meetings[0].starts_at)
    async with db.sessions() as session:
        r = await session.merge(resident)
        assert await service.mark(session, meetings[0].id, own, r, True, at) == "not_allowed"     # a resident
        assert (await service.finish_roll(session, calm, meetings[0].id, r, at))[0] == "not_allowed"
        t = await session.merge(tutor)
        assert await service.mark(session, meetings[0].id, 999999, t, True, at) == "not_allowed"
        assert await service.mark(session, meetings[0].id, own, t, True, at) == "ok"
        assert await service.mark(session, meetings[0].id, own, t, True, at) == "ok"              # set, not toggle
        ok, ids = await service.record_pickup(session, calm, meetings[0].id, child_enrolment, t, "爷爷李建国", at)
        flagged, flag_ids = await service.record_pickup(session, calm, meetings[0].id, child_enrolment, t, "张三", at)
        not_child, _ = await service.record_pickup(session, calm, meetings[0].id, own, t, "张三", at)
        await session.commit()
    assert (ok, len(ids), flagged, len(flag_ids), not_child) == ("ok", 1, "flagged", 2, "not_child")
    async with db.sessions() as session:
        entries = await service.roll(session, meetings[0].id)
        assert [(e.present, e.picked_up_by, e.pickup_ok) for e in entries] == [(True, "张三", False), (True, None, None)]
        t = await session.merge(tutor)
        assert (await service.finish_roll(session, calm, meetings[1].id, t, at))[0] == "too_early"
        assert await service.finish_roll(session, calm, meetings[0].id, t, at) == ("ok", 2, 2)
        await session.commit()
    async with db.sessions() as session:
        assert (await service.finish_roll(session, calm, meetings[0].id, await session.merge(tutor), at))[0] == "already"
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(ActivityTutorHours)) == 1
        assert await confirmed_hours(session, tutor.id) == 2.0
        task = await session.scalar(select(Task).where(Task.source == "activity"))
        assert task.claimer_id == tutor.id and task.status == "confirmed"
    # Second session: only the resident; then the term ends and summaries go out once.
    second = as_utc(meetings[1].starts_at)
    async with db.sessions() as session:
        s = await session.merge(staff)
        await service.mark(session, meetings[1].id, own, s, True, second)
        await service.finish_roll(session, calm, meetings[1].id, s, second)
        await session.commit()
    after = as_utc(meetings[1].ends_at) + timedelta(hours=1)
    first_run = await sweep(db, calm, after)
    assert await sweep(db, calm, after) == []
    summaries = await outbox_keys(db, "%ac_summary:%")
    assert len(first_run) == 3 and len(summaries) == 3            # two participants and the staff group
    async with db.sessions() as session:
        held, present = await service.attendance_of(session, aid)
        texts = {m.key: m.text for m in await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("%ac_summary:%")))}
        stats = await service.stats_text(session, calm, "cjx", "zh")
    assert held == 2 and present == {child_enrolment: 1, own: 2}
    assert any("到场 1 次" in text and "小明" in text for text in texts.values())
    assert "已上 2 次" in stats and "出勤率 75%" in stats


async def test_intake_offer_matches_keywords_and_free_places(db, calm):
    aid = await make_activity(db, capacity=3, audience="children", age=(6, 12))
    async with db.sessions() as session:
        offer = await service.intake_offer(session, "cjx", "youth", "孩子放学早没人接", "zh", NOW)
        generic = await service.intake_offer(session, "cjx", "youth", "孩子想学游泳", "zh", NOW)
        none_culture = await service.intake_offer(session, "cjx", "culture", "想学书法", "zh", NOW)
        elsewhere = await service.intake_offer(session, "zjy", "youth", "孩子放学早没人接", "zh", NOW)
        repair = await service.intake_offer(session, "cjx", "repair", "放学", "zh", NOW)
    assert offer is not None and f"aco:{aid}" in [b.action for row in offer.buttons for b in row]
    assert "剩 3 个名额" in offer.text
    assert generic is not None and [b.action for row in generic.buttons for b in row] == ["ac:children"]
    assert none_culture is None and elsewhere is None and repair is None


# --- concurrency -----------------------------------------------

async def test_concurrent_enrolment_never_exceeds_capacity_and_keeps_order(db, calm):
    """40 people at once (and 10 of them twice): PostgreSQL row locks, SQLite's single writer."""
    people = [await person(db, f"8{i:03d}") for i in range(40)]
    aid = await make_activity(db, capacity=7)

    async def one(p, i):
        return await enrol(db, calm, aid, p, now=NOW + timedelta(microseconds=i))

    outcomes = await asyncio.gather(*(one(p, i) for i, p in enumerate(people)))
    outcomes += await asyncio.gather(*(one(p, i) for i, p in enumerate(people[:10])))   # everyone presses twice
    assert sum(o.result == "enrolled" for o in outcomes) == 7
    assert sum(o.result == "waiting" for o in outcomes) == 33
    assert sum(o.result == "already" for o in outcomes) == 10
    async with db.sessions() as session:
        rows = list(await session.scalars(select(ActivityEnrolment).where(ActivityEnrolment.activity_id == aid)
                                          .order_by(ActivityEnrolment.id)))
    assert len(rows) == 40 and sum(r.status == "enrolled" for r in rows) == 7
    waiting = [r for r in rows if r.status == "waiting"]
    positions = [o.position for o in outcomes if o.result == "waiting"]
    assert sorted(positions) == list(range(1, 34))    # each place in line handed out once
    # Cancellations under concurrency: each freed place goes to the next in line, in order.
    enrolled = [(r, next(p for p in people if p.id == r.user_id)) for r in rows if r.status == "enrolled"][:3]

    async def leave(row, p):
        async with db.sessions() as session:
            result = await service.cancel_enrolment(session, calm, row.id, await session.merge(p), NOW)
            await session.commit()
            return result

    await asyncio.gather(*(leave(r, p) for r, p in enrolled))
    async with db.sessions() as session:
        offered = list(await session.scalars(select(ActivityEnrolment.id).where(
            ActivityEnrolment.activity_id == aid, ActivityEnrolment.status == "offered")))
        holding = await session.scalar(select(func.count()).select_from(ActivityEnrolment).where(
            ActivityEnrolment.activity_id == aid, ActivityEnrolment.status.in_(["enrolled", "offered"])))
    first_three = sorted(waiting, key=lambda r: r.queue_no)[:3]
    assert sorted(offered) == sorted(r.id for r in first_three) and holding == 7
