"""Keep the `communities` table in step with the YAML config."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import CommunitiesConfig
from shared.db.models import Community
from shared.db.upsert import insert_for


async def sync_communities(session: AsyncSession, config: CommunitiesConfig) -> None:
    for community in config.communities:
        stmt = insert_for(session, Community).values(
            code=community.code, name_zh=community.name["zh"], name_en=community.name.get("en", community.name["zh"])
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["code"], set_={"name_zh": stmt.excluded.name_zh, "name_en": stmt.excluded.name_en}
        )
        await session.execute(stmt)
