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
from shared.db.models import (Announcement, Book, BookHold, BookWish, FridgeItem, FridgeShift, FridgeSubscription,
                              OutboxMessage, Referral, Request, Task, User, Volunteer)
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


def _request(n: int, user_id: int, **values: Any) -> Request:
    return Request(number=f"ZJY-2027-{n:04d}", community_code="zjy", user_id=user_id, text=f"诉求{n}",
                   category="repair", idempotency_key=f"idem-{n}", **values)


async def _person(session, external_id: str, *, roles: tuple[str, ...] = ()) -> User:
    user = await get_or_create_user(session, "telegram", external_id)
    give_consent(user)
    user.community_code = "zjy"
    for role in roles:
        grant_role(user, role)
    await session.flush()
    return user


async def seed(db: Database) -> None:
    """Work for every job at NOW."""
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


async def snapshot(db: Database) -> dict[str, Any]:
    """What the jobs change: queued notifications (by key) and the state columns they move."""
    async with db.sessions() as session:
        async def rows(*columns: Any) -> list[tuple]:
            return sorted(tuple(r) for r in (await session.execute(select(*columns))).all())

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
    await seed(db)


def test_every_scheduled_job_exists_and_every_job_is_scheduled():
    assert set(SCHEDULE) == set(JOBS)


@pytest.mark.parametrize("name", sorted(JOBS))
async def test_job_runs_once_however_often_and_however_concurrently(db, second_engine, config, name):
    job = JOBS[name]
    broker = StubBroker()
    broker.emit_after("process_boot")

    await fresh(db, config)
    before = await snapshot(db)
    queued = await job(db, broker, config, NOW)
    once = await snapshot(db)
    assert queued > 0 and once != before, f"{name} found no work: the seed does not exercise it"
    assert await job(db, broker, config, NOW) == 0      # again, the same moment: nothing more
    assert await snapshot(db) == once

    await fresh(db, config)
    first, second = await asyncio.gather(job(db, broker, config, NOW), job(second_engine, broker, config, NOW))
    assert first + second == queued                   # every notification queued once between the two
    assert await snapshot(db) == once
    assert broker.queues["delivery"].qsize() == 2 * queued   # each queued notification was enqueued once per scenario
    broker.close()
