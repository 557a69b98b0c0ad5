"""Slash commands in private chat."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from services.bot.render import send_replies
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_command

async def start(message: Message, flow: FlowContext, command: CommandObject) -> None:
    await send_replies(message.bot, message.chat.id, await handle_command(flow, "start", command.args))


async def menu(message: Message, flow: FlowContext, command: CommandObject) -> None:
    replies = await handle_command(flow, command.command, command.args)
    await send_replies(message.bot, message.chat.id, replies)


def create_router() -> Router:
    router = Router(name="commands")
    router.message.filter(F.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(menu, Command("menu", "help", "cancel", "queue", "mine", "request", "requests", "merge", "announce", "stats",
                                           "volunteer", "mytasks", "hours", "task", "mydata", "forgetme",
                                           "fridge", "books", "points", "bookstock", "cases", "join", "topics",
                                           "activities", "seedlings", "link"))
    return router
