"""What every process builds at start-up from the one settings object."""

from __future__ import annotations

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
    def connect(cls, settings: Settings, *, pool_size: int = 5) -> "Database":
        engine = create_engine(settings.database_url, pool_size=pool_size)
        return cls(engine=engine, sessions=create_session_factory(engine))

    async def close(self) -> None:
        await self.engine.dispose()


def load_config(settings: Settings) -> CommunitiesConfig:
    return load_communities(settings.communities_file)
