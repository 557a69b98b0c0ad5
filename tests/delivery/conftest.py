"""Delivery against the playground (Telegram-like limits on) with real PostgreSQL and Redis.

Limits are scaled (`scale`) so runs are short; the playground and our limiter get
the same factor, as in `bench/delivery.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import dramatiq
import pytest
from aiogram import Bot
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO
from sqlalchemy import select

from services.bot import delivery
from shared.db.models import OutboxMessage
from shared.queue.broker import redis_client
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from shared.queue.ratelimit import DeliveryLimits
from shared.repo.outbox import queue_notification
from shared.runtime import Database
from shared.settings import Settings
from tests.conftest import truncate
from tests.guards import bot_guards, unhandled_updates_expected  # noqa: F401 - autouse checks
from tests.playground.conftest import Playground, start  # noqa: F401 - fixture


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    database = Database.connect(Settings(database_url=postgres_url, _env_file=None))
    await truncate(database)
    yield database
    await database.close()


@pytest.fixture
def namespace() -> str:
    return f"linju-delivery-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterable[RedisBroker]:
    broker = RedisBroker(client=redis_client(redis_url), namespace=namespace)
    broker.add_middleware(AsyncIO())
    yield broker
    broker.flush_all()
    broker.close()


def limits(scale: float, namespace: str, **kw: Any) -> DeliveryLimits:
    return DeliveryLimits(_env_file=None, scale=scale, namespace=f"{namespace}:rl", **kw)


async def queue_rows(database: Database, chats: Iterable[int], text: str = "通知：明天上午停水", *,
                     edit_message_id: str | None = None) -> list[int]:
    ids = []
    async with database.sessions() as session:
        for n, chat in enumerate(chats):
            ids.append(await queue_notification(session, key=f"t:{uuid.uuid4().hex}:{n}", chat_id=chat,
                                                text=f"{text} #{n}", edit_message_id=edit_message_id))
        await session.commit()
    return ids


def enqueue(broker: dramatiq.Broker, ids: Iterable[int]) -> None:
    for outbox_id in ids:
        send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))


async def rows(database: Database, ids: list[int]) -> dict[int, OutboxMessage]:
    async with database.sessions() as session:
        found = await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        return {row.id: row for row in found}


async def wait_rows(database: Database, ids: list[int], done: tuple[str, ...] = ("sent", "failed"),
                    timeout: float = 30.0) -> dict[int, OutboxMessage]:
    """Poll the outbox until every row is in a final state (a bound on a hang, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await rows(database, ids)
        if all(found[i].status in done for i in ids):
            return found
        if loop.time() > deadline:
            states: dict[str, int] = {}
            for row in found.values():
                states[row.status] = states.get(row.status, 0) + 1
            raise AssertionError(f"rows not delivered in {timeout} s: {states}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def worker(broker: dramatiq.Broker, settings: Settings, limits: DeliveryLimits, *, bot: Bot | None = None,
                 threads: int = 4) -> AsyncIterator[delivery.Deliverer]:
    deliverer = delivery.register(broker, settings, bot=bot, limits=limits)
    running = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    running.start()
    try:
        yield deliverer
    finally:
        # Close what the deliverer opened on the worker's event loop, then stop the worker.
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            await asyncio.to_thread(loop_thread.run_coroutine, deliverer.close())
        await asyncio.to_thread(running.stop)


async def people(playground: Playground, ids: Iterable[int], **extra: Any) -> None:
    queue = list(ids)

    async def one() -> None:
        while queue:
            user_id = queue.pop()
            await playground.post("/playground/api/users", {"id": user_id, "first_name": f"居民{user_id}", **extra})

    await asyncio.gather(*(one() for _ in range(16)))
