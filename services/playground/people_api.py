"""The JSON API that drives simulated people (used by the web page and by tests).

Everything here is playground-only; the bot sees the effects as ordinary Telegram
updates in getUpdates (or on its webhook).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Any

from aiohttp import web

from services.playground.botapi import BotApi
from services.playground.errors import json_response
from services.playground.formatting import command_entities
from services.playground.state import Chat, Message, PlaygroundState, content_type_of

log = logging.getLogger("linju.playground.people")

LANGUAGES = ("zh", "en")
ROLES = ("resident", "volunteer", "staff")
MAX_WAIT = 60.0


class PeopleError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def _fail(status: int, error: str) -> PeopleError:
    return PeopleError(status, error)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _fail(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise _fail(400, "body must be a JSON object")
    return body


def _int(value: Any, name: str, *, required: bool = True) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or value is None:
        raise _fail(400, f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _fail(400, f"{name} must be an integer") from None


def _float_arg(request: web.Request, name: str, default: float) -> float:
    try:
        return float(request.query.get(name, default))
    except ValueError:
        raise _fail(400, f"{name} must be a number") from None


class PeopleApi:
    def __init__(self, state: PlaygroundState, api: BotApi) -> None:
        self.state = state
        self.api = api
        self.roles: dict[int, str] = {}  # page labels only

    def routes(self) -> list[web.RouteDef]:
        wrap = self._wrap
        return [
            web.post("/playground/api/users", wrap(self.post_user)),
            web.get("/playground/api/users", wrap(self.get_users)),
            web.get("/playground/api/users/{user_id}/chats", wrap(self.get_user_chats)),
            web.post("/playground/api/chats", wrap(self.post_chat)),
            web.get("/playground/api/chats", wrap(self.get_chats)),
            web.post("/playground/api/chats/{chat_id}/members", wrap(self.post_member)),
            web.post("/playground/api/send", wrap(self.send)),
            web.post("/playground/api/press", wrap(self.press)),
            web.get("/playground/api/callbacks/{callback_id}", wrap(self.get_callback)),
            web.get("/playground/api/messages", wrap(self.get_messages)),
            web.get("/playground/api/files/{file_id}", wrap(self.get_file)),
            web.get("/playground/api/stats", wrap(self.get_stats)),
            web.post("/playground/api/reset", wrap(self.reset)),
        ]

    @staticmethod
    def _wrap(handler):  # type: ignore[no-untyped-def]
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except PeopleError as error:
                return json_response({"ok": False, "error": error.error}, status=error.status)
        return wrapped

    # -- people and chats -------------------------------------------------------------------------------------
    def user_view(self, user_id: int) -> dict[str, Any]:
        return {**self.state.users[user_id].people(), "role": self.roles.get(user_id)}

    def chat_view(self, chat: Chat) -> dict[str, Any]:
        title = chat.title if chat.is_group else self.state.users[chat.id].first_name
        return {"id": chat.id, "type": chat.type, "title": title, "members": sorted(chat.members)}

    async def post_user(self, request: web.Request) -> web.Response:
        body = await _body(request)
        user_id = _int(body.get("id"), "id")
        name = body.get("first_name")
        language = body.get("language_code", "zh") or "zh"
        role = body.get("role")
        if user_id is None or user_id <= 0 or user_id >= 2**52:
            raise _fail(400, "id must be a positive integer (user ids are positive, like Telegram's)")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise _fail(400, "first_name must be a non-empty string of at most 64 characters")
        if language not in LANGUAGES:
            raise _fail(400, "language_code must be \"zh\" or \"en\"")
        if role is not None and role not in ROLES:
            raise _fail(400, "role must be resident, volunteer or staff")
        self.state.upsert_user(user_id, name.strip(), language, last_name=body.get("last_name"),
                               username=body.get("username"), blocked=body.get("blocked"))
        if role is not None:
            self.roles[user_id] = role
        log.info("people user_upserted user_id=%s", user_id)
        return json_response(self.user_view(user_id))

    async def get_users(self, request: web.Request) -> web.Response:
        return json_response([self.user_view(user_id) for user_id in sorted(self.state.users)])

    async def get_user_chats(self, request: web.Request) -> web.Response:
        user_id = _int(request.match_info["user_id"], "user_id")
        if user_id not in self.state.users:
            raise _fail(404, "no such user")
        chats = sorted(self.state.chats_of(user_id), key=lambda chat: (chat.is_group, chat.id))
        return json_response([self.chat_view(chat) for chat in chats])

    async def post_chat(self, request: web.Request) -> web.Response:
        body = await _body(request)
        chat_type = body.get("type", "supergroup")
        title = body.get("title")
        if chat_type not in ("group", "supergroup"):
            raise _fail(400, "type must be \"group\" or \"supergroup\"")
        if not isinstance(title, str) or not title.strip():
            raise _fail(400, "title must be a non-empty string")
        chat_id = _int(body.get("id"), "id", required=False)
        if chat_id is None:  # pick a Telegram-looking id
            base = -1009000000000 if chat_type == "supergroup" else -900000000
            chat_id = min([base, *self.state.chats]) - 1
        if chat_id >= 0:
            raise _fail(400, "group chat ids are negative, as in Telegram (supergroups look like -100…)")
        existing = self.state.chats.get(chat_id)
        if existing is not None and not existing.is_group:
            raise _fail(409, "that id is a private chat")
        chat = self.state.upsert_chat(chat_id, title.strip(), chat_type)
        log.info("people chat_upserted chat_id=%s", chat_id)
        return json_response(self.chat_view(chat))

    async def get_chats(self, request: web.Request) -> web.Response:
        return json_response([self.chat_view(chat) for chat in self.state.chats.values() if chat.is_group])

    async def post_member(self, request: web.Request) -> web.Response:
        chat = self.state.chats.get(_int(request.match_info["chat_id"], "chat_id"))  # type: ignore[arg-type]
        if chat is None or not chat.is_group:
            raise _fail(404, "no such group chat")
        body = await _body(request)
        user_id = _int(body.get("user_id"), "user_id")
        if user_id not in self.state.users:
            raise _fail(404, "no such user")
        chat.members.add(user_id)  # type: ignore[arg-type]
        return json_response(self.chat_view(chat))

    # -- talking to the bot ------------------------------------------------------------------------------------
    def speaker(self, body: dict[str, Any]) -> tuple[int, Chat]:
        user_id = _int(body.get("user_id"), "user_id")
        if user_id not in self.state.users:
            raise _fail(404, "no such user")
        chat_id = _int(body.get("chat_id"), "chat_id", required=False)
        chat = self.state.chats.get(user_id if chat_id is None else chat_id)
        if chat is None:
            raise _fail(404, "no such chat")
        if user_id not in chat.members:
            raise _fail(403, "the user is not a member of that chat")
        return user_id, chat  # type: ignore[return-value]

    async def send(self, request: web.Request) -> web.Response:
        body = await _body(request)
        user_id, chat = self.speaker(body)
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise _fail(400, "text must be a string")
        text = text or None
        content: dict[str, Any] = {}
        if body.get("photo"):
            content["photo"] = self._photo(body["photo"])
            if text:
                content["caption"] = text
        elif text:
            if len(text) > 4096:
                raise _fail(400, "text is longer than Telegram's 4096 characters")
            content["text"] = text
            content["entities"] = command_entities(text) or None
        location = body.get("location")
        if location is not None:
            try:
                content["location"] = {"latitude": float(location["latitude"]),
                                       "longitude": float(location["longitude"])}
            except (TypeError, KeyError, ValueError):
                raise _fail(400, "location must be {\"latitude\": number, \"longitude\": number}") from None
        if not content:
            raise _fail(400, "send text, a photo or a location")
        reply_to = _int(body.get("reply_to_message_id"), "reply_to_message_id", required=False)
        if reply_to is not None and (chat.id, reply_to) not in self.state.messages:
            raise _fail(404, "no such message to reply to")
        if chat.keyboard and chat.keyboard["one_time"] and text in {b["text"] for row in chat.keyboard["rows"]
                                                                     for b in row}:
            chat.keyboard = None
        message = self.state.add_message(chat, sender_id=user_id, from_bot=False, reply_to=reply_to, **content)
        self.state.push_update("message", self.state.message_api(message))
        log.debug("people sent user_id=%s chat_id=%s message_id=%s", user_id, chat.id, message.message_id)
        return json_response({"message_id": message.message_id})

    def _photo(self, encoded: Any) -> Any:
        if not isinstance(encoded, str):
            raise _fail(400, "photo must be base64")
        if encoded.startswith("data:"):
            encoded = encoded.partition(",")[2]
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _fail(400, "photo must be base64") from None
        content_type = content_type_of(data)
        if not content_type.startswith("image/"):
            raise _fail(400, "photo must be a PNG, JPEG, GIF or WebP image")
        return self.state.store_file(data, content_type)

    async def press(self, request: web.Request) -> web.Response:
        body = await _body(request)
        user_id, chat = self.speaker(body)
        message_id = _int(body.get("message_id"), "message_id")
        data = body.get("callback_data")
        if not isinstance(data, str) or not data:
            raise _fail(400, "callback_data must be a non-empty string")
        message = self.state.messages.get((chat.id, message_id))  # type: ignore[arg-type]
        if not body.get("force"):
            if message is None or message.deleted:
                raise _fail(400, "no such message in that chat")
            if not any(b.get("callback_data") == data for row in message.inline_keyboard or [] for b in row):
                raise _fail(400, "that message has no button with this callback_data")
        callback_id = self.state.new_callback()
        query: dict[str, Any] = {"id": callback_id, "from": self.state.users[user_id].api(),
                                 "chat_instance": str(abs(chat.id) * 7919 % 10**19), "data": data}
        if message is not None and not message.deleted:
            query["message"] = self.state.message_api(message)
        self.state.push_update("callback_query", query)
        log.debug("people pressed user_id=%s chat_id=%s message_id=%s", user_id, chat.id, message_id)
        return json_response({"callback_query_id": callback_id})

    async def get_callback(self, request: web.Request) -> web.Response:
        """How the bot answered a press (answerCallbackQuery); long-polls with ?wait=S."""
        callback_id = request.match_info["callback_id"]
        deadline = time.monotonic() + min(MAX_WAIT, _float_arg(request, "wait", 0))
        while True:
            callback = self.state.callbacks.get(callback_id)
            if callback is None:
                raise _fail(404, "no such callback query")
            remaining = deadline - time.monotonic()
            if callback["answered"] or remaining <= 0 or self.api.closing:
                view = {key: value for key, value in callback.items() if key != "created"}
                return json_response({"callback_query_id": callback_id, **view})
            await self.state.callbacks_changed.wait(remaining)

    # -- reading chats -----------------------------------------------------------------------------------------
    def message_view(self, message: Message) -> dict[str, Any]:
        sender = self.state.users.get(message.sender_id)
        view: dict[str, Any] = {
            "message_id": message.message_id,
            "from_bot": message.from_bot,
            "text": message.text if message.text is not None else (message.caption or ""),
            "buttons": [[{k: v for k, v in b.items() if k in ("text", "callback_data", "url")} for b in row]
                        for row in message.inline_keyboard or []],
            "reply_keyboard": ([[b["text"] for b in row] for row in message.reply_keyboard["rows"]]
                               if message.reply_keyboard else None),
            "edited": message.edit_date is not None,
            "date": message.date,
            # extensions
            "seq": message.seq,
            "from": {"id": message.sender_id,
                     "first_name": self.state.bot_name if message.from_bot else (sender.first_name if sender else "")},
            "entities": (message.entities if message.text is not None else message.caption_entities) or [],
        }
        if message.photo is not None:
            view["photo_url"] = f"/playground/api/files/{message.photo.file_id}"
        if message.location is not None:
            view["location"] = message.location
        if message.reply_to is not None:
            view["reply_to_message_id"] = message.reply_to
        if message.removes_keyboard:
            view["remove_keyboard"] = True
        if message.deleted:
            view["deleted"] = True
        return view

    def select(self, chat: Chat, after: int, after_seq: int | None) -> list[Message]:
        if after_seq is not None:
            return [m for m in chat.history if m.seq > after_seq]
        anchor = self.state.messages.get((chat.id, after))
        point = anchor.created_seq if anchor is not None else (0 if after <= 0 else self.state.seq)
        newer = [m for m in chat.history[max(0, after):] if not m.deleted]
        edited = [m for m in chat.history[:max(0, after)] if m.edit_date is not None and m.seq > point
                  and not m.deleted]
        return edited + newer

    async def get_messages(self, request: web.Request) -> web.Response:
        query = request.query
        if "chat_id" not in query:
            raise _fail(400, "chat_id is required")
        chat = self.state.chats.get(_int(query["chat_id"], "chat_id"))  # type: ignore[arg-type]
        if chat is None:
            raise _fail(404, "no such chat")
        after = _int(query.get("after", 0), "after") or 0
        after_seq = _int(query.get("after_seq"), "after_seq", required=False)
        deadline = time.monotonic() + max(0.0, min(MAX_WAIT, _float_arg(request, "wait", 0)))
        while True:
            selected = self.select(chat, after, after_seq)
            remaining = deadline - time.monotonic()
            if selected or remaining <= 0 or self.api.closing or self.state.chats.get(chat.id) is not chat:
                break
            await self.state.chat_notifier(chat.id).wait(remaining)
        selected.sort(key=lambda m: m.message_id)
        action = self.state.chat_actions.get(chat.id)
        return json_response({
            "messages": [self.message_view(m) for m in selected],
            "seq": self.state.seq,
            "keyboard": chat.keyboard,
            "chat_action": action[0] if action and time.monotonic() - action[1] < 5 else None,
        })

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            raise _fail(404, "no such file")
        return web.Response(body=stored.data, content_type=stored.content_type,
                            headers={"Cache-Control": "max-age=86400"})

    # -- operations ---------------------------------------------------------------------------------------------
    async def get_stats(self, request: web.Request) -> web.Response:
        state = self.state
        return json_response({
            "api_calls": dict(sorted(state.api_calls.items())),
            "api_calls_total": sum(state.api_calls.values()),
            "too_many_requests": state.too_many_requests,
            "messages_per_chat": {str(chat_id): {"from_bot": c["from_bot"], "from_users": c["from_users"],
                                                 "total": c["from_bot"] + c["from_users"]}
                                  for chat_id, c in state.messages_per_chat.items()},
            "pending_updates": len(state.updates),
            "users": len(state.users),
            "chats": len(state.chats),
            "rate_limits": self.api.limiter is not None,
            "scale": self.api.limiter.scale if self.api.limiter is not None else None,
        })

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        self.roles.clear()
        if self.api.limiter is not None:
            self.api.limiter.reset()
        log.info("people reset")
        return json_response({"ok": True})
