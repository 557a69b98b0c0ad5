"""The alternative broker: the same request pipeline over dramatiq's own RabbitMQ broker."""

from __future__ import annotations

import socket

import dramatiq
import pytest
from dramatiq.middleware.asyncio import AsyncIO
from sqlalchemy import select

from services.bot import delivery
from services.bot.app import create_dispatcher
from services.intake import worker as intake_worker
from shared.db.models import Request
from shared.queue.broker import create_broker
from shared.settings import Settings
from tests.conftest import need
from tests.fakes import Updates, recording_bot
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_resident_request import RESIDENT, onboard


def _rabbit_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbit_broker():
    need("RabbitMQ at 127.0.0.1:5672", _rabbit_answers())
    broker = create_broker(Settings(broker="rabbitmq", _env_file=None))
    assert type(broker).__name__ == "RabbitmqBroker"
    assert any(isinstance(m, AsyncIO) for m in broker.middleware)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_request_pipeline_over_rabbitmq(db, database_url, rabbit_broker, config):
    settings = Settings(database_url=database_url, _env_file=None)
    bot, telegram = recording_bot()
    intake = intake_worker.register(rabbit_broker, settings, config=config)
    delivery.register(rabbit_broker, settings, bot=bot)
    for queue in ("intake", "delivery"):
        rabbit_broker.declare_queue(queue)
    rabbit_broker.flush_all()
    worker = dramatiq.Worker(rabbit_broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=rabbit_broker)
        p = Pipeline(dispatcher, bot, telegram, rabbit_broker, worker, Updates(), settings, intake, db)
        await onboard(p)
        before = len(telegram.sent(RESIDENT))
        await p.feed(p.updates.message(RESIDENT, "楼道的灯坏了好几天了"))
        await p.wait_for(lambda: len(telegram.sent(RESIDENT)) >= before + 2, timeout=20)
        async with db.sessions() as session:
            request = (await session.scalars(select(Request))).one()
        assert request.status == "routed" and "已转交" in telegram.sent(RESIDENT)[before + 1].text
    finally:
        worker.stop()
