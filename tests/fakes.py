"""A recording Bot API session: the real aiogram `Bot` and methods, no network.

Used where a test is about our code, not about HTTP; the playground tests cover
the real HTTP path.
"""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import GetMe, SendMessage, TelegramMethod
from aiogram.types import Chat, Message, Update
from aiogram.types import User as TgUser

BOT_USER = TgUser(id=7000000001, is_bot=True, first_name="Linju", username="linju_bot")


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        with self._lock:
            self.calls.append(method)
            message_id = next(self._ids)
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage):
            return Message(message_id=message_id, date=datetime.now(), text=method.text,
                           chat=Chat(id=int(method.chat_id), type="private" if int(method.chat_id) > 0 else "supergroup"),
                           from_user=BOT_USER)
        return True

    async def stream_content(self, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def close(self) -> None:
        pass

    def sent(self, chat_id: int | str | None = None) -> list[SendMessage]:
        with self._lock:
            calls = list(self.calls)
        return [c for c in calls if isinstance(c, SendMessage) and (chat_id is None or str(c.chat_id) == str(chat_id))]


def recording_bot() -> tuple[Bot, RecordingSession]:
    session = RecordingSession()
    return Bot("42:TEST", session=session), session


class Updates:
    """Builds real `Update` objects the way Telegram sends them."""

    def __init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def message(self, user_id: int, text: str, *, message_id: int | None = None, first_name: str = "王阿姨",
                chat_id: int | None = None, language_code: str = "zh") -> Update:
        entities = None
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        chat_id = chat_id or user_id
        return Update.model_validate({
            "update_id": next(self._update_ids),
            "message": {
                "message_id": message_id or next(self._message_ids),
                "date": int(datetime.now().timestamp()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup", "title": None if chat_id > 0 else "g"},
                "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code},
                "text": text,
                "entities": entities,
            },
        })

    def press(self, user_id: int, data: str, *, message_id: int = 1, chat_id: int | None = None) -> Update:
        chat_id = chat_id or user_id
        return Update.model_validate({
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._update_ids)),
                "from": {"id": user_id, "is_bot": False, "first_name": "王阿姨", "language_code": "zh"},
                "chat_instance": "ci",
                "data": data,
                "message": {
                    "message_id": message_id, "date": int(datetime.now().timestamp()),
                    "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                    "from": BOT_USER.model_dump(), "text": "…",
                },
            },
        })
