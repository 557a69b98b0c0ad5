"""Telegram-like flood limits: off by default; when on, excess is 429 with retry_after."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramRetryAfter

from services.playground.ratelimit import RateLimiter
from tests.playground.conftest import TOKEN, StartPlayground


async def burst(playground, chat_ids: list[int]) -> list[tuple[int, dict]]:  # type: ignore[no-untyped-def]
    async def one(chat_id: int) -> tuple[int, dict]:
        return await playground.raw("POST", f"/bot{TOKEN}/sendMessage", json={"chat_id": chat_id, "text": "x"})
    return await asyncio.gather(*(one(chat_id) for chat_id in chat_ids))


async def test_per_chat_limit_answers_429_with_retry_after(start: StartPlayground) -> None:
    playground = await start(rate_limits=True, scale=2.0)
    await playground.person(301, "A")
    results = await burst(playground, [301] * 12)
    refused = [body for status, body in results if status == 429]
    assert 1 <= len(results) - len(refused) <= 5 and len(refused) >= 7
    assert refused[0] == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                          "parameters": {"retry_after": 1}}
    bot = playground.bot()
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(301, "again")
    assert caught.value.retry_after >= 1
    await bot.session.close()
    stats = await playground.get("/playground/api/stats")
    assert stats["too_many_requests"] == len(refused) + 1 and stats["rate_limits"] and stats["scale"] == 2.0
    await asyncio.sleep(0.6)  # 2 messages/s per chat at this scale: a token is back
    assert (await burst(playground, [301]))[0][0] == 200


async def test_per_bot_limit_across_chats(start: StartPlayground) -> None:
    playground = await start(rate_limits=True, scale=0.1)  # 3 messages/s for the bot, each chat far below its own
    for user_id in range(400, 412):
        await playground.person(user_id, f"U{user_id}")
    results = await burst(playground, list(range(400, 412)))
    statuses = [status for status, _ in results]
    assert 3 <= statuses.count(200) <= 4 and statuses.count(200) + statuses.count(429) == 12
    assert all(body["parameters"]["retry_after"] >= 1 for status, body in results if status == 429)


async def test_no_limits_by_default(start: StartPlayground) -> None:
    playground = await start()
    await playground.person(302, "B")
    results = await burst(playground, [302] * 60)
    assert {status for status, _ in results} == {200}
    assert (await playground.get("/playground/api/stats"))["too_many_requests"] == 0


def test_group_limit_is_twenty_a_minute_and_scales() -> None:
    now = [0.0]
    limiter = RateLimiter(scale=1.0, clock=lambda: now[0])
    sent = 0
    for _ in range(60):  # one a second for a minute, within the per-chat limit
        if limiter.acquire(-100, is_group=True) == 0:
            sent += 1
        now[0] += 1.0
    assert sent == 20  # not 60
    now[0] = 60.5  # the first one (t=0) left the window
    assert limiter.acquire(-100, is_group=True) == 0
    assert limiter.acquire(-100, is_group=True) >= 1
    assert limiter.acquire(-200, is_group=False) == 0  # other chats are not affected

    fast = RateLimiter(scale=10.0, clock=lambda: now[0])
    assert [fast.acquire(5, is_group=False) for _ in range(4)] == [0, 0, 0, 1]
    now[0] += 0.1  # 10 a second per chat at scale 10
    assert fast.acquire(5, is_group=False) == 0
