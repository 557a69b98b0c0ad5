"""What every process builds at start-up from the one settings object."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config import CommunitiesConfig, load_communities
from shared.db.session import create_engine, create_session_factory
from shared.settings import Settings


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, settings: Settings, *, pool_size: int = 10) -> "Database":
        engine = create_engine(settings.database_url, pool_size=pool_size)
        return cls(engine=engine, sessions=create_session_factory(engine))

    async def close(self) -> None:
        await self.engine.dispose()


def use_uvloop() -> None:
    """Every loop this process creates from now on (asyncio.run, dramatiq's AsyncIO thread) is a
    uvloop loop: the same code, with the event loop's own work (sockets, callbacks) in C, which
    is a large part of what each database and Redis round trip costs (docs/performance.md)."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def load_config(settings: Settings) -> CommunitiesConfig:
    return load_communities(settings.communities_file)
