"""Factories for the bot: `create_bot`, `create_dispatcher`. One readable place."""

from __future__ import annotations

import dramatiq
from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.bot.handlers import create_root_router
from services.bot.handlers.errors import answer_unhandled
from services.bot.isolation import PersonIsolation
from services.bot.middlewares import ClaimLaneMiddleware, FlowContextMiddleware
from services.bot.storage import DegradingStorage
from shared.claim_lane import ClaimLane, asyncpg_dsn
from shared.config import CommunitiesConfig
from shared.queue.contracts import send_async
from shared.settings import Settings


def create_claim_lane(settings: Settings) -> ClaimLane | None:
    """The claim lane on PostgreSQL (it reads through the raw driver); None on SQLite."""
    dsn = asyncpg_dsn(settings.database_url)
    return ClaimLane(dsn) if dsn else None


def create_storage(settings: Settings) -> BaseStorage:
    """Redis FSM storage when Redis answers, so conversations survive a bot restart.

    Wrapped in `DegradingStorage`: should Redis go away later, updates are still handled
    (without conversation state) instead of being dropped before our code runs."""
    from shared.queue.broker import redis_answers

    if settings.redis_url and redis_answers(settings.redis_url):
        from aiogram.fsm.storage.redis import RedisStorage

        return DegradingStorage(RedisStorage.from_url(settings.redis_url, state_ttl=30 * 86400, data_ttl=30 * 86400))
    return MemoryStorage()


def create_dispatcher(
    *,
    config: CommunitiesConfig,
    sessions: async_sessionmaker[AsyncSession],
    broker: dramatiq.Broker,
    storage: BaseStorage | None = None,
    max_requests_per_hour: int = 10,
    claim_lane: ClaimLane | None = None,
) -> Dispatcher:
    # One update at a time per person: a burst is handled in order (flood control, conversation state).
    dispatcher = Dispatcher(storage=storage or MemoryStorage(), events_isolation=PersonIsolation())

    async def enqueue(contract, payload) -> None:  # type: ignore[no-untyped-def]
        await send_async(broker, contract, payload)

    middleware = FlowContextMiddleware(sessions, config, enqueue, max_requests_per_hour)
    dispatcher.message.outer_middleware(middleware)
    if claim_lane is not None:
        dispatcher.callback_query.outer_middleware(ClaimLaneMiddleware(claim_lane))  # before the session
    dispatcher.callback_query.outer_middleware(middleware)
    dispatcher.include_router(create_root_router())
    # Last line: whatever nothing else handled still gets a plain answer, never silence.
    dispatcher.errors.register(answer_unhandled)
    return dispatcher
