"""/healthz and /readyz of the long-running services: ready only when the database answers."""

from __future__ import annotations

import socket

import aiohttp

from shared import health
from shared.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _get(port: int, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.json()


async def test_ready_when_the_database_answers(sqlite_url):
    port = _free_port()
    settings = Settings(database_url=sqlite_url, broker="stub", redis_url=None, health_port=port, _env_file=None)
    started = await health.start(settings, host="127.0.0.1")
    try:
        assert await _get(port, "/healthz") == (200, {"ok": True})
        assert await _get(port, "/readyz") == (200, {"ok": True, "database": True, "broker": True})
    finally:
        await health.stop(started)


async def test_not_ready_without_a_database():
    port, dead = _free_port(), _free_port()
    settings = Settings(database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{dead}/none", broker="stub",
                        redis_url=None, health_port=port, _env_file=None)
    started = await health.start(settings, host="127.0.0.1")
    try:
        assert (await _get(port, "/healthz"))[0] == 200
        status, body = await _get(port, "/readyz")
        assert status == 503 and body["database"] is False
    finally:
        await health.stop(started)


async def test_off_by_default():
    assert await health.start(Settings(_env_file=None)) is None
