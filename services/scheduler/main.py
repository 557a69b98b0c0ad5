"""`linju scheduler`: a small asyncio loop that runs periodic jobs.

Why a plain asyncio loop and not APScheduler: the jobs are few, idempotent and
only enqueue work, so missing or repeating a tick is harmless; a loop of
`asyncio.sleep` has no job store to configure or migrate and costs nothing at idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dramatiq

from services.scheduler import jobs
from shared.queue.broker import create_broker
from shared.runtime import Database, load_config
from shared.settings import Settings

log = logging.getLogger("linju.scheduler")


@dataclass
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[int]]
    due: float = 0.0


def default_jobs(settings: Settings, database: Database, broker: dramatiq.Broker) -> list[Job]:
    stuck = settings.stuck_request_seconds
    config = load_config(settings)
    return [
        Job("sla_escalation", 60, lambda: jobs.sla_escalation(database, broker, config)),
        Job("followups", 300, lambda: jobs.followups(database, broker, config)),
        Job("referral_chasing", 600, lambda: jobs.referral_chasing(database, broker, config)),
        Job("announcement_reports", 30, lambda: jobs.announcement_reports(database, broker, config)),
        Job("volunteer_tasks", 60, lambda: jobs.volunteer_tasks(database, broker, config)),
        Job("volunteer_recognition", 3600, lambda: jobs.volunteer_recognition(database, broker, config)),
        Job("fridge_shifts", 3600, lambda: jobs.fridge_shifts(database, broker, config)),
        Job("fridge_expiry", 300, lambda: jobs.fridge_expiry(database, broker, config)),
        Job("fridge_alerts", 120, lambda: jobs.fridge_alerts(database, broker, config)),
        Job("fridge_summary", 600, lambda: jobs.fridge_summary(database, broker, config)),
        Job("book_holds", 300, lambda: jobs.book_holds(database, broker, config)),
        Job("book_wishes", 60, lambda: jobs.book_wishes(database, broker, config)),
        Job("book_swap_days", 3600, lambda: jobs.book_swap_days(database, broker, config)),
        Job("book_shifts", 3600, lambda: jobs.book_shifts(database, broker, config)),
        Job("book_month", 3600, lambda: jobs.book_month(database, broker, config)),
        Job("requeue_stuck_requests", settings.scheduler_tick_seconds,
            lambda: jobs.requeue_stuck_requests(database, broker, older_than_seconds=stuck)),
        Job("requeue_stale_notifications", settings.scheduler_tick_seconds,
            lambda: jobs.requeue_stale_notifications(database, broker, older_than_seconds=stuck)),
    ]


async def run_jobs(job_list: list[Job], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        now = loop.time()
        for job in job_list:
            if now >= job.due:
                job.due = now + job.every_seconds
                try:
                    await job.run()
                except Exception:  # noqa: BLE001 - one failing job must not stop the others
                    log.exception("job failed", extra={"job": job.name})
        next_due = min(job.due for job in job_list) - loop.time()
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(next_due, 0.05))
        except TimeoutError:
            pass


async def run_scheduler(settings: Settings, stop: asyncio.Event, *, broker: dramatiq.Broker | None = None) -> None:
    broker = broker or create_broker(settings)
    database = Database.connect(settings, pool_size=2)
    log.info("scheduler started", extra={"tick_seconds": settings.scheduler_tick_seconds})
    try:
        await run_jobs(default_jobs(settings, database, broker), stop)
    finally:
        await database.close()
