"""The playground's aiohttp application: Bot API + people API + the static chat page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from services.playground.botapi import BotApi
from services.playground.people_api import PeopleApi
from services.playground.ratelimit import RateLimiter
from services.playground.state import PlaygroundState
from services.playground.webhook import push_updates

log = logging.getLogger("linju.playground")

STATIC = Path(__file__).parent / "static"
STATE_KEY = web.AppKey("playground_state", PlaygroundState)
BOTAPI_KEY = web.AppKey("playground_botapi", BotApi)
_PUSHER_KEY = web.AppKey("playground_pusher", asyncio.Task)


def create_app(*, rate_limits: bool = False, scale: float = 1.0, bot_id: int = 7000000001,
               bot_username: str = "linju_bot", bot_name: str = "邻聚 Linju",
               token: str | None = None) -> web.Application:
    """One server is one bot.  Any well-formed token is accepted unless ``token`` pins one."""
    state = PlaygroundState(bot_id=bot_id, bot_username=bot_username, bot_name=bot_name)
    api = BotApi(state, limiter=RateLimiter(scale) if rate_limits else None, token=token)
    people = PeopleApi(state, api)

    app = web.Application(client_max_size=50 * 1024 * 1024)
    app[STATE_KEY] = state
    app[BOTAPI_KEY] = api
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    app.router.add_get("/file/bot{token}/{path:.+}", api.download)
    app.router.add_routes(people.routes())
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC, append_version=False)

    async def start_pusher(app: web.Application) -> None:
        app[_PUSHER_KEY] = asyncio.create_task(push_updates(api), name="playground-webhook")

    async def stop_waiters(app: web.Application) -> None:
        # Long polls (getUpdates, messages) return at once, so shutdown is not held up.
        api.closing = True
        state.wake_all()

    async def stop_pusher(app: web.Application) -> None:
        task = app[_PUSHER_KEY]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.on_startup.append(start_pusher)
    app.on_shutdown.append(stop_waiters)
    app.on_cleanup.append(stop_pusher)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def start_playground(host: str, port: int, **kw: Any) -> web.AppRunner:
    """Starts the playground on host:port and returns the runner (``await runner.cleanup()`` stops it)."""
    runner = web.AppRunner(create_app(**kw), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("playground listening url=http://%s:%s/ rate_limits=%s", host, port, kw.get("rate_limits", False))
    return runner
