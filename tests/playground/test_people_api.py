"""The simulated-people JSON API, long polling on both sides, webhook push and the CLI entry point."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramConflictError
from aiohttp import web

from services.playground.server import create_app
from tests.playground.conftest import TOKEN, Playground, free_port


async def test_users_chats_and_validation(playground: Playground) -> None:
    user = await playground.post("/playground/api/users", {"id": 11, "first_name": "王", "language_code": "zh"})
    assert (user["id"], user["first_name"], user["language_code"]) == (11, "王", "zh")
    renamed = await playground.post("/playground/api/users", {"id": 11, "first_name": "王阿姨", "language_code": "en",
                                                              "role": "resident"})
    assert (renamed["first_name"], renamed["language_code"], renamed["role"]) == ("王阿姨", "en", "resident")
    assert [u["id"] for u in await playground.get("/playground/api/users")] == [11]
    await playground.post("/playground/api/users", {"id": -5, "first_name": "x"}, status=400)
    await playground.post("/playground/api/users", {"id": 12, "first_name": ""}, status=400)
    await playground.post("/playground/api/users", {"id": 12, "first_name": "x", "language_code": "fr"}, status=400)

    chat = await playground.post("/playground/api/chats", {"id": -100123, "title": "志愿者群", "type": "group"})
    assert chat == {**chat, "id": -100123, "type": "group", "title": "志愿者群"}
    await playground.post("/playground/api/chats", {"id": 5, "title": "x", "type": "group"}, status=400)
    await playground.post("/playground/api/chats", {"id": -5, "title": "x", "type": "channel"}, status=400)
    await playground.post("/playground/api/chats/-100123/members", {"user_id": 11})
    await playground.post("/playground/api/chats/-100123/members", {"user_id": 99}, status=404)
    chats = await playground.get("/playground/api/users/11/chats")
    assert [(c["id"], c["type"]) for c in chats] == [(11, "private"), (-100123, "group")]

    await playground.post("/playground/api/send", {"user_id": 99, "text": "x"}, status=404)
    await playground.post("/playground/api/send", {"user_id": 11}, status=400)
    await playground.post("/playground/api/send", {"user_id": 11, "photo": "bm90IGFuIGltYWdl"}, status=400)
    await playground.get("/playground/api/messages", status=400)
    await playground.get("/playground/api/messages", chat_id=424242, status=404)

    assert (await playground.post("/playground/api/reset", {}))["ok"]
    assert await playground.get("/playground/api/users") == []
    assert (await playground.get("/playground/api/stats"))["api_calls_total"] == 0


async def test_message_ids_edits_deletes_and_long_polls(playground: Playground, bot: Bot) -> None:
    await playground.person(21, "A")
    first = await playground.post("/playground/api/send", {"user_id": 21, "text": "one"})
    older = await bot.send_message(21, "two")
    newest = await bot.send_message(21, "three")
    assert (first["message_id"], older.message_id, newest.message_id) == (1, 2, 3)  # per-chat ids
    assert [m["text"] for m in await playground.messages(21, after=1)] == ["two", "three"]
    seq = (await playground.get("/playground/api/messages", chat_id=21))["seq"]

    started = time.monotonic()
    assert await playground.messages(21, after=3, wait=0.3) == []  # waits, then answers empty
    assert time.monotonic() - started >= 0.25

    async def edit_later() -> None:
        await asyncio.sleep(0.2)
        await bot.edit_message_text("two (edited)", chat_id=21, message_id=older.message_id)

    task = asyncio.create_task(edit_later())
    [edited] = await playground.messages(21, after=3, wait=5)  # the edit of an older message wakes the poll
    await task
    assert (edited["message_id"], edited["edited"], edited["text"]) == (2, True, "two (edited)")

    await bot.delete_message(21, newest.message_id)
    changed = (await playground.get("/playground/api/messages", chat_id=21, after_seq=seq))["messages"]
    assert [(m["message_id"], m.get("deleted", False)) for m in changed] == [(2, False), (3, True)]
    assert [m["message_id"] for m in await playground.messages(21)] == [1, 2]


async def test_get_updates_long_poll_and_conflict(playground: Playground, bot: Bot) -> None:
    await playground.person(31, "B")

    async def send_later() -> None:
        await asyncio.sleep(0.3)
        await playground.post("/playground/api/send", {"user_id": 31, "text": "late"})

    task = asyncio.create_task(send_later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=10)
    await task
    assert [u.message.text for u in updates] == ["late"] and time.monotonic() - started < 5

    waiting = asyncio.create_task(bot.get_updates(offset=updates[0].update_id + 1, timeout=10))
    await asyncio.sleep(0.2)
    other = playground.bot()
    assert await other.get_updates(timeout=0) == []  # a second poller terminates the first, as on Telegram
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await waiting
    await other.session.close()

    # allowed_updates: callback queries are dropped when only messages are asked for.
    sent = await bot.send_message(31, "btn", reply_markup={"inline_keyboard": [[{"text": "b", "callback_data": "b"}]]})
    await playground.post("/playground/api/press", {"user_id": 31, "chat_id": 31, "message_id": sent.message_id,
                                                    "callback_data": "b"})
    await playground.post("/playground/api/send", {"user_id": 31, "text": "msg"})
    updates = await bot.get_updates(timeout=0, allowed_updates=["message"])
    assert [u.message.text for u in updates] == ["msg"]


async def test_webhook_push_with_secret_and_reply_method(playground: Playground, bot: Bot) -> None:
    received: list[tuple[str | None, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update))
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "via webhook reply"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await playground.person(41, "C")
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        sent = await playground.post("/playground/api/send", {"user_id": 41, "text": "/start"})
        [reply] = await playground.messages(41, after=sent["message_id"], wait=10)
        assert reply["text"] == "via webhook reply"
        assert received[0][0] == "s3cret" and received[0][1]["message"]["text"] == "/start"
        assert (await bot.get_webhook_info()).pending_update_count == 0
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_static_page_is_served(playground: Playground) -> None:
    async with playground.http.get(playground.base + "/") as response:
        page = await response.text()
        assert response.status == 200 and "/static/app.js" in page and "https://" not in page
    for asset in ("app.js", "style.css"):
        async with playground.http.get(f"{playground.base}/static/{asset}") as response:
            assert response.status == 200 and "cdn" not in (await response.text()).lower()


def test_create_app_signature() -> None:
    app = create_app(rate_limits=True, scale=0.5, bot_id=1, bot_username="x_bot")
    assert app.router is not None


async def test_cli_runs_the_playground_alone() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "services.playground", "--port", str(port), "--rate-limits",
                                "--scale", "2"], cwd=os.getcwd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe") as response:
                        body = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the playground did not start")
            assert body["result"]["username"] == "linju_bot"
            async with http.get(f"http://127.0.0.1:{port}/playground/api/stats") as response:
                stats = await response.json()
            assert stats["rate_limits"] and stats["scale"] == 2.0
    finally:
        process.terminate()
        process.wait(10)
