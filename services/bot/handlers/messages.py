"""Free text (and photos with a caption) in private chat become requests."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from services.bot.render import send_replies
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_text
from shared.i18n import t

def _key(message: Message) -> str:
    # Telegram message ids are unique per chat: chat + message identifies one message.
    return f"tg:{message.chat.id}:{message.message_id}"


async def text(message: Message, flow: FlowContext) -> None:
    replies = await handle_text(flow, message.text, idempotency_key=_key(message))
    await send_replies(message.bot, message.chat.id, replies)


async def photo(message: Message, flow: FlowContext) -> None:
    attachments = [{"type": "photo", "file_id": message.photo[-1].file_id}]
    replies = await handle_text(flow, message.caption, idempotency_key=_key(message), attachments=attachments)
    await send_replies(message.bot, message.chat.id, replies)


async def location(message: Message, flow: FlowContext) -> None:
    attachments = [{"type": "location", "latitude": message.location.latitude, "longitude": message.location.longitude}]
    replies = await handle_text(flow, message.caption, idempotency_key=_key(message), attachments=attachments)
    await send_replies(message.bot, message.chat.id, replies)


async def anything_else(message: Message, flow: FlowContext) -> None:
    await message.answer(t(flow.locale, "report.unsupported"))


def create_router() -> Router:
    router = Router(name="messages")
    router.message.filter(F.chat.type == "private")
    router.message.register(text, F.text)
    router.message.register(photo, F.photo)
    router.message.register(location, F.location)
    router.message.register(anything_else)
    return router
