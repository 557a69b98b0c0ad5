"""Abuse: a burst of messages queues bounded work; webhook requests need the secret token."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, select

from services.bot.app import create_dispatcher
from services.bot.main import WEBHOOK_PATH, create_webhook_app
from shared.db.models import Request
from shared.i18n import t
from shared.queue.contracts import CLASSIFY_REQUEST
from tests.fakes import Updates, recording_bot
from tests.pipeline.test_resident_request import RESIDENT

LIMIT = 3
BURST = 40


async def test_a_burst_of_messages_queues_only_what_the_hourly_limit_allows(db, config):
    # A broker nobody consumes: what is left in its queue is exactly the work the burst queued.
    broker = StubBroker()
    broker.emit_after("process_boot")
    bot, telegram = recording_bot()
    dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=broker, max_requests_per_hour=LIMIT)
    updates = Updates()
    for update in (updates.message(RESIDENT, "/start"), updates.press(RESIDENT, "consent:yes"),
                   updates.press(RESIDENT, "comm:zjy"), updates.press(RESIDENT, "lang:zh")):
        await dispatcher.feed_update(bot, update)
    before = len(telegram.sent(RESIDENT))
    # The burst arrives at once, as concurrent updates do in polling mode.
    await asyncio.gather(*(dispatcher.feed_update(bot, updates.message(RESIDENT, f"第{i}件事：楼道灯坏了"))
                           for i in range(BURST)))
    replies = [m.text for m in telegram.sent(RESIDENT)[before:]]
    async with db.sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(Request))
    assert len(replies) == BURST  # everyone is answered …
    refusal = t("zh", "report.too_many", limit=LIMIT)
    assert replies.count(refusal) == BURST - LIMIT  # … all beyond the limit politely refused
    assert stored == LIMIT
    assert broker.queues[CLASSIFY_REQUEST.queue_name].qsize() == LIMIT  # the work queued is bounded
    assert dispatcher.fsm.events_isolation.held == 0  # no lock is kept once the burst is over
    broker.close()


async def test_webhook_refuses_requests_without_the_right_secret(db, config):
    bot, telegram = recording_bot()
    dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=StubBroker())
    app = create_webhook_app(bot, dispatcher, "s3cret-token")
    update = Updates().message(RESIDENT, "/start").model_dump(mode="json", exclude_none=True)
    async with TestClient(TestServer(app)) as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": ""},
                        {"X-Telegram-Bot-Api-Secret-Token": "s3cret-toke"},
                        {"X-Telegram-Bot-Api-Secret-Token": "S3CRET-TOKEN"}):
            response = await client.post(WEBHOOK_PATH, json=update, headers=headers)
            assert response.status == 401, headers
        # Not JSON at all, with the right secret: refused without reaching the bot.
        broken = await client.post(WEBHOOK_PATH, data=b"\x00not json",
                                   headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"})
        assert broken.status >= 400
        await asyncio.sleep(0.1)
    assert telegram.sent(RESIDENT) == []
