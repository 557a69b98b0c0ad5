"""A real aiogram Bot against the playground's Bot API."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from aiogram import Bot
from aiogram.exceptions import (TelegramBadRequest, TelegramConflictError, TelegramForbiddenError,
                                TelegramUnauthorizedError)
from aiogram.types import (BotCommand, BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton,
                           ReplyKeyboardMarkup, ReplyKeyboardRemove)

from tests.playground.conftest import TOKEN, Playground


def png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in pairs]])


async def test_get_me_is_the_configured_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (7000000001, "linju_bot", True)


async def test_send_message_with_inline_keyboard_and_edit(playground: Playground, bot: Bot) -> None:
    await playground.person(101, "王阿姨")
    sent = await bot.send_message(101, "<b>你好</b>，请选择", parse_mode="HTML",
                                  reply_markup=keyboard(("是", "yes"), ("否", "no")))
    assert sent.text == "你好，请选择" and sent.entities[0].type == "bold" and sent.chat.type == "private"
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "no"
    assert sent.from_user.id == 7000000001

    edited = await bot.edit_message_text("已确认", chat_id=101, message_id=sent.message_id,
                                         reply_markup=keyboard(("撤销", "undo")))
    assert edited.text == "已确认" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("已确认", chat_id=101, message_id=sent.message_id,
                                    reply_markup=keyboard(("撤销", "undo")))
    await bot.edit_message_reply_markup(chat_id=101, message_id=sent.message_id)  # removes the keyboard

    [view] = await playground.messages(101)
    assert view == {**view, "message_id": sent.message_id, "from_bot": True, "text": "已确认", "buttons": [],
                    "reply_keyboard": None, "edited": True}
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=101, message_id=999)


async def test_answer_callback_query(playground: Playground, bot: Bot) -> None:
    await playground.person(102, "Li")
    sent = await bot.send_message(102, "pick", reply_markup=keyboard(("A", "a")))
    pressed = await playground.post("/playground/api/press", {"user_id": 102, "chat_id": 102,
                                                              "message_id": sent.message_id, "callback_data": "a"})
    [update] = await bot.get_updates(timeout=1)
    assert update.callback_query.data == "a" and update.callback_query.message.message_id == sent.message_id
    assert update.callback_query.id == pressed["callback_query_id"]
    assert await bot.answer_callback_query(update.callback_query.id, text="收到")
    answer = await playground.get(f"/playground/api/callbacks/{update.callback_query.id}")
    assert answer["answered"] and answer["text"] == "收到"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(update.callback_query.id)


async def test_send_photo_get_file_and_download(playground: Playground, bot: Bot) -> None:
    await playground.person(103, "张")
    image = png(5, 4)
    sent = await bot.send_photo(103, BufferedInputFile(image, "p.png"), caption="照片 *1*", parse_mode="Markdown")
    assert sent.caption == "照片 1" and (sent.photo[-1].width, sent.photo[-1].height) == (5, 4)
    file = await bot.get_file(sent.photo[-1].file_id)
    assert file.file_path and file.file_size == len(image)
    buffer = io.BytesIO()
    await bot.download_file(file.file_path, buffer)
    assert buffer.getvalue() == image
    again = await bot.send_photo(103, sent.photo[-1].file_id)  # re-send by file_id
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    [first, _] = await playground.messages(103)
    assert first["text"] == "照片 1"
    assert await playground.raw("GET", first["photo_url"]) == (200, image)
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(103, "nope")


async def test_reply_keyboard_location_actions_delete_and_get_chat(playground: Playground, bot: Bot) -> None:
    await playground.person(104, "Ann", "en")
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Share location", request_location=True)],
                                           [KeyboardButton(text="Cancel")]], one_time_keyboard=True)
    sent = await bot.send_message(104, "Where?", reply_markup=markup)
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    body = await playground.get("/playground/api/messages", chat_id=104)
    assert body["messages"][0]["reply_keyboard"] == [["Share location"], ["Cancel"]]
    assert body["keyboard"]["rows"][0][0] == {"text": "Share location", "request_location": True}
    await playground.post("/playground/api/send", {"user_id": 104, "text": "Cancel"})
    assert (await playground.get("/playground/api/messages", chat_id=104))["keyboard"] is None  # one-time

    await bot.send_message(104, "kb", reply_markup=ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="x")]]))
    await bot.send_message(104, "gone", reply_markup=ReplyKeyboardRemove())
    assert (await playground.get("/playground/api/messages", chat_id=104))["keyboard"] is None

    located = await bot.send_location(104, latitude=31.2, longitude=121.5)
    assert located.location.latitude == pytest.approx(31.2)
    assert await bot.send_chat_action(104, "typing")
    assert await bot.delete_message(104, located.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(104, located.message_id)
    chat = await bot.get_chat(104)
    assert (chat.type, chat.first_name) == ("private", "Ann")
    assert all("location" not in m for m in await playground.messages(104))


async def test_commands_and_webhook_settings(playground: Playground, bot: Bot) -> None:
    commands = [BotCommand(command="start", description="开始"), BotCommand(command="help", description="帮助")]
    assert await bot.set_my_commands(commands)
    assert await bot.set_my_commands([BotCommand(command="start", description="Start")], language_code="en")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.description for c in await bot.get_my_commands(language_code="en")] == ["Start"]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])

    assert await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s3cret")
    assert (await bot.get_webhook_info()).url == "http://127.0.0.1:9/hook"
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == []


async def test_error_shapes(playground: Playground, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")
    status, body = await playground.raw("POST", f"/bot{TOKEN}/sendMessage", json={"chat_id": 424242, "text": "x"})
    assert (status, body) == (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    status, body = await playground.raw("POST", f"/bot{TOKEN}/frobnicate", json={})
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
    status, body = await playground.raw("GET", "/botnot-a-token/getMe")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})

    await playground.person(105, "被拉黑")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(105, " ")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(105, "1.5 元", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(105, "x", reply_markup=keyboard(("long", "x" * 65)))
    await playground.post("/playground/api/users", {"id": 105, "first_name": "被拉黑", "language_code": "zh",
                                                    "blocked": True})
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(105, "hi")


async def test_pinned_token_and_request_encodings(start) -> None:  # type: ignore[no-untyped-def]
    playground = await start(token=TOKEN, bot_id=42, bot_username="other_bot")
    status, _ = await playground.raw("GET", "/bot42:another/getMe")
    assert status == 401
    wrong = playground.bot("42:another")
    with pytest.raises(TelegramUnauthorizedError):
        await wrong.get_me()
    await wrong.session.close()
    await playground.person(106, "Q")
    # Query string, form-encoded and JSON bodies all work, with JSON-encoded markup in forms.
    status, body = await playground.raw("GET", f"/bot{TOKEN}/getMe")
    assert body["result"]["username"] == "other_bot"
    markup = json.dumps({"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]})
    status, body = await playground.raw("POST", f"/bot{TOKEN}/sendMessage",
                                        data={"chat_id": "106", "text": "form", "reply_markup": markup})
    assert status == 200 and body["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "a"
    status, body = await playground.raw("POST", f"/bot{TOKEN}/SENDMESSAGE", params={"chat_id": 106, "text": "q"})
    assert status == 200 and body["result"]["text"] == "q"
    status, body = await playground.raw("POST", f"/bot{TOKEN}/sendMessage",
                                        data={"chat_id": "106", "text": "x", "reply_markup": "{nope"})
    assert status == 400 and "can't parse" in body["description"]


async def test_get_updates_offsets_and_group_messages(playground: Playground, bot: Bot) -> None:
    await playground.person(107, "A")
    await playground.post("/playground/api/chats", {"id": -1001000000999, "title": "工作人员群", "type": "supergroup"})
    await playground.post("/playground/api/chats/-1001000000999/members", {"user_id": 107})
    await playground.post("/playground/api/send", {"user_id": 107, "text": "/start@linju_bot hello"})
    await playground.post("/playground/api/send", {"user_id": 107, "chat_id": -1001000000999, "text": "群里好"})
    photo = base64.b64encode(png()).decode()
    await playground.post("/playground/api/send", {"user_id": 107, "photo": photo, "text": "看"})
    await playground.post("/playground/api/send", {"user_id": 107, "location": {"latitude": 1, "longitude": 2}})
    updates = await bot.get_updates(timeout=0)
    assert len(updates) == 4
    first = updates[0].message
    assert first.entities[0].type == "bot_command" and first.entities[0].length == len("/start@linju_bot")
    group = updates[1].message
    assert (group.chat.id, group.chat.type, group.chat.title) == (-1001000000999, "supergroup", "工作人员群")
    assert updates[2].message.caption == "看" and updates[2].message.photo
    assert updates[3].message.location.longitude == 2
    again = await bot.get_updates(offset=updates[1].update_id + 1, timeout=0)
    assert [u.update_id for u in again] == [u.update_id for u in updates[2:]]
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []
    group_chat = await bot.get_chat(-1001000000999)
    assert group_chat.title == "工作人员群"
