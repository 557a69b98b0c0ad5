"""Slash commands in private chat."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from services.bot.render import send_replies
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_command

router = Router(name="commands")
router.message.filter(F.chat.type == "private")


@router.message(CommandStart())
async def start(message: Message, flow: FlowContext) -> None:
    await send_replies(message.bot, message.chat.id, await handle_command(flow, "start"))


@router.message(Command("menu", "help"))
async def menu(message: Message, flow: FlowContext, command: CommandObject) -> None:
    await send_replies(message.bot, message.chat.id, await handle_command(flow, command.command))
