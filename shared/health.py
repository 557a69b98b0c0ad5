"""`/healthz` (alive) and `/readyz` (database and broker answer) for any long-running process.

Started on HEALTH_PORT (0 = off) by `linju bot|scheduler|intake|deliver`; the dashboard serves the
same two paths on its own port. Worker processes run it in a thread with its own event loop,
because dramatiq's workers are threads, not an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web
from sqlalchemy import text

from shared.queue.broker import redis_answers
from shared.runtime import Database
from shared.settings import Settings

log = logging.getLogger("linju.health")


async def checks(settings: Settings, database: Database) -> dict[str, bool]:
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        db_ok = True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        db_ok = False
    broker_ok = True
    if settings.broker == "redis" or (settings.broker == "auto" and settings.redis_url):
        broker_ok = await asyncio.to_thread(redis_answers, settings.redis_url)
    return {"database": db_ok, "broker": broker_ok}


def health_app(settings: Settings, database: Database) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_request: web.Request) -> web.Response:
        result = await checks(settings, database)
        return web.json_response({"ok": all(result.values()), **result}, status=200 if all(result.values()) else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start(settings: Settings, host: str = "0.0.0.0") -> tuple[web.AppRunner, Database] | None:
    """Serve the two paths on HEALTH_PORT in the running loop; None when the port is 0."""
    if not settings.health_port:
        return None
    database = Database.connect(settings, pool_size=2)
    runner = web.AppRunner(health_app(settings, database), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, settings.health_port).start()
    log.info("health endpoints started", extra={"port": settings.health_port})
    return runner, database


async def stop(started: tuple[web.AppRunner, Database] | None) -> None:
    if started is not None:
        await started[0].cleanup()
        await started[1].close()


def start_in_thread(settings: Settings) -> None:
    """For worker processes: serve the health endpoints from a daemon thread."""
    if not settings.health_port:
        return
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start(settings))
        loop.run_forever()

    threading.Thread(target=run, name="health", daemon=True).start()
