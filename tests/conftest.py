"""Fixtures for real backends: SQLite and PostgreSQL; the in-process and Redis brokers.

Under CI=true a missing PostgreSQL or Redis FAILS the tests that need it;
elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.config import load_communities
from shared.db.migrate import upgrade
from shared.db.models import Base
from shared.runtime import Database
from shared.settings import REPO_ROOT, Settings

CI = os.environ.get("CI", "").lower() == "true"
PG_HOST, PG_PORT = os.environ.get("TEST_PG_HOST", "127.0.0.1"), int(os.environ.get("TEST_PG_PORT", "5432"))
# Under pytest-xdist each worker (gw0, gw1, …) has Redis databases of its own: the fixtures flush them.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_URL = os.environ.get("TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{(15, 12, 11, 10)[WORKER % 4]}"
# Every table of the models, children before parents (so a row-by-row DELETE on SQLite works too).
TABLES = tuple(table.name for table in reversed(Base.metadata.sorted_tables))


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, available: bool) -> None:
    if available:
        return
    message = f"{service} is not answering"
    if CI:
        pytest.fail(f"{message}; under CI=true this is a failure, not a skip")
    pytest.skip(message)


@pytest.fixture(scope="session")
def config():
    return load_communities(REPO_ROOT / "config" / "communities.yaml")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'linju.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    need("PostgreSQL at 127.0.0.1:5432", _port_open(PG_HOST, PG_PORT))
    import asyncpg

    name = f"linju_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


async def truncate(database: Database) -> None:
    async with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def db(database_url: str, config) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    from shared.repo.communities import sync_communities

    database = Database.connect(Settings(database_url=database_url))
    await truncate(database)
    async with database.sessions() as session:
        await sync_communities(session, config)
        await session.commit()
    yield database
    await database.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, redis_url=None, broker="stub", _env_file=None)


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        available = bool(client.ping())
    except redis.RedisError:
        available = False
    need("Redis at 127.0.0.1:6379", available)
    client.flushdb()
    client.close()
    return REDIS_URL


# Pipeline tests run through a broker (in-process or Redis) and a database (SQLite or PostgreSQL).
# The core request path runs the whole 2 × 2 matrix; feature flows run the two diagonal pairs —
# SQLite with the in-process broker, PostgreSQL with Redis — which still cover both databases and
# both brokers, so the suite stays within its time budget as features grow.
FULL_MATRIX = {"test_resident_request.py", "test_low_confidence.py", "test_storage_outage.py", "test_scheduler_jobs.py"}
OFF_DIAGONAL = {("sqlite", "redis"), ("postgres", "stub")}
# A test that pins its own pair (`pytest.mark.parametrize("database_url", [...], indirect=True)`, as the
# hostile-input properties do) keeps it: it chose one pair on purpose.
# Tests that measure time windows against real processes (rate limits, kill -9, restarts) run on
# their own after the parallel run (`make test`), so other tests' load does not skew them.
SERIAL_DIRS = {"faults", "delivery"}


def _pins_backends(item: pytest.Item) -> bool:
    """The test itself parametrizes the database or the broker (rather than taking the fixtures' matrix)."""
    return any({"database_url", "broker"} & set(_argnames(marker.args[0]))
               for marker in item.iter_markers("parametrize") if marker.args)


def _argnames(names: str | list[str] | tuple[str, ...]) -> list[str]:
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        if item.path.parent.name in SERIAL_DIRS:
            item.add_marker(pytest.mark.serial)
        params = getattr(getattr(item, "callspec", None), "params", {})
        combo = (params.get("database_url"), params.get("broker"))
        if (item.path.parent.name == "pipeline" and item.path.name not in FULL_MATRIX and combo in OFF_DIAGONAL
                and not _pins_backends(item)):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
