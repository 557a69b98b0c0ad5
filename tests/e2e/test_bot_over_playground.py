"""End to end over HTTP: the real bot (polling) against the playground, intake and delivery workers on real Redis.

A resident talks through `/playground/api/*` exactly as the web page does and
receives the acknowledgement and the routed reply through `/playground/api/messages`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import dramatiq
import pytest
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from services.bot import delivery
from services.bot.main import run_bot
from services.intake import worker as intake_worker
from shared.demo import load_demo
from shared.queue.broker import redis_client
from shared.settings import Settings
from tests.playground.conftest import Playground, start  # noqa: F401 - fixture

RESIDENT = 501001
STAFF_CHAT_ZJY = -1001000000201


class Chat:
    """A person's view of one chat, following new and edited messages."""

    def __init__(self, playground: Playground, chat_id: int):
        self.playground, self.chat_id, self.seen = playground, chat_id, 0

    async def next_from_bot(self, timeout: float = 15.0, contains: str | None = None) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            messages = await self.playground.messages(self.chat_id, after=self.seen, wait=2)
            for message in messages:
                self.seen = max(self.seen, message["message_id"])
                if message["from_bot"] and (contains is None or contains in message["text"]):
                    return message
        raise AssertionError(f"no bot message in chat {self.chat_id} containing {contains!r}")

    async def send(self, text: str) -> None:
        await self.playground.post("/playground/api/send", {"user_id": self.chat_id, "text": text})

    async def press(self, message: dict[str, Any], data: str) -> None:
        assert data in [b["callback_data"] for row in message["buttons"] for b in row], message["buttons"]
        await self.playground.post("/playground/api/press", {"user_id": self.chat_id, "chat_id": self.chat_id,
                                                             "message_id": message["message_id"], "callback_data": data})


@pytest.fixture
async def system(start, database_url, redis_url, db, config):  # noqa: F811
    playground = await start()
    settings = Settings(database_url=database_url, redis_url=redis_url, broker="redis",
                        telegram_api_base=playground.base, _env_file=None)
    async with db.sessions() as session:
        await load_demo(session, config)
    await playground.post("/playground/api/users", {"id": RESIDENT, "first_name": "王阿姨", "language_code": "zh"})
    await playground.post("/playground/api/chats", {"id": STAFF_CHAT_ZJY, "title": "张家园 工作人员群", "type": "supergroup"})
    broker = RedisBroker(client=redis_client(redis_url), namespace=f"linju-e2e-{uuid.uuid4().hex[:8]}")
    broker.add_middleware(AsyncIO())
    intake = intake_worker.register(broker, settings, config=config)
    deliverer = delivery.register(broker, settings)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    stop = asyncio.Event()
    bot_task = asyncio.create_task(run_bot(settings, stop, broker=broker))
    yield playground
    stop.set()
    await asyncio.wait_for(bot_task, timeout=15)
    # What the workers opened (database pools, the delivery bot's HTTP session) lives on their event loop.
    loop_thread = get_event_loop_thread()
    if loop_thread is not None:
        for service in (intake, deliverer):
            await asyncio.to_thread(loop_thread.run_coroutine, service.close())
    worker.stop()
    broker.flush_all()
    broker.close()


async def test_resident_reports_a_problem_over_http(system):
    playground = system
    me = Chat(playground, RESIDENT)
    await me.send("/start")
    consent = await me.next_from_bot(contains="个人信息")
    await me.press(consent, "consent:yes")
    communities = await me.next_from_bot(contains="社区")
    await me.press(communities, "comm:zjy")
    language = await me.next_from_bot(contains="Choose your language")
    await me.press(language, "lang:zh")
    await me.next_from_bot(contains="直接打字")

    await me.send("楼道的灯坏了好几天了 晚上黑乎乎的")
    ack = await me.next_from_bot(contains="已收到您的诉求")
    number = next(word for word in ack["text"].replace("，", " ").replace("。", " ").split() if word.startswith("ZJY-"))
    routed = await me.next_from_bot(contains="已转交")
    assert number in routed["text"]
    staff = Chat(playground, STAFF_CHAT_ZJY)
    card = await staff.next_from_bot(contains=number)
    assert any(b["callback_data"].startswith("st:take:") for row in card["buttons"] for b in row)
    stats = await playground.get("/playground/api/stats")
    # consent, community, chosen+language, chosen+menu, ack, routed to the resident; the card to staff.
    assert stats["messages_per_chat"][str(RESIDENT)]["from_bot"] == 8
    assert stats["messages_per_chat"][str(STAFF_CHAT_ZJY)]["from_bot"] == 1
    assert stats["too_many_requests"] == 0
