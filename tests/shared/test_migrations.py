"""Migrations are the only way the schema is made: they go up, down and up again, and what they make
is what the models describe (tables, columns, types, nullability, indexes, constraints)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrate import downgrade, upgrade
from shared.db.models import Base


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def _drift(url: str) -> list:
    """What alembic's autogenerate would change to make the migrated database match the models."""
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))
    await engine.dispose()
    return diff


async def test_up_down_up_on_sqlite(tmp_path):
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(upgrade, url)
    assert await _tables(url) == set(Base.metadata.tables)
    await asyncio.to_thread(downgrade, url, "base")
    assert await _tables(url) == set()
    await asyncio.to_thread(upgrade, url)
    assert await _tables(url) == set(Base.metadata.tables)
    assert await _drift(url) == []


async def test_postgres_schema_matches_the_models(postgres_url):
    assert await _tables(postgres_url) == set(Base.metadata.tables)
    assert await _drift(postgres_url) == []
