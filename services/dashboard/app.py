"""Build the dashboard application and run it (`linju dashboard`, and inside `linju run`)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

import aiohttp_jinja2
import dramatiq
import jinja2
from aiohttp import web
from sqlalchemy import text

from services.dashboard import (
    auth,
    open311,
    ops,
    photos,
    programmes,
    reports_views,
    request_tools,
    requests_views,
    topics_views,
)
from services.dashboard.context import DASHBOARD, Dashboard
from shared.queue.broker import create_broker, redis_answers
from shared.queue.contracts import send_async
from shared.runtime import Database, load_config
from shared.settings import Settings

log = logging.getLogger("linju.dashboard")
HERE = Path(__file__).resolve().parent


async def index(_request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/requests")


def create_app(dash: Dashboard) -> web.Application:
    app = web.Application(middlewares=[auth.security_headers, auth.require_staff], client_max_size=256 * 1024)
    app[DASHBOARD] = dash
    photos.setup(app, dash.settings)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined)
    app.router.add_get("/", index)
    app.router.add_routes(auth.routes() + request_tools.routes() + requests_views.routes() + photos.routes()
                          + programmes.routes() + topics_views.routes() + reports_views.routes() + ops.routes()
                          + open311.routes())
    app.router.add_static("/static/", HERE / "static")
    return app


def build(settings: Settings, database: Database, broker: dramatiq.Broker) -> Dashboard:
    secret = settings.dashboard_secret.get_secret_value() if settings.dashboard_secret else ""
    if not secret:
        # Fine on a laptop; in production set DASHBOARD_SECRET (and the same one on every replica).
        secret = secrets.token_urlsafe(32)
        log.warning("DASHBOARD_SECRET is not set: using a random one, sessions end when this process stops")

    async def enqueue(contract, payload) -> None:  # type: ignore[no-untyped-def]
        await send_async(broker, contract, payload)

    async def ready() -> dict[str, bool]:
        try:
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            db_ok = True
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            db_ok = False
        broker_ok = True
        if type(broker).__name__ == "RedisBroker":
            broker_ok = await asyncio.to_thread(redis_answers, settings.redis_url)
        return {"database": db_ok, "broker": broker_ok}

    return Dashboard(settings=settings, database=database, config=load_config(settings), enqueue=enqueue,
                     secret=secret, ready=ready)


async def start_dashboard(settings: Settings, broker: dramatiq.Broker) -> tuple[web.AppRunner, Database]:
    database = Database.connect(settings, pool_size=5)
    runner = web.AppRunner(create_app(build(settings, database, broker)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.dashboard_host, settings.dashboard_port).start()
    log.info("dashboard started", extra={"host": settings.dashboard_host, "port": settings.dashboard_port})
    return runner, database


async def run_dashboard(settings: Settings, stop: asyncio.Event, *, broker: dramatiq.Broker | None = None) -> None:
    broker = broker or create_broker(settings)
    runner, database = await start_dashboard(settings, broker)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await database.close()
