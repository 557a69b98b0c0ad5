"""`linju bot`: the Telegram bot in polling or webhook mode."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot, Dispatcher
from aiogram.types import BotCommand
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from services.bot.app import create_claim_lane, create_dispatcher, create_storage
from services.bot.polling import poll
from shared.i18n import t
from shared.queue.broker import create_broker
from shared.runtime import Database, load_config
from shared.settings import Settings
from shared.telegram_bot import create_bot

log = logging.getLogger("linju.bot")


async def set_commands(bot: Bot) -> None:
    for locale in ("zh", "en"):
        commands = [
            BotCommand(command="start", description=t(locale, "menu.report")),
            BotCommand(command="menu", description=t(locale, "menu.my_requests")),
            BotCommand(command="help", description=t(locale, "menu.help")),
        ]
        await bot.set_my_commands(commands, language_code=None if locale == "zh" else locale)


WEBHOOK_PATH = "/telegram/webhook"


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_webhook_app(bot: Bot, dispatcher: Dispatcher, secret: str) -> web.Application:
    """aiohttp app receiving Telegram updates; requests without the secret token get 401."""
    app = web.Application()
    # Answer Telegram only once the update is handled: if the bot dies first, Telegram sends it again.
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret,
                         handle_in_background=False).register(app, path=WEBHOOK_PATH)
    app.router.add_get("/healthz", _healthz)
    setup_application(app, dispatcher, bot=bot)
    return app


async def run_webhook(bot: Bot, dispatcher: Dispatcher, settings: Settings, stop: asyncio.Event) -> None:
    if not settings.webhook_url or not settings.webhook_secret:
        raise RuntimeError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
    secret = settings.webhook_secret.get_secret_value()
    app = create_webhook_app(bot, dispatcher, secret)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    await bot.set_webhook(settings.webhook_url.rstrip("/") + WEBHOOK_PATH, secret_token=secret,
                          allowed_updates=dispatcher.resolve_used_update_types())
    log.info("bot: webhook mode", extra={"port": settings.webhook_port})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def run_bot(settings: Settings, stop: asyncio.Event, *, broker=None) -> None:  # type: ignore[no-untyped-def]
    """Run until `stop` is set. `broker` is passed in by `linju run` (shared in-process broker)."""
    config = load_config(settings)
    database = Database.connect(settings)
    broker = broker or create_broker(settings)
    bot = create_bot(settings)
    claim_lane = create_claim_lane(settings)
    dispatcher = create_dispatcher(config=config, sessions=database.sessions, broker=broker,
                                   storage=create_storage(settings),
                                   max_requests_per_hour=settings.max_requests_per_hour, claim_lane=claim_lane)
    try:
        await set_commands(bot)
        if settings.webhook_enabled:
            await run_webhook(bot, dispatcher, settings, stop)
        else:
            await bot.delete_webhook(drop_pending_updates=False)
            log.info("bot: polling mode")
            await poll(bot, dispatcher, stop, allowed_updates=dispatcher.resolve_used_update_types())
    finally:
        await dispatcher.storage.close()
        await bot.session.close()
        if claim_lane is not None:
            await claim_lane.close()
        await database.close()
