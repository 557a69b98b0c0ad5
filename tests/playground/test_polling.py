"""A real aiogram Dispatcher polling the playground: messages and button presses round-trip."""

from __future__ import annotations

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.playground.conftest import Playground, polling, wait_for


def echo_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"欢迎, {message.from_user.first_name}")

    @router.message(Command("help"))
    async def help_(message: Message) -> None:
        await message.answer("help text")

    @router.message(F.text)
    async def echo(message: Message) -> None:
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="确认", callback_data="ok:1")]])
        await message.answer(f"echo: {message.text}", reply_markup=markup)

    @router.callback_query(F.data.startswith("ok:"))
    async def pressed(query: CallbackQuery) -> None:
        await query.answer("已确认")
        await query.message.edit_text(f"{query.message.text} ✓ ({query.from_user.first_name})")

    return router


async def test_echo_and_button_round_trip(playground: Playground, bot: Bot) -> None:
    await playground.person(201, "王阿姨")
    dispatcher = Dispatcher()
    dispatcher.include_router(echo_router())
    async with polling(dispatcher, bot):
        sent = await playground.post("/playground/api/send", {"user_id": 201, "text": "/start"})
        [welcome] = await playground.messages(201, after=sent["message_id"], wait=10)
        assert welcome["from_bot"] and welcome["text"] == "欢迎, 王阿姨"

        await playground.post("/playground/api/send", {"user_id": 201, "text": "/help"})
        await wait_for(playground, 201, lambda m: m["text"] == "help text")

        sent = await playground.post("/playground/api/send", {"user_id": 201, "text": "楼道灯坏了"})
        [reply] = await playground.messages(201, after=sent["message_id"], wait=10)
        assert reply["text"] == "echo: 楼道灯坏了"
        assert reply["buttons"] == [[{"text": "确认", "callback_data": "ok:1"}]]

        pressed = await playground.post("/playground/api/press", {
            "user_id": 201, "chat_id": 201, "message_id": reply["message_id"], "callback_data": "ok:1"})
        answer = await playground.get(f"/playground/api/callbacks/{pressed['callback_query_id']}", wait=10)
        assert answer["answered"] and answer["text"] == "已确认"
        # The edit of an older message surfaces for a poll "after" that message.
        [edited] = await playground.messages(201, after=reply["message_id"] - 1, wait=10)
        assert edited["message_id"] == reply["message_id"]
        edited = await wait_for(playground, 201, lambda m: m["edited"])
        assert edited["text"] == "echo: 楼道灯坏了 ✓ (王阿姨)" and edited["buttons"] == []

    stats = await playground.get("/playground/api/stats")
    assert stats["api_calls"]["getUpdates"] >= 1 and stats["api_calls"]["editMessageText"] == 1
    assert stats["messages_per_chat"]["201"] == {"from_bot": 3, "from_users": 3, "total": 6}


async def test_group_chat_and_forged_callbacks(playground: Playground, bot: Bot) -> None:
    await playground.person(202, "Staff")
    await playground.person(203, "Outsider")
    await playground.post("/playground/api/chats", {"id": -1001000000101, "title": "工作人员群", "type": "supergroup"})
    await playground.post("/playground/api/chats/-1001000000101/members", {"user_id": 202})
    forged: list[str] = []
    router = echo_router()

    @router.callback_query()
    async def anything(query: CallbackQuery) -> None:
        forged.append(query.data)
        await query.answer("无效操作", show_alert=True)

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    async with polling(dispatcher, bot):
        await playground.post("/playground/api/send", {"user_id": 203, "chat_id": -1001000000101, "text": "hi"},
                              status=403)
        sent = await playground.post("/playground/api/send",
                                     {"user_id": 202, "chat_id": -1001000000101, "text": "群消息"})
        [reply] = await playground.messages(-1001000000101, after=sent["message_id"], wait=10)
        assert reply["text"] == "echo: 群消息"

        # A button that is not on the message is refused, unless forged on purpose.
        bad = {"user_id": 202, "chat_id": -1001000000101, "message_id": reply["message_id"], "callback_data": "x:9"}
        await playground.post("/playground/api/press", bad, status=400)
        await playground.post("/playground/api/press", {**bad, "message_id": 999}, status=400)
        pressed = await playground.post("/playground/api/press", {**bad, "force": True})
        answer = await playground.get(f"/playground/api/callbacks/{pressed['callback_query_id']}", wait=10)
        assert answer["show_alert"] and forged == ["x:9"]
