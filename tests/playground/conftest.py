"""A playground per test, on a free port, plus a real aiogram Bot pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from services.playground.server import start_playground

TOKEN = "7000000001:playground-token-not-a-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Playground:
    base: str
    http: aiohttp.ClientSession

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        async with self.http.post(self.base + path, json=body) as response:
            data = await response.json()
            assert response.status == status, (response.status, data)
            return data

    async def get(self, path: str, status: int = 200, **params: Any) -> Any:
        async with self.http.get(self.base + path, params={k: str(v) for k, v in params.items()}) as response:
            data = await response.json()
            assert response.status == status, (response.status, data)
            return data

    async def raw(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    def bot(self, token: str = TOKEN) -> Bot:
        return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(self.base)))

    async def person(self, user_id: int, name: str, language: str = "zh") -> dict[str, Any]:
        return await self.post("/playground/api/users", {"id": user_id, "first_name": name, "language_code": language})

    async def messages(self, chat_id: int, **params: Any) -> list[dict[str, Any]]:
        return (await self.get("/playground/api/messages", chat_id=chat_id, **params))["messages"]


StartPlayground = Callable[..., Awaitable[Playground]]


@pytest.fixture
async def start() -> AsyncIterator[StartPlayground]:
    runners = []
    http = aiohttp.ClientSession()

    async def _start(**kw: Any) -> Playground:
        port = free_port()
        runners.append(await start_playground("127.0.0.1", port, **kw))
        return Playground(f"http://127.0.0.1:{port}", http)

    yield _start
    await http.close()
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def playground(start: StartPlayground) -> Playground:
    return await start()


@pytest.fixture
async def bot(playground: Playground) -> AsyncIterator[Bot]:
    bot = playground.bot()
    yield bot
    await bot.session.close()


@asynccontextmanager
async def polling(dispatcher: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    """Runs dispatcher.start_polling against the playground for the duration of the block."""
    task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False,
                                                        polling_timeout=5))
    try:
        yield
    finally:
        try:
            await dispatcher.stop_polling()
        except RuntimeError:  # polling had not started yet
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def wait_for(playground: Playground, chat_id: int, predicate: Callable[[dict[str, Any]], bool],
                   timeout: float = 10) -> dict[str, Any]:
    """Long-polls the chat (after_seq) until a message matches; returns it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seq = 0
    while loop.time() < deadline:
        body = await playground.get("/playground/api/messages", chat_id=chat_id, after_seq=seq,
                                    wait=max(0.1, deadline - loop.time()))
        for message in body["messages"]:
            if predicate(message):
                return message
        seq = body["seq"]
    raise AssertionError(f"no matching message in chat {chat_id} within {timeout} s")
