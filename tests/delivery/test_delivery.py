"""The delivery worker against the playground with Telegram-like limits, real PostgreSQL and Redis.

What is asserted is what Telegram would see (the playground counts messages per
chat and every 429) and what the outbox says; never how fast it went.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time

import pytest
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.methods import SendMessage
from sqlalchemy import func, select

from services.bot.delivery import CountedReplies, Deliverer
from shared.db.models import OutboxMessage
from shared.queue.ratelimit import MemoryLimiter, Outcome
from shared.settings import REPO_ROOT, Settings
from tests.delivery.conftest import enqueue, limits, people, queue_rows, rows, wait_rows, worker
from tests.fakes import recording_bot
from tests.playground.conftest import TOKEN

SCALE = 10.0  # every Telegram limit ×10: 300 messages/s for the bot, 10/s per chat


def settings_for(database_url: str, base: str, redis_url: str | None = None) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, broker="redis", telegram_api_base=base,
                    _env_file=None)


async def stats(playground) -> dict:  # type: ignore[no-untyped-def]
    return await playground.get("/playground/api/stats")


def received(stats_body: dict, chat: int) -> int:
    return stats_body["messages_per_chat"].get(str(chat), {}).get("from_bot", 0)


async def first_sent_at(pg, ids: list[int]) -> float | None:  # type: ignore[no-untyped-def]
    async with pg.sessions() as session:
        first = await session.scalar(select(func.min(OutboxMessage.sent_at)).where(OutboxMessage.id.in_(ids)))
    return first.timestamp() if first else None


async def test_many_chats_from_two_worker_processes(start, pg, postgres_url, redis_url, broker, namespace) -> None:
    """N notifications to N chats, sent by two worker processes sharing the limits through Redis."""
    playground = await start(rate_limits=True, scale=SCALE)
    chats = range(600_001, 600_601)
    await people(playground, chats)
    ids = await queue_rows(pg, chats)
    env = {**os.environ, "DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "TELEGRAM_API_BASE": playground.base,
           "BROKER_NAMESPACE": namespace, "DELIVERY_SCALE": str(SCALE), "DELIVERY_NAMESPACE": f"{namespace}:rl",
           "THREADS": "8", "PYTHONPATH": str(REPO_ROOT)}
    processes = [subprocess.Popen([sys.executable, "-m", "tests.delivery.worker_process"], cwd=REPO_ROOT, env=env,
                                  stdout=subprocess.PIPE) for _ in range(2)]
    try:
        for process in processes:  # both consume before anything is queued, so both take part
            assert (await asyncio.to_thread(process.stdout.readline)).strip() == b"ready"
        await asyncio.to_thread(enqueue, broker, ids)
        too_many_after_first_second: int | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            found = await rows(pg, ids)
            first = await first_sent_at(pg, ids)
            if too_many_after_first_second is None and first is not None and time.time() >= first + 1:
                too_many_after_first_second = (await stats(playground))["too_many_requests"]
            if all(row.status in ("sent", "failed") for row in found.values()):
                break
            await asyncio.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.wait, 15)
    found = await rows(pg, ids)
    assert {row.status for row in found.values()} == {"sent"}
    assert all(row.attempts >= 1 for row in found.values())
    body = await stats(playground)
    assert [received(body, chat) for chat in chats] == [1] * len(chats)  # none lost, none twice
    # No 429 after the first second of sending (the sample is taken then; 0 if all went within a second).
    at_one_second = body["too_many_requests"] if too_many_after_first_second is None else too_many_after_first_second
    assert body["too_many_requests"] - at_one_second == 0
    assert all(process.returncode == 0 for process in processes)


async def test_many_messages_to_one_chat_respect_its_limit(start, pg, postgres_url, redis_url, broker,
                                                            namespace, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="linju.delivery")
    playground = await start(rate_limits=True, scale=SCALE)
    chat = 610_001
    await people(playground, [chat])
    ids = await queue_rows(pg, [chat] * 16)
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace)):
        await asyncio.to_thread(enqueue, broker, ids)
        found = await wait_rows(pg, ids)
    assert {row.status for row in found.values()} == {"sent"}
    body = await stats(playground)
    assert received(body, chat) == 16
    assert body["too_many_requests"] == 0
    # The chat's backlog was booked ahead and re-enqueued, not retried against Telegram: one request
    # per message, and a row our own limiter handed back untried was not counted as an attempt.
    assert any(record.getMessage() == "delivery postponed" for record in caplog.records)
    assert body["api_calls"]["sendMessage"] == 16
    assert {row.attempts for row in found.values()} == {1}


async def test_a_postponed_row_enqueued_again_is_sent_once_and_counted_once(start, pg, postgres_url, broker,
                                                                             namespace) -> None:
    """The scheduler re-enqueues rows left pending: a copy arriving before the row's booked slot
    finds the row untried, hands it back, and is not counted as an attempt."""
    playground = await start(rate_limits=True, scale=SCALE)
    chat = 615_001
    await people(playground, [chat])
    ids = await queue_rows(pg, [chat] * 16)
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace)):
        await asyncio.to_thread(enqueue, broker, ids)
        await asyncio.sleep(0.2)  # the backlog is booked ahead by now
        async with pg.sessions() as session:
            waiting = list(await session.scalars(select(OutboxMessage.id).where(
                OutboxMessage.id.in_(ids), OutboxMessage.status == "pending")))
        assert waiting, "the chat's backlog should be waiting for its slots"
        await asyncio.to_thread(enqueue, broker, waiting)  # as the scheduler would
        found = await wait_rows(pg, ids)
    body = await stats(playground)
    assert received(body, chat) == 16 and body["api_calls"]["sendMessage"] == 16
    assert {row.attempts for row in found.values()} == {1}


async def test_permanent_errors_fail_the_row_without_retrying(start, pg, postgres_url, broker, namespace) -> None:
    playground = await start(rate_limits=True, scale=SCALE)
    blocked, unknown, fine = 620_001, 620_002, 620_003
    await playground.post("/playground/api/users", {"id": blocked, "first_name": "拉黑了", "blocked": True})
    await people(playground, [fine])
    ids = await queue_rows(pg, [blocked, unknown, fine])
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace)):
        await asyncio.to_thread(enqueue, broker, ids)
        found = await wait_rows(pg, ids)
        calls = (await stats(playground))["api_calls"].get("sendMessage", 0)
        await asyncio.sleep(1.5)  # longer than dramatiq's first retry backoff: nothing is tried again
        assert (await stats(playground))["api_calls"].get("sendMessage", 0) == calls == 3
    assert (found[ids[0]].status, found[ids[1]].status, found[ids[2]].status) == ("failed", "failed", "sent")
    assert "Forbidden" in found[ids[0]].last_error and "chat not found" in found[ids[1]].last_error
    assert found[ids[0]].attempts == found[ids[1]].attempts == 1


async def test_telegram_429_is_waited_out_then_sent(start, pg, postgres_url, broker, namespace) -> None:
    playground = await start(rate_limits=True, scale=1.0)  # 1 message/s per chat, burst of 3
    chat = 630_001
    await people(playground, [chat])
    ids = await queue_rows(pg, [chat])
    async with worker(broker, settings_for(postgres_url, playground.base), limits(1.0, namespace)):
        # Just before our row goes out, someone else uses up the chat's burst; our limiter does not
        # know. (Done once the worker is up: the chat's bucket refills one message a second.)
        direct = playground.bot(TOKEN)
        for n in range(3):
            await direct.send_message(chat, f"direct {n}")
        await direct.session.close()
        await asyncio.to_thread(enqueue, broker, ids)
        found = await wait_rows(pg, ids)
    row = found[ids[0]]
    body = await stats(playground)
    assert row.status == "sent" and row.attempts == 2
    assert body["too_many_requests"] == 1 and received(body, chat) == 4


class FailingFirst(BaseRequestMiddleware):
    """Telegram answering 5xx, then the network failing, then working again."""

    def __init__(self) -> None:
        self.errors = [TelegramServerError, TelegramNetworkError]

    async def __call__(self, make_request, bot, method):  # type: ignore[no-untyped-def]
        if isinstance(method, SendMessage) and self.errors:
            raise self.errors.pop(0)(method=method, message="Internal Server Error")
        return await make_request(bot, method)


async def test_server_and_network_errors_are_retried_with_backoff(start, pg, postgres_url, broker,
                                                                 namespace) -> None:
    playground = await start(rate_limits=True, scale=SCALE)
    chat = 640_001
    await people(playground, [chat])
    bot = playground.bot(TOKEN)
    bot.session.middleware(FailingFirst())
    ids = await queue_rows(pg, [chat])
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace), bot=bot):
        await asyncio.to_thread(enqueue, broker, ids)
        found = await wait_rows(pg, ids)
    await bot.session.close()
    assert found[ids[0]].status == "sent" and found[ids[0]].attempts == 3
    assert received(await stats(playground), chat) == 1


async def test_the_same_row_enqueued_many_times_is_sent_once(start, pg, postgres_url, broker, namespace) -> None:
    playground = await start(rate_limits=True, scale=SCALE)
    chat = 650_001
    await people(playground, [chat])
    ids = await queue_rows(pg, [chat])
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace),
                      threads=8) as deliverer:
        await asyncio.to_thread(enqueue, broker, ids * 6)  # the producer, a retry, the scheduler …
        await wait_rows(pg, ids)
        await asyncio.sleep(0.5)
    assert received(await stats(playground), chat) == 1
    del deliverer


async def test_an_edit_row_edits_the_sent_message(start, pg, postgres_url, broker, namespace) -> None:
    playground = await start(rate_limits=True, scale=SCALE)
    chat = 660_001
    await people(playground, [chat])
    direct = playground.bot(TOKEN)
    offer = await direct.send_message(chat, "新任务：帮孙大爷取药 [认领]")
    await direct.session.close()
    ids = await queue_rows(pg, [chat], "任务已被认领", edit_message_id=str(offer.message_id))
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace)):
        await asyncio.to_thread(enqueue, broker, ids)
        found = await wait_rows(pg, ids)
    assert found[ids[0]].status == "sent" and found[ids[0]].sent_message_id == str(offer.message_id)
    messages = await playground.messages(chat)
    assert len(messages) == 1 and messages[0]["text"].startswith("任务已被认领") and messages[0]["edited"]


async def test_a_sent_row_is_never_sent_again(pg, postgres_url) -> None:
    """The in-process broker path (`linju run` without Redis): memory limiter, recording bot."""
    from dramatiq.brokers.stub import StubBroker

    bot, telegram = recording_bot()
    deliverer = Deliverer(Settings(database_url=postgres_url, redis_url=None, broker="stub", _env_file=None),
                          StubBroker(), bot=bot)
    ids = await queue_rows(pg, [670_001])
    assert await deliverer.deliver(ids[0]) == "sent"
    assert await deliverer.deliver(ids[0]) == "skipped"
    assert isinstance(deliverer.limiter, MemoryLimiter) and len(telegram.sent(670_001)) == 1
    await deliverer.close()


async def test_direct_replies_of_the_bot_are_counted() -> None:
    from shared.queue.ratelimit import DeliveryLimits

    limiter = MemoryLimiter(DeliveryLimits(_env_file=None).rates())
    bot, telegram = recording_bot()
    bot.session.middleware(CountedReplies(limiter))
    for _ in range(3):
        await bot.send_message(680_001, "已收到")
    assert len(telegram.sent(680_001)) == 3  # never held up …
    decision = await limiter.acquire(680_001, "next")
    assert decision.outcome is Outcome.DEFER and decision.wait > 1.0  # … but delivery leaves room for them


@pytest.fixture(autouse=True)
def _no_delivery_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("DELIVERY_")]:
        monkeypatch.delenv(key)


async def test_in_process_broker_long_waits_do_not_hold_up_short_ones(pg, postgres_url) -> None:
    """`linju run` without Redis: a group booked minutes ahead must not stall a chat booked a second ahead."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware.asyncio import AsyncIO

    from services.bot import delivery
    from shared.queue.ratelimit import DeliveryLimits

    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    bot, telegram = recording_bot()
    settings = Settings(database_url=postgres_url, redis_url=None, broker="stub", _env_file=None)
    # One group message a minute; five a second per chat, in bursts of two.
    delivery.register(broker, settings, bot=bot, limits=DeliveryLimits(_env_file=None, scale=5, group_per_minute=0.2))
    running = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)  # holds 4 delayed messages at most
    running.start()
    try:
        group = await queue_rows(pg, [-1001000000201] * 8)
        chat = await queue_rows(pg, [690_001] * 8)
        await asyncio.to_thread(enqueue, broker, group)
        await asyncio.sleep(0.5)  # the group's backlog is booked first
        await asyncio.to_thread(enqueue, broker, chat)
        found = await wait_rows(pg, chat, timeout=15)
    finally:
        await asyncio.to_thread(running.stop)
    assert {row.status for row in found.values()} == {"sent"} and len(telegram.sent(690_001)) == 8
    assert len(telegram.sent(-1001000000201)) == 1  # the rest wait for their minutes


async def test_a_short_database_outage_after_sending_does_not_send_twice(start, pg, postgres_url, broker,
                                                                          namespace, monkeypatch) -> None:
    from shared.repo import outbox

    playground = await start(rate_limits=True, scale=SCALE)
    chat = 700_001
    await people(playground, [chat])
    ids = await queue_rows(pg, [chat])
    real, failures = outbox.mark_sent, [ConnectionError("database restarting")] * 2

    async def flaky(session, outbox_id, message_id):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        await real(session, outbox_id, message_id)

    monkeypatch.setattr(outbox, "mark_sent", flaky)
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace)):
        await asyncio.to_thread(enqueue, broker, ids)
        found = await wait_rows(pg, ids)
    assert found[ids[0]].status == "sent" and found[ids[0]].attempts == 1
    assert received(await stats(playground), chat) == 1


async def test_redis_failing_gives_the_row_back(pg, postgres_url) -> None:
    from dramatiq.brokers.stub import StubBroker

    class Down:
        async def acquire(self, chat_id, ticket):  # type: ignore[no-untyped-def]
            raise ConnectionError("redis is restarting")

        async def close(self) -> None:
            pass

    bot, telegram = recording_bot()
    deliverer = Deliverer(Settings(database_url=postgres_url, redis_url=None, broker="stub", _env_file=None),
                          StubBroker(), bot=bot)
    deliverer._limiter = Down()  # type: ignore[assignment]
    ids = await queue_rows(pg, [710_001])
    with pytest.raises(ConnectionError):
        await deliverer.deliver(ids[0])
    assert (await rows(pg, ids))[ids[0]].status == "pending" and telegram.sent(710_001) == []
    await deliverer.close()
