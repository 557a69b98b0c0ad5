"""The one place where flow replies become Telegram messages."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
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


async def edit_reply(bot: Bot, chat_id: int | str, message_id: int | str, reply: Reply) -> None:
    try:
        await bot.edit_message_text(chat_id=chat_id, message_id=int(message_id), text=reply.text,
                                    reply_markup=keyboard(reply))
    except TelegramBadRequest as exc:
        if "not modified" not in exc.message:
            raise
