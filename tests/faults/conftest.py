"""Fixtures for fault tests: a fresh PostgreSQL database per module, a Redis database of our own,
and a `Stack` that starts real `linju` processes and always stops them.

Under CI=true a missing PostgreSQL or Redis fails these tests (tests/conftest.py `need`).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import WORKER, PG_HOST, PG_PORT, _port_open, need
from tests.faults.harness import Stack

# The fault tests' own Redis database (the rest of the suite uses 15); flushed per module.
FAULTS_REDIS_URL = os.environ.get("FAULTS_REDIS_URL") or f"redis://127.0.0.1:6379/{(14, 13, 9, 8)[WORKER % 4]}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault tests with real processes (run by `make test`)")


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database for this module (dropped afterwards)."""
    need(f"PostgreSQL at {PG_HOST}:{PG_PORT}", _port_open(PG_HOST, PG_PORT))
    from shared.db.migrate import upgrade

    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:20]
    name = f"linju_faults_{module}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _redis_client(url: str):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[str]:
    """Database 14 of the shared Redis, flushed before and after the module."""
    import redis

    client = _redis_client(FAULTS_REDIS_URL)
    try:
        available = bool(client.ping())
    except redis.RedisError:
        available = False
    need("Redis at 127.0.0.1:6379", available)
    client.flushdb()
    try:
        yield FAULTS_REDIS_URL
    finally:
        try:
            client.flushdb()
        except redis.RedisError:
            pass
        client.close()


def build_stack(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str) -> Stack:
    stack = Stack(tmp_path_factory.mktemp("faults"), database_url, redis_url)
    stack.run("demo")
    return stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_database: str, shared_redis: str) -> Iterator[Stack]:
    stack = build_stack(tmp_path_factory, postgres_database, shared_redis)
    try:
        yield stack
    finally:
        stack.close()
