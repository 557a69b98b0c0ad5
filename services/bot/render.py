"""The one place where flow replies become Telegram messages."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from shared.flows.reply import Reply


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=b.text, callback_data=b.action) for b in row] for row in reply.buttons]
    )


async def send_reply(bot: Bot, chat_id: int | str, reply: Reply) -> Message:
    return await bot.send_message(chat_id=chat_id, text=reply.text, reply_markup=keyboard(reply))


async def send_replies(bot: Bot, chat_id: int | str, replies: list[Reply]) -> None:
    for reply in replies:
        await send_reply(bot, chat_id, reply)
