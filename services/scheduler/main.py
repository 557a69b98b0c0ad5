"""`linju scheduler`: a small asyncio loop that enqueues the periodic jobs.

The scheduler does no job's work itself: on each tick it sends one RUN_JOB message per due
job, carrying the job's name and the tick's `now`, and a worker runs it (services.scheduler.worker,
in `linju intake`). So a slow sweep never delays the clock, and jobs spread over the workers.
Jobs are idempotent and safe to run concurrently, so a missed, repeated or retried message is
harmless. The two re-enqueue jobs only read and enqueue; they stay here (see services.scheduler.jobs).

Why a plain asyncio loop and not APScheduler: the jobs are few, idempotent and only enqueue
work, so missing or repeating a tick is harmless; a loop of `asyncio.sleep` has no job store to
configure or migrate and costs nothing at idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import dramatiq

from services.scheduler import jobs
from shared.clock import utcnow
from shared.queue.broker import create_broker
from shared.queue.contracts import RUN_JOB, RunJob, send_async
from shared.runtime import Database
from shared.settings import Settings

log = logging.getLogger("linju.scheduler")

Clock = Callable[[], datetime]

# How often each job of services.scheduler.jobs.JOBS is enqueued, in seconds.
SCHEDULE: dict[str, float] = {
    "sla_escalation": 60,
    "followups": 300,
    "referral_chasing": 600,
    "announcement_reports": 30,
    "volunteer_tasks": 60,
    "volunteer_recognition": 3600,
    "fridge_shifts": 3600,
    "fridge_expiry": 300,
    "fridge_alerts": 120,
    "fridge_summary": 600,
    "book_holds": 300,
    "book_wishes": 60,
    "book_swap_days": 3600,
    "mediation": 300,
    "deliberation": 60,
    "activities": 120,
    "book_shifts": 3600,
    "book_month": 3600,
}


@dataclass
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[int]]
    due: float = 0.0


async def enqueue_job(broker: dramatiq.Broker, name: str, now: datetime) -> int:
    """Send one RUN_JOB message for `name` at `now` (off the event loop: dramatiq's send blocks)."""
    await send_async(broker, RUN_JOB, RunJob(name=name, now=now))
    return 1


def default_jobs(settings: Settings, database: Database, broker: dramatiq.Broker, *,
                 clock: Clock = utcnow) -> list[Job]:
    stuck = settings.stuck_request_seconds

    def enqueuer(name: str) -> Callable[[], Awaitable[int]]:
        return lambda: enqueue_job(broker, name, clock())

    return [
        *(Job(name, every, enqueuer(name)) for name, every in SCHEDULE.items()),
        Job("requeue_stuck_requests", settings.scheduler_tick_seconds,
            lambda: jobs.requeue_stuck_requests(database, broker, older_than_seconds=stuck)),
        Job("requeue_stale_notifications", settings.scheduler_tick_seconds,
            lambda: jobs.requeue_stale_notifications(database, broker, older_than_seconds=stuck)),
    ]


async def tick(job_list: list[Job], now: float) -> list[str]:
    """Start every job due at loop time `now`; returns the names started."""
    started = []
    for job in job_list:
        if now >= job.due:
            job.due = now + job.every_seconds
            started.append(job.name)
            try:
                await job.run()
            except Exception:  # noqa: BLE001 - one failing job must not stop the others
                log.exception("job failed", extra={"job": job.name})
    return started


async def run_jobs(job_list: list[Job], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        await tick(job_list, loop.time())
        next_due = min(job.due for job in job_list) - loop.time()
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(next_due, 0.05))
        except TimeoutError:
            pass


async def run_scheduler(settings: Settings, stop: asyncio.Event, *, broker: dramatiq.Broker | None = None,
                        clock: Clock = utcnow) -> None:
    broker = broker or create_broker(settings)
    database = Database.connect(settings, pool_size=4)
    log.info("scheduler started", extra={"tick_seconds": settings.scheduler_tick_seconds})
    try:
        await run_jobs(default_jobs(settings, database, broker, clock=clock), stop)
    finally:
        await database.close()
