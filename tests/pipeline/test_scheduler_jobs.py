"""The scheduler only enqueues: a tick puts one `jobs` message per due job (name + the tick's `now`)
on the queue, and a worker runs it — with the in-process broker (as `linju run`) and with Redis."""

from __future__ import annotations

import asyncio
from datetime import date, time

import dramatiq
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import String, cast, literal, func, select

from services.scheduler import worker as jobs_worker
from services.scheduler.main import SCHEDULE, default_jobs, tick
from shared.db.models import Task, FridgeShift, OutboxMessage
from shared.domain import fridge as fridge_rules
from shared.queue.contracts import RUN_JOB
from shared.settings import Settings
from tests.pipeline.test_volunteers import HELPER, VOLUNTEER_CHAT_ZJY, approved_volunteer

# Noon in Zhangjiayuan: the fridge's morning shift is over, so a week of shifts from the evening one.
NOW = fridge_rules.at_local(date(2026, 12, 1), time(12, 0), "Asia/Shanghai")


def queued(broker: dramatiq.Broker, queue: str) -> list[Message]:
    """Messages waiting on `queue` (not yet taken by a worker)."""
    if isinstance(broker, StubBroker):
        return [Message.decode(data) for data in list(broker.queues[queue].queue)]
    return [Message.decode(data) for data in broker.client.hvals(f"{broker.namespace}:{queue}.msgs")]


async def shifts(db) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(FridgeShift)))


async def test_a_tick_only_enqueues_and_a_worker_runs_each_job(broker, db, database_url, config):
    await approved_volunteer(db, HELPER, "zjy", skills=("fridge_duty",))
    settings = Settings(database_url=database_url, redis_url=None, broker="stub", _env_file=None)
    job_list = default_jobs(settings, db, broker, clock=lambda: NOW)

    started = await tick(job_list, 0.0)
    assert set(SCHEDULE) <= set(started)
    assert await tick(job_list, 1.0) == []            # nothing is due again a second later
    messages = queued(broker, RUN_JOB.queue_name)
    assert sorted(m.kwargs["name"] for m in messages) == sorted(SCHEDULE)
    assert {m.actor_name for m in messages} == {RUN_JOB.actor_name}
    assert {RUN_JOB.parse(m.kwargs).now for m in messages} == {NOW}
    assert await shifts(db) == 0                      # the scheduler did none of the work itself

    jobs_worker.register(broker, settings, config=config)
    worker = dramatiq.Worker(broker, queues={RUN_JOB.queue_name}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        await asyncio.to_thread(broker.join, RUN_JOB.queue_name, timeout=60_000)
        await asyncio.to_thread(worker.join)
    finally:
        worker.stop()
    assert queued(broker, RUN_JOB.queue_name) == []
    assert await shifts(db) == 13                     # a week of shifts, planned for NOW
    async with db.sessions() as session:
        fridge_offers = await session.scalar(
            select(func.count()).select_from(OutboxMessage).join(Task, OutboxMessage.batch == literal("offer:") + cast(Task.id, String))
            .where(Task.skill == "fridge_duty"))
        everything = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert fridge_offers == 26                         # the volunteer group and the volunteer, per fridge shift
    # Everything the jobs queued (book-house shifts too) was handed to delivery after the job committed.
    assert len(queued(broker, "delivery")) == everything > 26


async def test_scheduler_to_telegram_in_one_process(pipeline, db, config):
    """As `linju run`: the same broker carries the job and its deliveries; the volunteer gets the offers."""
    p = pipeline
    await approved_volunteer(db, HELPER, "zjy", skills=("fridge_duty",))
    job_list = [job for job in default_jobs(p.settings, db, p.broker, clock=lambda: NOW) if job.name == "fridge_shifts"]
    assert await tick(job_list, 0.0) == ["fridge_shifts"]
    await p.drain()
    offers = [m for m in p.telegram.sent(HELPER) if "tk:claim:" in str(m.reply_markup)]
    assert len(offers) == 13 and len([m for m in p.telegram.sent(VOLUNTEER_CHAT_ZJY)
                                      if "tk:claim:" in str(m.reply_markup)]) == 13
    # Another tick for the same moment (a repeated or retried message) sends nothing new.
    job_list[0].due = 0.0
    await tick(job_list, 0.0)
    await p.drain()
    assert len([m for m in p.telegram.sent(HELPER) if "tk:claim:" in str(m.reply_markup)]) == 13
