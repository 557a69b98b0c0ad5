"""The shared rate limiter: the same answers from Redis (every process) and from memory (one process).

Slow rates (one message a second and slower) keep the expected waits far apart
from the few milliseconds a Redis round trip takes.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from dramatiq.brokers.stub import StubBroker

from shared.queue.ratelimit import (DeliveryLimits, MemoryLimiter, Outcome, Rates, RedisLimiter,
                                    create_limiter)

SLOW = Rates(bot_interval=1.0, bot_tolerance=0.0, chat_interval=0.001, chat_tolerance=0.0, group_limit=1000,
             group_window=60.0, max_wait=10.0)
CHATS = Rates(bot_interval=0.001, bot_tolerance=0.0, chat_interval=1.0, chat_tolerance=0.0, group_limit=1000,
              group_window=60.0, max_wait=0.5)
GROUPS = Rates(bot_interval=0.001, bot_tolerance=0.01, chat_interval=0.001, chat_tolerance=0.01, group_limit=3,
               group_window=1.5, max_wait=0.5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """make(rates) -> (limiter, sleep); Redis limiters share one namespace, like processes of one deployment."""
    if request.param == "memory":
        clock = FakeClock()

        def build(rates: Rates):  # type: ignore[no-untyped-def]
            return MemoryLimiter(rates, clock=clock), clock.sleep
    else:
        url = request.getfixturevalue("redis_url")
        namespace = f"linju-rl-test-{uuid.uuid4().hex[:8]}"

        def build(rates: Rates):  # type: ignore[no-untyped-def]
            return RedisLimiter.from_url(url, rates, namespace, bot_id=42), asyncio.sleep
    return build


def close(*limiters) -> asyncio.Future:  # type: ignore[no-untyped-def]
    return asyncio.gather(*(limiter.close() for limiter in limiters))


async def test_bot_bucket_spaces_messages_across_chats(make) -> None:  # type: ignore[no-untyped-def]
    limiter, _ = make(SLOW)
    waits = []
    for chat in (1, 2, 3, 4):
        decision = await limiter.acquire(chat, f"row{chat}")
        assert decision.outcome is Outcome.GRANT
        waits.append(decision.wait)
    # One a second: each message gets the next free second (reserved, nobody polls).
    assert [round(w) for w in waits] == [0, 1, 2, 3], waits
    await close(limiter)


async def test_two_processes_share_one_budget(redis_url: str) -> None:
    namespace = f"linju-rl-test-{uuid.uuid4().hex[:8]}"
    first = RedisLimiter.from_url(redis_url, SLOW, namespace, bot_id=42)
    second = RedisLimiter.from_url(redis_url, SLOW, namespace, bot_id=42)
    a = await first.acquire(1, "a")
    b = await second.acquire(2, "b")
    assert a.wait < 0.5 and 0.5 < b.wait <= 1.0
    await close(first, second)


async def test_chat_backlog_reserves_a_slot_and_leaves_a_ticket(make) -> None:  # type: ignore[no-untyped-def]
    limiter, sleep = make(CHATS)
    assert (await limiter.acquire(7, "r1")).outcome is Outcome.GRANT
    deferred = await limiter.acquire(7, "r2")
    assert deferred.outcome is Outcome.DEFER and 0.5 < deferred.wait <= 1.0
    # Waiting for one chat does not hold up the others.
    assert (await limiter.acquire(8, "r5")).wait < 0.1
    # A third message to the chat is booked after the reserved one.
    third = await limiter.acquire(7, "r3")
    assert third.outcome is Outcome.DEFER and 1.5 < third.wait <= 2.0
    # A second copy of r2 (the scheduler re-enqueues pending rows) arriving early is told so.
    assert (await limiter.acquire(7, "r2")).outcome is Outcome.EARLY
    await sleep(deferred.wait)
    # r2 comes back at its slot (dramatiq's delay): the slot is paid for, it goes, the ticket is used up.
    back = await limiter.acquire(7, "r2")
    assert back.outcome is Outcome.GRANT and back.wait < 0.1
    assert (await limiter.acquire(7, "r2")).outcome is Outcome.DEFER  # no ticket left: a new booking
    other_chat = await limiter.acquire(8, "r4")
    assert other_chat.outcome is Outcome.GRANT and other_chat.wait < 0.1
    await close(limiter)


async def test_a_deferred_message_back_too_late_books_a_new_slot(make) -> None:  # type: ignore[no-untyped-def]
    limiter, sleep = make(CHATS)
    assert (await limiter.acquire(7, "r1")).outcome is Outcome.GRANT
    deferred = await limiter.acquire(7, "r2")
    third = await limiter.acquire(7, "r3")
    assert deferred.outcome is third.outcome is Outcome.DEFER
    # r2 comes back well after its slot, just before r3's: sent now it would go next to r3.
    await sleep(deferred.wait + CHATS.slot_lateness + 0.2)
    late = await limiter.acquire(7, "r2")
    assert late.outcome is Outcome.DEFER and late.wait > 1.0  # booked after r3, not squeezed before it
    await sleep(third.wait - deferred.wait - CHATS.slot_lateness - 0.2)
    assert (await limiter.acquire(7, "r3")).outcome is Outcome.GRANT  # r3 keeps its slot
    await close(limiter)


async def test_group_sliding_window(make) -> None:  # type: ignore[no-untyped-def]
    limiter, sleep = make(GROUPS)
    group = -1001000000201
    for n in range(3):
        assert (await limiter.acquire(group, f"g{n}")).outcome is Outcome.GRANT
    fourth = await limiter.acquire(group, "g3")
    assert fourth.outcome is Outcome.DEFER and 1.0 < fourth.wait <= 1.5
    # Private chats are not limited by the group's window.
    assert (await limiter.acquire(5, "p")).outcome is Outcome.GRANT
    await sleep(1.6)
    assert (await limiter.acquire(group, "g3")).outcome is Outcome.GRANT  # its ticket
    assert (await limiter.acquire(group, "g4")).outcome is Outcome.GRANT  # the window slid on
    await close(limiter)


async def test_busy_bot_takes_nothing(make) -> None:  # type: ignore[no-untyped-def]
    limiter, _ = make(Rates(bot_interval=1.0, bot_tolerance=0.0, chat_interval=0.001, chat_tolerance=0.0,
                            group_limit=1000, group_window=60.0, max_wait=0.5))
    assert (await limiter.acquire(1, "a")).outcome is Outcome.GRANT
    busy = await limiter.acquire(2, "b")
    again = await limiter.acquire(3, "c")
    # Refusals do not book slots: the wait does not grow with the number of refusals.
    assert busy.outcome is Outcome.BUSY and again.outcome is Outcome.BUSY
    assert 0.5 < busy.wait <= 1.0 and 0.5 < again.wait <= 1.0
    await close(limiter)


async def test_telegram_retry_after_holds_the_chat(make) -> None:  # type: ignore[no-untyped-def]
    limiter, _ = make(CHATS)
    await limiter.penalize(9, 3)
    decision = await limiter.acquire(9, "x")
    assert decision.outcome is Outcome.DEFER and 2.5 < decision.wait <= 3.0
    assert (await limiter.acquire(10, "y")).outcome is Outcome.GRANT
    await close(limiter)


async def test_direct_replies_are_counted_without_waiting(make) -> None:  # type: ignore[no-untyped-def]
    limiter, _ = make(CHATS)
    await limiter.debit(11)
    await limiter.debit(11)  # the bot answered twice at once: it never waits
    decision = await limiter.acquire(11, "z")
    assert decision.outcome is Outcome.DEFER and 1.5 < decision.wait <= 2.0
    await close(limiter)


def test_scale_multiplies_every_rate() -> None:
    rates = DeliveryLimits(_env_file=None, scale=10).rates()
    assert rates.bot_interval == pytest.approx(1 / 300) and rates.chat_interval == pytest.approx(0.1)
    assert rates.group_limit == 200 and rates.group_window == 62.0


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_BOT_PER_SECOND", "25")
    monkeypatch.setenv("DELIVERY_SCALE", "2")
    limits = DeliveryLimits(_env_file=None)
    assert limits.bot_per_second == 25 and limits.rates().bot_interval == pytest.approx(1 / 50)


def test_the_in_process_broker_gets_a_memory_limiter() -> None:
    assert isinstance(create_limiter(StubBroker(), None, DeliveryLimits(_env_file=None), 1), MemoryLimiter)


async def test_a_redis_broker_gets_the_shared_limiter(redis_url: str) -> None:
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_client

    broker = RedisBroker(client=redis_client(redis_url))
    limiter = create_limiter(broker, None, DeliveryLimits(_env_file=None), 1)  # Redis found through the broker
    assert isinstance(limiter, RedisLimiter)
    assert (await limiter.acquire(1, "a")).outcome is Outcome.GRANT
    await limiter.close()
    broker.close()


def test_without_redis_other_brokers_fall_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    class OtherBroker:  # e.g. RabbitMQ, with no Redis answering
        pass

    limiter = create_limiter(OtherBroker(), "redis://127.0.0.1:1/0", DeliveryLimits(_env_file=None), 1)
    assert isinstance(limiter, MemoryLimiter)
    assert "per process only" in caplog.text


async def test_memory_limiter_forgets_what_no_longer_matters() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(CHATS, clock=clock)
    for chat in range(1, 2001):
        await limiter.acquire(chat, f"r{chat}")
        await limiter.acquire(-chat, f"g{chat}")
    clock.now += 700  # past every slot, window and ticket
    for chat in range(1, 2001):
        await limiter.debit(10_000 + chat)
    assert not any(f"chat:{chat}" in limiter._tat or -chat in limiter._groups for chat in range(1, 2001))
    assert limiter._tickets == {}
