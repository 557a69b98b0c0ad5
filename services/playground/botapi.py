"""The Bot API methods a bot uses, answered with Telegram's request and response shapes.

URL form ``/bot{token}/{method}`` (method names are case-insensitive), files at
``/file/bot{token}/{file_path}``.  Results are ``{"ok": true, "result": ...}``;
errors are Telegram's bodies (see errors.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from services.playground import markup as markups
from services.playground.errors import (CHAT_NOT_FOUND, NOT_MODIFIED, ApiError, bad_request, json_response,
                                        method_not_found, too_many_requests, unauthorized)
from services.playground.formatting import apply_parse_mode
from services.playground.params import Params, Upload, read_params
from services.playground.ratelimit import RateLimiter
from services.playground.state import Chat, Message, PlaygroundState, StoredFile, content_type_of

log = logging.getLogger("linju.playground.botapi")

TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
MAX_TEXT, MAX_CAPTION = 4096, 1024

Handler = Callable[[Params], Awaitable[Any]]


class BotApi:
    def __init__(self, state: PlaygroundState, *, limiter: RateLimiter | None = None, token: str | None = None) -> None:
        self.state = state
        self.limiter = limiter
        self.token = token
        self.closing = False
        self.methods: dict[str, tuple[str, Handler]] = {}
        for name in ("getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo", "setMyCommands",
                     "getMyCommands", "deleteMyCommands", "sendMessage", "editMessageText", "editMessageCaption",
                     "editMessageReplyMarkup", "answerCallbackQuery", "sendPhoto", "getFile", "sendLocation",
                     "sendChatAction", "deleteMessage", "getChat", "close", "logOut"):
            handler = getattr(self, "m_" + re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())
            self.methods[name.lower()] = (name, handler)

    # -- HTTP entry points -------------------------------------------------------------------------------------
    def check_token(self, token: str) -> None:
        if self.token is not None:
            if token != self.token:
                raise unauthorized()
        elif not TOKEN_RE.match(token):
            raise unauthorized()

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        started = time.monotonic()
        try:
            self.check_token(request.match_info["token"])
            canonical, handler = self.methods.get(name.lower(), (name, None))
            if handler is None:
                raise method_not_found()
            self.state.api_calls[canonical] += 1
            params = await read_params(request)
            result = await handler(params)
            response = json_response({"ok": True, "result": result})
        except ApiError as error:
            if error.code == 429:
                self.state.too_many_requests += 1
            response = error.response()
        level = logging.DEBUG if response.status == 200 else logging.INFO
        log.log(level, "bot_api method=%s status=%s ms=%.1f", name, response.status,
                (time.monotonic() - started) * 1000)
        return response

    async def download(self, request: web.Request) -> web.StreamResponse:
        try:
            self.check_token(request.match_info["token"])
        except ApiError as error:
            return error.response()
        stored = self.state.files_by_path.get(request.match_info["path"])
        if stored is None:
            return json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.data, content_type=stored.content_type)

    async def call(self, name: str, values: dict[str, Any]) -> Any:
        """Runs a method from a webhook reply body ({"method": ..., ...})."""
        canonical, handler = self.methods.get(name.lower(), (name, None))
        if handler is None:
            raise method_not_found()
        self.state.api_calls[canonical] += 1
        return await handler(Params(values, {}))

    # -- helpers ---------------------------------------------------------------------------------------------
    def chat(self, params: Params, *, for_sending: bool = False) -> Chat:
        chat_id = params.chat_id()
        chat = self.state.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request(CHAT_NOT_FOUND)
        if for_sending and not chat.is_group and self.state.users[chat.id].blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def limit(self, chat: Chat) -> None:
        if self.limiter is None:
            return
        retry_after = self.limiter.acquire(chat.id, chat.is_group)
        if retry_after:
            raise too_many_requests(retry_after)

    def message(self, chat: Chat, message_id: int | None, missing: str) -> Message:
        message = self.state.messages.get((chat.id, message_id)) if message_id is not None else None
        if message is None or message.deleted:
            raise bad_request(missing)
        return message

    def reply_to(self, params: Params, chat: Chat) -> int | None:
        reply = params.json("reply_parameters")
        message_id = params.int("reply_to_message_id")
        allow_missing = params.bool("allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
        if message_id is None:
            return None
        found = self.state.messages.get((chat.id, int(message_id)))
        if found is None or found.deleted:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        return int(message_id)

    def text(self, params: Params, name: str, entities_name: str, limit: int,
             *, required: bool) -> tuple[str | None, list[dict[str, Any]] | None]:
        raw = params.str(name)
        if raw is None or not raw.strip():
            if required:
                raise bad_request("message text is empty")
            return None, None
        plain, entities = apply_parse_mode(raw, params.str("parse_mode"), params.json(entities_name))
        if required and not plain.strip():
            raise bad_request("text must be non-empty")
        if len(plain) > limit:
            raise bad_request("message is too long" if name == "text" else "message caption is too long")
        return plain, entities

    def sent(self, chat: Chat, **content: Any) -> dict[str, Any]:
        message = self.state.add_message(chat, sender_id=self.state.bot_id, from_bot=True, **content)
        log.debug("bot_api sent chat_id=%s message_id=%s", chat.id, message.message_id)
        return self.state.message_api(message)

    # -- getMe, updates, webhook, commands -------------------------------------------------------------------
    async def m_get_me(self, params: Params) -> dict[str, Any]:
        return {**self.state.bot_user(), "can_join_groups": True, "can_read_all_group_messages": True,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    async def m_get_updates(self, params: Params) -> list[dict[str, Any]]:
        state = self.state
        if state.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        allowed = params.json("allowed_updates")
        if isinstance(allowed, list):
            state.allowed_updates = [str(kind) for kind in allowed]
        state.confirm_updates(params.int("offset", 0) or 0)
        limit = min(100, max(1, params.int("limit", 100) or 100))
        timeout = max(0, params.int("timeout", 0) or 0)
        state.poll_generation += 1
        generation = state.poll_generation
        state.updates_changed.notify()  # a waiting older poll learns it was superseded
        deadline = time.monotonic() + timeout
        while True:
            if generation != state.poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
            updates = state.deliverable(state.allowed_updates)
            remaining = deadline - time.monotonic()
            if updates or remaining <= 0 or self.closing or state.webhook is not None:
                return updates[:limit]
            await state.updates_changed.wait(remaining)

    async def m_set_webhook(self, params: Params) -> bool:
        url = params.str("url", "") or ""
        if not url:
            self.state.webhook = None
            return True
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.bool("drop_pending_updates"):
            self.state.updates.clear()
        allowed = params.json("allowed_updates")
        self.state.webhook = {"url": url, "secret_token": params.str("secret_token"),
                              "max_connections": params.int("max_connections", 40),
                              "allowed_updates": allowed if isinstance(allowed, list) else None,
                              "last_error_date": None, "last_error_message": None}
        self.state.updates_changed.notify()
        log.info("bot_api webhook_set url=%s", url)
        return True

    async def m_delete_webhook(self, params: Params) -> bool:
        self.state.webhook = None
        if params.bool("drop_pending_updates"):
            self.state.updates.clear()
        return True

    async def m_get_webhook_info(self, params: Params) -> dict[str, Any]:
        hook = self.state.webhook or {}
        info: dict[str, Any] = {"url": hook.get("url", ""), "has_custom_certificate": False,
                                "pending_update_count": len(self.state.updates)}
        if hook:
            info["max_connections"] = hook["max_connections"]
            if hook["allowed_updates"] is not None:
                info["allowed_updates"] = hook["allowed_updates"]
            if hook["last_error_date"]:
                info.update(last_error_date=hook["last_error_date"], last_error_message=hook["last_error_message"])
        return info

    def commands_key(self, params: Params) -> tuple[str, str]:
        scope = params.json("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.str("language_code", "") or ""

    async def m_set_my_commands(self, params: Params) -> bool:
        commands = params.json("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        checked = []
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            description = command.get("description", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("command description must be non-empty")
            checked.append({"command": name, "description": description})
        self.state.commands[self.commands_key(params)] = checked
        return True

    async def m_get_my_commands(self, params: Params) -> list[dict[str, Any]]:
        return self.state.commands.get(self.commands_key(params), [])

    async def m_delete_my_commands(self, params: Params) -> bool:
        self.state.commands.pop(self.commands_key(params), None)
        return True

    # -- sending ---------------------------------------------------------------------------------------------
    async def m_send_message(self, params: Params) -> dict[str, Any]:
        chat = self.chat(params, for_sending=True)
        text, entities = self.text(params, "text", "entities", MAX_TEXT, required=True)
        content = markups.parse(params.json("reply_markup", "reply keyboard markup"))
        reply_to = self.reply_to(params, chat)
        self.limit(chat)
        return self.sent(chat, text=text, entities=entities, reply_to=reply_to, **content)

    async def m_send_photo(self, params: Params) -> dict[str, Any]:
        chat = self.chat(params, for_sending=True)
        caption, entities = self.text(params, "caption", "caption_entities", MAX_CAPTION, required=False)
        content = markups.parse(params.json("reply_markup", "reply keyboard markup"))
        reply_to = self.reply_to(params, chat)
        photo = await self.photo(params)
        self.limit(chat)
        return self.sent(chat, photo=photo, caption=caption, caption_entities=entities, reply_to=reply_to, **content)

    async def photo(self, params: Params) -> StoredFile:
        upload: Upload | None = params.files.get("photo")
        value = params.str("photo")
        if upload is None and value:
            if value.startswith("attach://"):
                upload = params.files.get(value.removeprefix("attach://"))
                if upload is None:
                    raise bad_request("wrong remote file identifier specified: can't find attached file")
            elif value in self.state.files:
                return self.state.files[value]
            elif value.startswith(("http://", "https://")):
                upload = await fetch(value)
            else:
                raise bad_request("wrong file identifier/HTTP URL specified")
        if upload is None:
            raise bad_request("there is no photo in the request")
        if not upload.data:
            raise bad_request("file must be non-empty")
        content_type = content_type_of(upload.data)
        if not content_type.startswith("image/"):
            raise bad_request("IMAGE_PROCESS_FAILED")
        return self.state.store_file(upload.data, content_type)

    async def m_send_location(self, params: Params) -> dict[str, Any]:
        chat = self.chat(params, for_sending=True)
        latitude = params.float("latitude", required=True)
        longitude = params.float("longitude", required=True)
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):  # type: ignore[operator]
            raise bad_request("wrong coordinates specified")
        content = markups.parse(params.json("reply_markup", "reply keyboard markup"))
        reply_to = self.reply_to(params, chat)
        self.limit(chat)
        return self.sent(chat, location={"latitude": latitude, "longitude": longitude}, reply_to=reply_to, **content)

    async def m_send_chat_action(self, params: Params) -> bool:
        chat = self.chat(params, for_sending=True)
        if params.str("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.state.chat_actions[chat.id] = (params.str("action"), time.monotonic())
        self.state.chat_changed(chat.id)
        return True

    # -- editing ---------------------------------------------------------------------------------------------
    def editable(self, params: Params) -> tuple[Chat, Message]:
        if "inline_message_id" in params:
            raise bad_request("message to edit not found")
        chat = self.chat(params)
        message = self.message(chat, params.int("message_id", required=True), "message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    def edited(self, message: Message, changes: dict[str, Any]) -> dict[str, Any]:
        if all(getattr(message, key) == value for key, value in changes.items()):
            raise bad_request(NOT_MODIFIED)
        for key, value in changes.items():
            setattr(message, key, value)
        message.edit_date = int(time.time())
        self.state.touch(message)
        return self.state.message_api(message)

    async def m_edit_message_text(self, params: Params) -> dict[str, Any]:
        _, message = self.editable(params)
        text, entities = self.text(params, "text", "entities", MAX_TEXT, required=True)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        keyboard = markups.parse(params.json("reply_markup", "reply keyboard markup"), inline_only=True)
        # As on Telegram: an edit without reply_markup removes the inline keyboard.
        return self.edited(message, {"text": text, "entities": entities,
                                     "inline_keyboard": keyboard.get("inline_keyboard")})

    async def m_edit_message_caption(self, params: Params) -> dict[str, Any]:
        _, message = self.editable(params)
        caption, entities = self.text(params, "caption", "caption_entities", MAX_CAPTION, required=False)
        if message.photo is None:
            raise bad_request("there is no caption in the message to edit")
        keyboard = markups.parse(params.json("reply_markup", "reply keyboard markup"), inline_only=True)
        return self.edited(message, {"caption": caption, "caption_entities": entities,
                                     "inline_keyboard": keyboard.get("inline_keyboard")})

    async def m_edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        _, message = self.editable(params)
        keyboard = markups.parse(params.json("reply_markup", "reply keyboard markup"), inline_only=True)
        return self.edited(message, {"inline_keyboard": keyboard.get("inline_keyboard")})

    async def m_delete_message(self, params: Params) -> bool:
        chat = self.chat(params)
        message = self.message(chat, params.int("message_id", required=True), "message to delete not found")
        message.deleted = True
        self.state.touch(message)
        return True

    # -- callbacks, files, chats -----------------------------------------------------------------------------
    async def m_answer_callback_query(self, params: Params) -> bool:
        callback = self.state.callbacks.get(params.str("callback_query_id") or "")
        if callback is None or callback["answered"]:
            raise bad_request(QUERY_INVALID)
        text = params.str("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        callback.update(answered=True, text=text, show_alert=params.bool("show_alert"), url=params.str("url"))
        self.state.callbacks_changed.notify()
        return True

    async def m_get_file(self, params: Params) -> dict[str, Any]:
        stored = self.state.files.get(params.str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.api(with_path=True)

    async def m_get_chat(self, params: Params) -> dict[str, Any]:
        chat = self.chat(params)
        gifts = {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                 "premium_subscription": False, "gifts_from_channels": False}
        return {**self.state.chat_api(chat), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": gifts}

    async def m_close(self, params: Params) -> bool:
        return True

    async def m_log_out(self, params: Params) -> bool:
        return True


async def fetch(url: str) -> Upload:
    """Telegram downloads photos sent by URL; so does the playground (5 s, 10 MB)."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(url) as response:
                if response.status != 200:
                    raise bad_request("failed to get HTTP URL content")
                data = await response.content.read(10 * 1024 * 1024 + 1)
    except (aiohttp.ClientError, TimeoutError):
        raise bad_request("failed to get HTTP URL content") from None
    if len(data) > 10 * 1024 * 1024:
        raise bad_request("failed to get HTTP URL content")
    return Upload(url.rsplit("/", 1)[-1] or "photo", response.headers.get("Content-Type", ""), data)
