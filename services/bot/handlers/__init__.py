"""Telegram routers; each is thin and calls the channel-neutral flows."""

from aiogram import Router

from services.bot.handlers import callbacks, commands, messages


def create_root_router() -> Router:
    root = Router(name="linju")
    root.include_routers(commands.create_router(), callbacks.create_router(), messages.create_router())
    return root
