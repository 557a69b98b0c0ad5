"""Inline button presses: the callback data is an action string, checked by the flow."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from services.bot.render import edit_reply, send_replies
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_action
from shared.flows.reply import Reply

async def on_button(query: CallbackQuery, flow: FlowContext) -> None:
    await answer_press(query, await handle_action(flow, query.data))


async def answer_press(query: CallbackQuery, replies: list[Reply]) -> None:
    """Acknowledge the press, then show the replies: in place of the pressed message when the first
    reply says so, else as new messages, always in the person's private chat."""
    await query.answer()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    if query.message is not None and query.message.chat.type != "private":
        chat_id = query.from_user.id  # resident flows answer privately, never in a group
    if replies and replies[0].replace and query.message is not None and query.message.chat.id == chat_id:
        await edit_reply(query.bot, chat_id, query.message.message_id, replies[0])
        replies = replies[1:]
    await send_replies(query.bot, chat_id, replies)


def create_router() -> Router:
    router = Router(name="callbacks")
    router.callback_query.register(on_button)
    return router
