"""The scheduler's jobs: time-driven sweeps, each for an explicit `now`.

The scheduler process never runs them: it enqueues a RUN_JOB message (name + the tick's `now`)
and a worker runs the job here (services.scheduler.worker). Each job is idempotent and safe when
two workers run it at once: every step is a conditional UPDATE or an insert of a unique key, so a
second run (or a concurrent one) finds nothing left to do. Notifications are enqueued for delivery
after the job commits; a lost enqueue is picked up by `requeue_stale_notifications`.

`requeue_stuck_requests` and `requeue_stale_notifications` are different: they change nothing in
the database, only re-enqueue lost messages, so the scheduler process runs them itself — the
recovery path for lost messages must not depend on a worker consuming yet another queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import dramatiq

from shared import sweeps
from shared.clock import utcnow
from shared.config import CommunitiesConfig
from shared.queue.contracts import (
    CLASSIFY_REQUEST,
    DELIVER_NOTIFICATION,
    ClassifyRequest,
    DeliverNotification,
    send,
)
from shared.repo.outbox import stale_ids
from shared.repo.requests import stuck_received
from shared.runtime import Database

log = logging.getLogger("linju.scheduler")


async def requeue_stuck_requests(database: Database, broker: dramatiq.Broker, *, older_than_seconds: float) -> int:
    """Requests the bot stored but whose intake message was lost (e.g. Redis was down)."""
    async with database.sessions() as session:
        ids = await stuck_received(session, older_than_seconds=older_than_seconds)
    for request_id in ids:
        await asyncio.to_thread(send, broker, CLASSIFY_REQUEST, ClassifyRequest(request_id=request_id))
    if ids:
        log.info("re-enqueued stuck requests", extra={"count": len(ids)})
    return len(ids)


async def requeue_stale_notifications(database: Database, broker: dramatiq.Broker, *, older_than_seconds: float) -> int:
    """Outbox rows never delivered: their enqueue was lost or their worker died."""
    async with database.sessions() as session:
        ids = await stale_ids(session, older_than=timedelta(seconds=older_than_seconds))
    for outbox_id in ids:
        await asyncio.to_thread(send, broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
    if ids:
        log.info("re-enqueued stale notifications", extra={"count": len(ids)})
    return len(ids)


async def _sweep(database: Database, broker: dramatiq.Broker, sweep, config: CommunitiesConfig,  # type: ignore[no-untyped-def]
                 now: datetime | None) -> int:
    async with database.sessions() as session:
        outbox_ids = await sweep(session, config, now or utcnow())
        await session.commit()
    for outbox_id in outbox_ids:
        await asyncio.to_thread(send, broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
    return len(outbox_ids)


async def sla_escalation(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                         now: datetime | None = None) -> int:
    """Overdue requests: remind, then escalate (shared.sweeps.sla_sweep)."""
    return await _sweep(database, broker, sweeps.sla_sweep, config, now)


async def followups(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                    now: datetime | None = None) -> int:
    """Unanswered follow-ups: remind once, then close as unrated (shared.sweeps.followup_sweep)."""
    return await _sweep(database, broker, sweeps.followup_sweep, config, now)


async def referral_chasing(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                           now: datetime | None = None) -> int:
    """Outside referrals past their deadline are chased (shared.sweeps.referral_sweep)."""
    return await _sweep(database, broker, sweeps.referral_sweep, config, now)


async def announcement_reports(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                               now: datetime | None = None) -> int:
    """Authors learn how many residents their announcement reached (shared.announcements.report_sweep)."""
    from shared.announcements import report_sweep

    return await _sweep(database, broker, lambda session, _config, when: report_sweep(session, when), config, now)


async def volunteer_tasks(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                          now: datetime | None = None) -> int:
    """Reminders, re-offers, staff alerts and expiry of volunteer tasks (shared.sweeps.task_sweep)."""
    return await _sweep(database, broker, sweeps.task_sweep, config, now)


async def volunteer_recognition(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                                now: datetime | None = None) -> int:
    """Monthly thanks to the volunteers with the most confirmed hours (shared.sweeps.recognition_sweep)."""
    return await _sweep(database, broker, sweeps.recognition_sweep, config, now)


async def fridge_shifts(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                        now: datetime | None = None) -> int:
    """Plan the next 7 days of fridge shifts as volunteer tasks (shared.fridge_sweeps.plan_shifts)."""
    from shared import fridge_sweeps

    return await _sweep(database, broker, fridge_sweeps.plan_shifts, config, now)


async def fridge_expiry(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                        now: datetime | None = None) -> int:
    """Lapsed pledges, past best-before → to remove, expiring today → subscribers (fridge_sweeps.expiry_sweep)."""
    from shared import fridge_sweeps

    return await _sweep(database, broker, fridge_sweeps.expiry_sweep, config, now)


async def fridge_alerts(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                        now: datetime | None = None) -> int:
    """Batched "new food" alerts outside quiet hours (shared.fridge_sweeps.alert_sweep)."""
    from shared import fridge_sweeps

    return await _sweep(database, broker, fridge_sweeps.alert_sweep, config, now)


async def fridge_summary(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                         now: datetime | None = None) -> int:
    """The daily fridge summary to the staff group (shared.fridge_sweeps.summary_sweep)."""
    from shared import fridge_sweeps

    return await _sweep(database, broker, fridge_sweeps.summary_sweep, config, now)


async def book_holds(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                     now: datetime | None = None) -> int:
    """Lapsed book holds released, the next in each queue offered the book (shared.books.hold_sweep)."""
    from shared import books

    return await _sweep(database, broker, books.hold_sweep, config, now)


async def book_wishes(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                      now: datetime | None = None) -> int:
    """New listings matched against saved searches, told once (shared.books.wish_sweep)."""
    from shared import books

    return await _sweep(database, broker, books.wish_sweep, config, now)


async def book_swap_days(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                         now: datetime | None = None) -> int:
    """以书换绿 swap days announced a week and a day before (shared.books.swap_day_sweep)."""
    from shared import books

    return await _sweep(database, broker, books.swap_day_sweep, config, now)


async def mediation(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                    now: datetime | None = None) -> int:
    """Session reminders the day before, agreement follow-ups (shared.mediation.mediation_sweep)."""
    from shared import mediation as cases

    return await _sweep(database, broker, cases.mediation_sweep, config, now)


async def deliberation(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                       now: datetime | None = None) -> int:
    """Votes closed at their time, meeting reminders the day before, overdue actions flagged
    (shared.deliberation_sweeps.deliberation_sweep)."""
    from shared import deliberation_sweeps

    return await _sweep(database, broker, deliberation_sweeps.deliberation_sweep, config, now)


async def activities(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                     now: datetime | None = None) -> int:
    """Config activities synced; lapsed offers, free places, reminders, term summaries (shared.activities)."""
    from shared import activities as service

    return await _sweep(database, broker, service.activity_sweep, config, now)


async def book_shifts(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                      now: datetime | None = None) -> int:
    """Book-house shifts for the next week as book_duty volunteer tasks (shared.book_house.plan_shifts)."""
    from shared import book_house

    return await _sweep(database, broker, book_house.plan_shifts, config, now)


async def book_month(database: Database, broker: dramatiq.Broker, config: CommunitiesConfig,
                     now: datetime | None = None) -> int:
    """The book house's monthly summary to staff (shared.book_house.monthly_summary)."""
    from shared import book_house

    return await _sweep(database, broker, book_house.monthly_summary, config, now)


JobBody = Callable[[Database, dramatiq.Broker, CommunitiesConfig, datetime], Awaitable[int]]

# Every job a RUN_JOB message may name. A job returns the number of notifications it queued.
JOBS: dict[str, JobBody] = {
    "sla_escalation": sla_escalation,
    "followups": followups,
    "referral_chasing": referral_chasing,
    "announcement_reports": announcement_reports,
    "volunteer_tasks": volunteer_tasks,
    "volunteer_recognition": volunteer_recognition,
    "fridge_shifts": fridge_shifts,
    "fridge_expiry": fridge_expiry,
    "fridge_alerts": fridge_alerts,
    "fridge_summary": fridge_summary,
    "book_holds": book_holds,
    "book_wishes": book_wishes,
    "book_swap_days": book_swap_days,
    "mediation": mediation,
    "deliberation": deliberation,
    "activities": activities,
    "book_shifts": book_shifts,
    "book_month": book_month,
}
