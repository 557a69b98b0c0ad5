"""Every scheduler job (services.scheduler.jobs.JOBS) is idempotent and safe on two workers at once.

For each job, on data that gives it work: run it once; run it again with the same `now` (nothing more
happens); then, on fresh identical data, run it twice at the same moment through two separate engines
(two workers) and check the database ends exactly as after one run, with every notification queued once.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from services.scheduler.jobs import JOBS
from services.scheduler.main import SCHEDULE
from shared import activities as activity_service
from shared import deliberation as deliberation_service
from shared import mediation as mediation_service
from shared.db.models import (Activity, ActivityEnrolment, ActivitySession, Announcement, Book, BookHold, BookWish,
                              DelibAction, DelibMeeting, DelibTopic, DelibVote, FridgeItem, FridgeShift,
                              FridgeSubscription, MediationCase, MediationSession, OutboxMessage, Referral, Request,
                              Task, User, Volunteer)
from shared.domain import fridge as fridge_rules
from shared.domain.books import normalize
from shared.repo.communities import sync_communities
from shared.repo.users import get_or_create_user, give_consent, grant_role
from shared.runtime import Database
from shared.settings import Settings
from tests.conftest import truncate

TZ = "Asia/Shanghai"
# 21:45 local on 3 April 2027: after the fridge summary (21:30), before its quiet hours (22:00),
# in the first days of a month (recognition), a week before a 以书换绿 swap day (2027-04-10).
NOW = fridge_rules.at_local(date(2027, 4, 3), time(21, 45), TZ)
TODAY = date(2027, 4, 3)
FRIDGE = "zjy-fridge-1"
# Activities keep quiet from 21:30 (config defaults.activities.quiet_hours): at NOW their sweep rightly sends
# nothing, so that one job runs two hours earlier, at 19:45 local on the same day.
ACTIVITIES_NOW = NOW - timedelta(hours=2)
MOMENT = {"activities": ACTIVITIES_NOW}


def _request(n: int, user_id: int, **values: Any) -> Request:
    values = {"community_code": "zjy", "category": "repair", **values}
    return Request(number=f"{values['community_code'].upper()}-2027-{n:04d}", user_id=user_id, text=f"诉求{n}",
                   idempotency_key=f"idem-{n}", **values)


async def _person(session, external_id: str, *, roles: tuple[str, ...] = (), community: str = "zjy") -> User:
    user = await get_or_create_user(session, "telegram", external_id, display_name=f"p{external_id}")
    give_consent(user)
    user.community_code = community
    for role in roles:
        grant_role(user, role)
    await session.flush()
    return user


async def seed(db: Database, config) -> None:  # type: ignore[no-untyped-def]
    """Work for every job at its moment (NOW, or MOMENT[name])."""
    async with db.sessions() as session:
        resident = await _person(session, "9001")
        staff = await _person(session, "9002", roles=("staff",))
        helper = await _person(session, "9003", roles=("volunteer",))
        reader = await _person(session, "9004")
        session.add(Volunteer(user_id=helper.id, name="王志愿", community_code="zjy",
                              skills=["errands", "fridge_duty", "companionship"],
                              days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], parts=["am", "pm", "eve"],
                              named_in_recognition=True, status="approved"))
        # sla_escalation: one to remind, one to escalate; referral_chasing: a referral past its deadline.
        overdue = _request(1, resident.id, status="routed", due_at=NOW - timedelta(hours=1))
        late = _request(2, resident.id, status="routed", due_at=NOW - timedelta(hours=30), sla_stage=1)
        # followups: one to remind, one to close unrated.
        quiet = _request(3, resident.id, status="resolved", resolved_at=NOW - timedelta(days=4))
        silent = _request(4, resident.id, status="resolved", resolved_at=NOW - timedelta(days=7), followup_stage=1)
        session.add_all([overdue, late, quiet, silent])
        await session.flush()
        session.add(Referral(request_id=overdue.id, body="street_office", reference="JD-1",
                             deadline=NOW - timedelta(days=1)))
        # announcement_reports: every message of the announcement is sent.
        announcement = Announcement(community_code="zjy", author_id=staff.id, text="停水通知", recipients=1)
        session.add(announcement)
        await session.flush()
        session.add(OutboxMessage(key=f"ann:{announcement.id}:r", chat_id=resident.external_id, text="停水通知",
                                  options=[], batch=f"announcement:{announcement.id}", status="sent", attempts=1))
        # volunteer_tasks: an open task to offer wider, a claimed one to remind about.
        start = NOW + timedelta(hours=1)
        session.add_all([
            Task(community_code="zjy", source="staff", skill="driving", title="送医院", window_start=start,
                 window_end=start + timedelta(hours=2), status="open"),
            Task(community_code="zjy", source="staff", skill="errands", title="代买药", window_start=start,
                 window_end=start + timedelta(hours=2), status="claimed", claimer_id=helper.id, claimed_at=NOW),
            # volunteer_recognition: confirmed hours last month.
            Task(community_code="zjy", source="staff", skill="errands", title="陪诊", window_start=NOW - timedelta(days=20),
                 window_end=NOW - timedelta(days=20), status="confirmed", claimer_id=helper.id, hours=2,
                 confirmed_hours=2, done_at=NOW - timedelta(days=20)),
        ])
        # fridge_expiry / fridge_alerts / fridge_summary: food past its date, expiring today, newly in, a lapsed pledge.
        received = NOW - timedelta(hours=1)

        def item(code: str, best_before: date, status: str = "in_fridge", **extra: Any) -> FridgeItem:
            values = dict(code=code, fridge_code=FRIDGE, community_code="zjy", name=f"食物{code}", quantity=1,
                          remaining=1, kind="cooked", best_before=best_before, status=status, slot_start=received,
                          slot_end=received, received_at=received)
            values.update(extra)
            return FridgeItem(**values)

        session.add_all([item("PAST1", TODAY - timedelta(days=1)), item("TODAY", TODAY),
                         item("LATER", TODAY + timedelta(days=2)),
                         item("PLEDG", TODAY + timedelta(days=2), status="pledged", donor_id=resident.id,
                              slot_end=NOW - timedelta(hours=3), received_at=None)])
        session.add(FridgeSubscription(user_id=reader.id, fridge_code=FRIDGE))
        # book_holds: a lapsed hold with someone queueing behind; book_wishes: a new listing someone wished for.
        held = Book(house_code="fenghe", community_code="zjy", owner_id=staff.id, title="平凡的世界", author="路遥",
                    condition="good", location="house", status="held", search_key=normalize("平凡的世界路遥"),
                    wish_stage=1)
        fresh = Book(house_code="fenghe", community_code="zjy", owner_id=staff.id, title="三体", author="刘慈欣",
                     condition="good", location="house", status="available", search_key=normalize("三体刘慈欣"))
        session.add_all([held, fresh])
        await session.flush()
        session.add_all([
            BookHold(book_id=held.id, requester_id=resident.id, status="held", expires_at=NOW - timedelta(hours=1)),
            BookHold(book_id=held.id, requester_id=reader.id, status="queued", queued_at=NOW - timedelta(days=1)),
            BookWish(user_id=reader.id, house_code="fenghe", query="三体", search_key=normalize("三体")),
        ])
        await session.commit()
    await _seed_mediation(db, config)
    await _seed_deliberation(db, config)
    await _seed_activities(db, config)


async def _seed_mediation(db: Database, config) -> None:  # type: ignore[no-untyped-def]
    """mediation: a session tomorrow to remind of; an agreement whose follow-up is due."""
    ms = mediation_service
    followup_days = ms.ladder(config, "cjx").followup_days
    agreed_at = NOW - timedelta(days=followup_days, hours=1)
    async with db.sessions() as session:
        mediator = await _person(session, "9101", roles=("staff",), community="cjx")
        reporter = await _person(session, "9102", community="cjx")
        neighbour = await _person(session, "9103", community="cjx")
        cases = []
        for n in (11, 12):
            request = _request(n, reporter.id, status="routed", community_code="cjx", category="mediation",
                               team="mediation")
            session.add(request)
            await session.flush()
            opened = await ms.open_case(session, config, request, mediator, agreed_at - timedelta(days=1))
            case = opened.case
            first = await ms.party_of(session, case.id, reporter.id)
            assert (await ms.consent(session, config, first, reporter, True, agreed_at)).result == "consented"
            second, _code = await ms.add_party(session, case, mediator, "302室", offline=False, now=agreed_at)
            assert (await ms.consent(session, config, second, neighbour, True, agreed_at)).result == "consented"
            cases.append((case, [(first, reporter), (second, neighbour)]))
        (waiting, _), (agreeing, agreeing_parties) = cases
        meeting, _ = await ms.schedule_session(session, config, waiting, mediator, NOW + timedelta(hours=20), "调解室")
        assert meeting is not None
        agreement, _ = await ms.propose_agreement(session, config, agreeing, mediator, "各退一步", agreed_at)
        for party, person in agreeing_parties:
            await ms.answer_agreement(session, config, agreement, party, True, person, agreed_at)
        assert (await session.get(MediationCase, agreeing.id)).status == "agreed"
        await session.commit()


async def _seed_deliberation(db: Database, config) -> None:  # type: ignore[no-untyped-def]
    """deliberation: a vote whose closing time has passed, a meeting tomorrow, an action past its due date."""
    ds = deliberation_service
    async with db.sessions() as session:
        staff = await _person(session, "9200", roles=("staff",), community="zjz")
        residents = [await _person(session, str(9201 + i), community="zjz") for i in range(3)]
        for resident in residents:
            assert await ds.declare_compound(session, config, resident, "井儿街") == "ok"
        topics = []
        for title in ("加装电梯", "修缮车棚"):
            proposed = await ds.propose(session, config, residents[0], title=title, description="老楼", photos=[],
                                        compound="井儿街")
            assert (await ds.accept(session, config, proposed.topic.id, staff)).ok
            assert (await ds.support(session, config, proposed.topic.id, residents[1])).ok
            topics.append(proposed.topic.id)
        voting, acting = topics
        assert (await ds.schedule_meeting(session, config, voting, staff, NOW + timedelta(hours=20), "议事厅")).ok
        opened = await ds.open_vote(session, config, voting, staff, options=["赞成", "反对"], secret=True, quorum=2,
                                    hours=24, now=NOW - timedelta(hours=25), compound="井儿街")
        for resident in residents[:2]:
            assert (await ds.cast(session, opened.extra["vote_id"], resident, 0, NOW - timedelta(hours=24))).ok
        decided = await ds.open_vote(session, config, acting, staff, options=["赞成", "反对"], secret=False, quorum=1,
                                     hours=24, now=NOW - timedelta(days=10), compound="井儿街")
        assert (await ds.cast(session, decided.extra["vote_id"], residents[0], 0, NOW - timedelta(days=10))).ok
        assert (await ds.close_vote(session, config, decided.extra["vote_id"], NOW - timedelta(days=9))).ok
        assert (await ds.add_action(session, config, acting, staff, title="报价", owner="物业",
                                    due=TODAY - timedelta(days=2))).ok
        await session.commit()


async def _seed_activities(db: Database, config) -> None:  # type: ignore[no-untyped-def]
    """activities (at ACTIVITIES_NOW): a lapsed offer with someone next in line, a session tomorrow, a term just over."""
    at = ACTIVITIES_NOW
    async with db.sessions() as session:
        people = [await _person(session, str(9301 + i)) for i in range(4)]
        first = at + timedelta(hours=20)
        running = await activity_service.create_activity(
            session, community="zjy", title="书法班", audience="everyone", place="活动室", capacity=2,
            spans=[(first + timedelta(days=7 * i), first + timedelta(days=7 * i, hours=2)) for i in range(3)])
        enrolments = []
        for person in people:   # two places, two in line
            outcome = await activity_service.enrol(session, config, running.id, person, None, at - timedelta(days=3))
            enrolments.append(outcome.enrolment)
        # The second gives up their place in the afternoon two days ago: the first in line is offered it
        # until a day later, and lets the offer lapse.
        status, offered = await activity_service.cancel_enrolment(session, config, enrolments[1].id, people[1],
                                                                  at - timedelta(days=2))
        assert status == "ok" and offered
        over = at - timedelta(days=2)
        finished = await activity_service.create_activity(
            session, community="zjy", title="剪纸课", audience="everyone", place="活动室", capacity=5,
            spans=[(over - timedelta(days=7), over - timedelta(days=7, hours=-2)), (over, over + timedelta(hours=2))])
        for person in people[:2]:
            await activity_service.enrol(session, config, finished.id, person, None, at - timedelta(days=20))
        await session.flush()
        for meeting in await session.scalars(select(ActivitySession).where(ActivitySession.activity_id == finished.id)):
            meeting.status, meeting.held_at = "held", meeting.ends_at
        await session.commit()


async def snapshot(db: Database) -> dict[str, Any]:
    """What the jobs change: queued notifications (by key) and the state columns they move."""
    async with db.sessions() as session:
        async def rows(*columns: Any, join: Any = None) -> list[tuple]:
            """`join`: a table with an activity_id, joined to Activity for the activity's title."""
            stmt = select(*columns)
            if join is not None:
                stmt = stmt.select_from(join).join(Activity, Activity.id == join.activity_id)
            return sorted(tuple(r) for r in (await session.execute(stmt)).all())

        return {
            "outbox": await rows(OutboxMessage.key, OutboxMessage.status),
            "requests": await rows(Request.number, Request.status, Request.sla_stage, Request.followup_stage),
            "referrals": await rows(Referral.id, Referral.chased_at),
            "announcements": await rows(Announcement.id, Announcement.reported_at),
            "tasks": await rows(Task.title, Task.status, Task.reminder_stage, Task.window_start),
            "fridge_items": await rows(FridgeItem.code, FridgeItem.status, FridgeItem.alerted_at,
                                       FridgeItem.expiry_announced_at),
            "fridge_shifts": await rows(FridgeShift.fridge_code, FridgeShift.starts_at),
            "books": await rows(Book.title, Book.status, Book.wish_stage),
            "holds": await rows(BookHold.book_id, BookHold.requester_id, BookHold.status),
            "mediation_cases": await rows(MediationCase.number, MediationCase.status, MediationCase.followup_stage,
                                          MediationCase.followup_asked_at),
            "mediation_sessions": await rows(MediationSession.case_id, MediationSession.status,
                                             MediationSession.reminder_stage),
            "delib_topics": await rows(DelibTopic.id, DelibTopic.stage),
            "delib_votes": await rows(DelibVote.id, DelibVote.closed_at),
            "delib_meetings": await rows(DelibMeeting.id, DelibMeeting.reminded_at),
            "delib_actions": await rows(DelibAction.id, DelibAction.overdue_alerted_at),
            "activities": await rows(Activity.community_code, Activity.title, Activity.status, Activity.summary_stage),
            # Keyed by the activity's title, not ids: the concurrent runs may number config activities differently.
            "activity_sessions": await rows(Activity.title, ActivitySession.starts_at, ActivitySession.status,
                                            ActivitySession.reminder_stage, join=ActivitySession),
            "enrolments": await rows(Activity.title, ActivityEnrolment.user_id, ActivityEnrolment.status,
                                     ActivityEnrolment.round, ActivityEnrolment.offer_expires_at, join=ActivityEnrolment),
        }


@pytest.fixture
async def second_engine(database_url: str):  # type: ignore[no-untyped-def]
    """A second worker's own engine and connections."""
    database = Database.connect(Settings(database_url=database_url, _env_file=None))
    yield database
    await database.close()


async def fresh(db: Database, config) -> None:  # type: ignore[no-untyped-def]
    await truncate(db)
    async with db.sessions() as session:
        await sync_communities(session, config)
        await session.commit()
    await seed(db, config)


def test_every_scheduled_job_exists_and_every_job_is_scheduled():
    assert set(SCHEDULE) == set(JOBS)


@pytest.mark.parametrize("name", sorted(JOBS))
async def test_job_runs_once_however_often_and_however_concurrently(db, second_engine, config, name):
    job = JOBS[name]
    now = MOMENT.get(name, NOW)
    broker = StubBroker()
    broker.emit_after("process_boot")

    await fresh(db, config)
    before = await snapshot(db)
    queued = await job(db, broker, config, now)
    once = await snapshot(db)
    assert queued > 0 and once != before, f"{name} found no work: the seed does not exercise it"
    assert await job(db, broker, config, now) == 0      # again, the same moment: nothing more
    assert await snapshot(db) == once

    await fresh(db, config)
    first, second = await asyncio.gather(job(db, broker, config, now), job(second_engine, broker, config, now))
    assert first + second == queued                   # every notification queued once between the two
    assert await snapshot(db) == once
    assert broker.queues["delivery"].qsize() == 2 * queued   # each queued notification was enqueued once per scenario
    broker.close()
