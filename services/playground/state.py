"""In-memory state of the playground: one bot, its people, chats, messages, updates and files."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

UPDATE_TYPES_BY_DEFAULT_EXCLUDED = {"chat_member", "message_reaction", "message_reaction_count"}


class Notifier:
    """Wakes every waiter when something changes.

    Plain futures plus call_later rather than asyncio.wait_for, whose Python 3.11
    version can swallow a cancellation that races with the wake-up.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float) -> None:
        if timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_later(timeout, lambda: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)


@dataclass
class User:
    id: int
    first_name: str
    language_code: str = "zh"
    last_name: str | None = None
    username: str | None = None
    blocked: bool = False  # the user "blocked the bot": sends to them answer 403

    def api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    def people(self) -> dict[str, Any]:
        return {"id": self.id, "first_name": self.first_name, "language_code": self.language_code,
                "last_name": self.last_name, "username": self.username, "blocked": self.blocked}


@dataclass
class Chat:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    members: set[int] = field(default_factory=set)
    next_message_id: int = 1
    keyboard: dict[str, Any] | None = None  # the reply keyboard currently shown in this chat
    history: list[Message] = field(default_factory=list)  # by message_id (ids are 1, 2, 3, … per chat)

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    content_type: str
    width: int = 0
    height: int = 0

    def api(self, *, with_path: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                                "file_size": len(self.data)}
        if with_path:
            data["file_path"] = self.file_path
        else:
            data.update(width=self.width, height=self.height)
        return data


@dataclass
class Message:
    chat_id: int
    message_id: int
    sender_id: int
    from_bot: bool
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] | None = None
    caption: str | None = None
    caption_entities: list[dict[str, Any]] | None = None
    photo: StoredFile | None = None
    location: dict[str, float] | None = None
    inline_keyboard: list[list[dict[str, Any]]] | None = None
    reply_keyboard: dict[str, Any] | None = None  # the ReplyKeyboardMarkup this message carried
    removes_keyboard: bool = False
    reply_to: int | None = None
    edit_date: int | None = None
    deleted: bool = False
    created_seq: int = 0
    seq: int = 0


class PlaygroundState:
    def __init__(self, *, bot_id: int, bot_username: str, bot_name: str = "邻聚 Linju") -> None:
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.updates_changed = Notifier()
        self.callbacks_changed = Notifier()
        self._chat_notifiers: dict[int, Notifier] = {}  # kept across resets so waiters hear about them
        self.reset()

    def reset(self) -> None:
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.messages: dict[tuple[int, int], Message] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.update_ids = itertools.count(1)
        self.file_counter = itertools.count(1)
        self.seq = 0
        self.callbacks: dict[str, dict[str, Any]] = {}  # id → {"answered", "text", "show_alert", "url"}
        self.allowed_updates: list[str] | None = None
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.chat_actions: dict[int, tuple[str, float]] = {}  # chat → (action, monotonic time)
        self.poll_generation = 0
        self.api_calls: Counter[str] = Counter()
        self.too_many_requests = 0
        self.messages_per_chat: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.wake_all()

    def wake_all(self) -> None:
        self.updates_changed.notify()
        self.callbacks_changed.notify()
        for notifier in self._chat_notifiers.values():
            notifier.notify()

    def chat_notifier(self, chat_id: int) -> Notifier:
        return self._chat_notifiers.setdefault(chat_id, Notifier())

    def chat_changed(self, chat_id: int) -> None:
        notifier = self._chat_notifiers.get(chat_id)
        if notifier is not None:
            notifier.notify()

    # -- the bot ---------------------------------------------------------------------------------------------
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_name, "username": self.bot_username}

    # -- people and chats -------------------------------------------------------------------------------------
    def upsert_user(self, user_id: int, first_name: str, language_code: str = "zh", **extra: Any) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = User(user_id, first_name, language_code)
        user.first_name, user.language_code = first_name, language_code
        for key in ("last_name", "username", "blocked"):
            if key in extra and extra[key] is not None:
                setattr(user, key, extra[key])
        chat = self.chats.setdefault(user_id, Chat(user_id, "private"))
        chat.members = {user_id}
        return user

    def upsert_chat(self, chat_id: int, title: str, chat_type: str) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = Chat(chat_id, chat_type, title)
        chat.title, chat.type = title, chat_type
        return chat

    def chats_of(self, user_id: int) -> list[Chat]:
        return [chat for chat in self.chats.values() if user_id in chat.members]

    def chat_api(self, chat: Chat) -> dict[str, Any]:
        if chat.is_group:
            return {"id": chat.id, "type": chat.type, "title": chat.title}
        user = self.users[chat.id]
        data = {"id": chat.id, "type": "private", "first_name": user.first_name}
        for key in ("last_name", "username"):
            if getattr(user, key):
                data[key] = getattr(user, key)
        return data

    # -- messages ---------------------------------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_message(self, chat: Chat, *, sender_id: int, from_bot: bool, **content: Any) -> Message:
        message = Message(chat_id=chat.id, message_id=chat.next_message_id, sender_id=sender_id, from_bot=from_bot,
                          date=int(time.time()), **content)
        chat.next_message_id += 1
        message.created_seq = message.seq = self.next_seq()
        self.messages[(chat.id, message.message_id)] = message
        chat.history.append(message)
        self.messages_per_chat[chat.id]["from_bot" if from_bot else "from_users"] += 1
        if from_bot and message.reply_keyboard is not None:
            chat.keyboard = message.reply_keyboard
        elif from_bot and message.removes_keyboard:
            chat.keyboard = None
        self.chat_changed(chat.id)
        return message

    def touch(self, message: Message) -> None:
        message.seq = self.next_seq()
        self.chat_changed(message.chat_id)

    def message_api(self, message: Message, *, with_reply: bool = True) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        sender = self.bot_user() if message.from_bot else self.users[message.sender_id].api()
        data: dict[str, Any] = {"message_id": message.message_id, "from": sender, "chat": self.chat_api(chat),
                                "date": message.date}
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if with_reply and message.reply_to is not None:
            replied = self.messages.get((message.chat_id, message.reply_to))
            if replied is not None and not replied.deleted:
                data["reply_to_message"] = self.message_api(replied, with_reply=False)
        if message.text is not None:
            data["text"] = message.text
            if message.entities:
                data["entities"] = message.entities
        if message.photo is not None:
            data["photo"] = [message.photo.api()]
        if message.caption is not None:
            data["caption"] = message.caption
            if message.caption_entities:
                data["caption_entities"] = message.caption_entities
        if message.location is not None:
            data["location"] = message.location
        if message.inline_keyboard:
            data["reply_markup"] = {"inline_keyboard": message.inline_keyboard}
        return data

    # -- updates ----------------------------------------------------------------------------------------------
    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self.update_ids), kind: payload}
        self.updates.append(update)
        self.updates_changed.notify()
        return update

    def confirm_updates(self, offset: int) -> None:
        """getUpdates semantics: an offset confirms every update with a smaller id; a negative one keeps the last N."""
        if offset < 0:
            self.updates = self.updates[offset:]
        elif offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def deliverable(self, allowed: list[str] | None) -> list[dict[str, Any]]:
        """Pending updates of the allowed types; updates of other types are dropped, as Telegram does."""
        kept = [u for u in self.updates if update_allowed(u, allowed)]
        self.updates = kept
        return kept

    # -- files ------------------------------------------------------------------------------------------------
    def store_file(self, data: bytes, content_type: str, folder: str = "photos") -> StoredFile:
        number = next(self.file_counter)
        extension = {"image/png": "png", "image/gif": "gif", "image/webp": "webp"}.get(content_type, "jpg")
        width, height = image_size(data)
        stored = StoredFile(file_id=f"AgACAgQAAx{secrets.token_urlsafe(24)}", file_unique_id=f"AQAD{number:06d}",
                            file_path=f"{folder}/file_{number}.{extension}", data=data, content_type=content_type,
                            width=width, height=height)
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # -- callbacks --------------------------------------------------------------------------------------------
    def new_callback(self) -> str:
        callback_id = str(secrets.randbits(63))
        self.callbacks[callback_id] = {"answered": False, "text": None, "show_alert": False, "url": None,
                                       "created": time.monotonic()}
        return callback_id


def update_allowed(update: dict[str, Any], allowed: list[str] | None) -> bool:
    kind = next(key for key in update if key != "update_id")
    if allowed:
        return kind in allowed
    return kind not in UPDATE_TYPES_BY_DEFAULT_EXCLUDED


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, GIF or JPEG (0, 0 when unknown)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2:i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
            i += 2 + length
    return 0, 0


def content_type_of(data: bytes, declared: str | None = None) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"GIF":
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"\xff\xd8":
        return "image/jpeg"
    return declared or "application/octet-stream"
