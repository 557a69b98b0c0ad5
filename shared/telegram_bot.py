"""The aiogram `Bot` every process builds the same way from the settings.

With `TELEGRAM_API_BASE` set (the playground, or a self-hosted telegram-bot-api) methods go to
`{base}/bot{token}/{method}` and files come from `{base}/file/bot{token}/{path}`; without it,
to and from api.telegram.org. The bot sends through it; the dashboard fetches residents'
photos through it (`getFile`, then the file URL), so both use the same token and server.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from shared.settings import Settings

# Used only against a local Bot API server (the playground) when no token is configured.
PLAYGROUND_TOKEN = "7000000001:playground-token-not-a-secret"


def bot_token(settings: Settings) -> str:
    return settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else PLAYGROUND_TOKEN


def create_bot(settings: Settings) -> Bot:
    session = None
    if settings.telegram_api_base:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(token=bot_token(settings), session=session)
