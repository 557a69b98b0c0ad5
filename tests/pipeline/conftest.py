"""A whole pipeline in the test process: dispatcher → broker → intake worker → delivery worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import dramatiq
import pytest
from aiogram import Dispatcher
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from services.bot import delivery
from services.bot.app import create_claim_lane, create_dispatcher
from services.intake import worker as intake_worker
from services.scheduler import worker as jobs_worker
from shared.queue.broker import redis_client
from shared.runtime import Database
from shared.settings import Settings
from tests.fakes import RecordingSession, Updates, recording_bot
from tests.guards import bot_guards, unhandled_updates_expected  # noqa: F401 - autouse checks
from tests.pipeline_drain import drain


@pytest.fixture(params=["stub", "redis"])
def broker(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
    else:
        from dramatiq.brokers.redis import RedisBroker

        url = request.getfixturevalue("redis_url")
        broker = RedisBroker(client=redis_client(url), namespace=f"linju-test-{uuid.uuid4().hex[:8]}")
    broker.add_middleware(AsyncIO())
    yield broker
    broker.flush_all()
    broker.close()


@dataclass
class Pipeline:
    dispatcher: Dispatcher
    bot: object
    telegram: RecordingSession
    broker: dramatiq.Broker
    worker: dramatiq.Worker
    updates: Updates
    settings: Settings
    intake: intake_worker.Intake
    db: Database

    async def feed(self, update) -> None:  # type: ignore[no-untyped-def]
        await self.dispatcher.feed_update(self.bot, update)

    async def drain(self, timeout: float = 20.0) -> None:
        """Wait until every queued message is processed and nothing is left to deliver or classify."""
        await drain(self.broker, self.worker, self.db, timeout=timeout)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("timed out waiting for the pipeline")
            await asyncio.sleep(0.02)


@pytest.fixture
async def pipeline(db, database_url, broker, config) -> AsyncIterator[Pipeline]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, redis_url=None, broker="stub", _env_file=None)
    bot, telegram = recording_bot()
    intake = intake_worker.register(broker, settings, config=config)
    jobs_worker.register(broker, settings, config=config)   # as `linju intake` and `linju run` do
    deliverer = delivery.register(broker, settings, bot=bot)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    claim_lane = create_claim_lane(settings)  # on PostgreSQL, as the bot runs (None on SQLite)
    dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=broker, claim_lane=claim_lane)
    yield Pipeline(dispatcher, bot, telegram, broker, worker, Updates(), settings, intake, db)
    if claim_lane is not None:
        await claim_lane.close()
    worker.stop()
    # Resources bound to the worker's (now stopped) loop are dropped with it.
    del deliverer
