"""The last line: an update that failed where nothing handled the error still gets an answer."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.types import Chat, ErrorEvent, User

from shared.i18n import normalize_locale, t

log = logging.getLogger("linju.bot")


def _chat_and_person(event: ErrorEvent, data: dict[str, Any]) -> tuple[int | None, User | None]:
    person: User | None = data.get("event_from_user")
    chat: Chat | None = data.get("event_chat")
    update = event.update
    if update.callback_query is not None:
        person = person or update.callback_query.from_user
        return person.id, person  # button presses are answered privately, also for group buttons
    message = update.message or update.edited_message
    if message is not None:
        chat = chat or message.chat
        person = person or message.from_user
    if chat is None or chat.type != "private":
        return None, person  # never post an error into a group
    return chat.id, person


async def answer_unhandled(event: ErrorEvent, bot: Bot, **data: Any) -> bool:
    """Log the failure (its type, never the update's content) and tell the person plainly."""
    # Exception messages may quote what the person wrote (SQL parameters, say): the type only at
    # ERROR, the traceback at DEBUG.
    log.error("update failed", extra={"update_id": event.update.update_id, "error": type(event.exception).__name__})
    log.debug("update failed", exc_info=event.exception)
    chat_id, person = _chat_and_person(event, data)
    if chat_id is None:
        return True
    locale = normalize_locale(person.language_code if person else None)
    try:
        await bot.send_message(chat_id, t(locale, "errors.unavailable"))
    except Exception as exc:  # noqa: BLE001 - nothing more we can do for this update
        log.warning("could not tell the person we are unavailable", extra={"error": type(exc).__name__})
    return True
