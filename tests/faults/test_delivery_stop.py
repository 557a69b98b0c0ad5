"""SIGTERM to the delivery worker in the middle of a batch (a deploy, `docker compose stop`): nothing
stranded, nothing doubled.

Real processes: `linju deliver` (twice), the playground, PostgreSQL, Redis. The worker runs with
Telegram's real limits in its own limiter (DELIVERY_SCALE=1: one message a second per chat after
a burst of two), so when the signal comes its threads have rows in hand: claimed, waiting for
their slot, being sent, being recorded. 200 notifications to 20 chats; SIGTERM once 50 are sent.

What a graceful stop promises, and what is checked:
- the worker finishes the messages in hand and exits within WORKER_STOP_TIMEOUT_MS (20 s; the
  compose file gives it 30 s before SIGKILL);
- no row is left `sending` (which would wait for its 2-minute lease), prefetched and postponed
  messages go back to Redis;
- a second worker sends the rest, and every notification reaches its chat exactly once — unlike
  `kill -9` (test_delivery_kill.py), a graceful stop closes the sent-but-not-recorded window.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from shared.repo.outbox import queue_notification
from shared.settings import Settings
from tests.faults.harness import PlaygroundClient, Stack, at_least, eventually, none_left, scene

pytestmark = pytest.mark.faults

CHATS, PER_CHAT = 20, 10
N = CHATS * PER_CHAT
FIRST_CHAT = 750_000
OURS = "key LIKE 'faults:%'"
STOP_TIMEOUT_S = Settings(_env_file=None).worker_stop_timeout_ms / 1000


def text_of(index: int) -> str:
    return f"停止测试通知 #{index:04d}：下周一上午社区体检，请带身份证。"


@dataclass
class Outcome:
    sent_at_signal: int = 0
    in_hand_at_signal: int = 0          # rows `sending` when the signal was sent
    exit_code: int | None = None
    stop_seconds: float = 0.0
    sending_after_stop: int = 0
    pending_after_stop: int = 0
    statuses: dict = field(default_factory=dict)
    copies: Counter = field(default_factory=Counter)
    log: str = ""
    logs: str = ""


async def copies_in(playground: PlaygroundClient) -> Counter:
    copies: Counter = Counter()
    for chat in range(FIRST_CHAT, FIRST_CHAT + CHATS):
        copies.update(await playground.bot_texts(chat))
    return copies


async def scenario(stack: Stack) -> Outcome:
    outcome = Outcome()
    async with scene(stack, outcome) as parts:
        playground, db, broker = parts.playground, parts.db, parts.broker
        for chat in range(FIRST_CHAT, FIRST_CHAT + CHATS):
            await playground.user(chat, "居民")
        async with db.database.sessions() as session:
            ids = [await queue_notification(session, key=f"faults:stop:{i}", chat_id=FIRST_CHAT + i % CHATS,
                                            text=text_of(i)) for i in range(N)]
            await session.commit()
        first = await stack.start("deliver", "--threads", "8", DELIVERY_SCALE="1")
        await asyncio.to_thread(lambda: [send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=i))
                                         for i in ids])

        async def sent() -> int:
            return await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS} AND status = 'sent'")

        await eventually(lambda: at_least(sent, N // 4), timeout=60, interval=0.01, what="a quarter sent")
        outcome.in_hand_at_signal = await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS} AND status = 'sending'")
        outcome.sent_at_signal = await sent()
        started = time.monotonic()
        first.terminate()
        outcome.exit_code = await asyncio.to_thread(first.popen.wait, STOP_TIMEOUT_S + 15)
        outcome.stop_seconds = time.monotonic() - started
        outcome.log = first.log()
        outcome.sending_after_stop = await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS} AND status = 'sending'")
        outcome.pending_after_stop = await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS} AND status = 'pending'")

        await stack.start("deliver", "--threads", "8", DELIVERY_SCALE="1")
        await eventually(lambda: none_left(db, f"SELECT count(*) FROM outbox WHERE {OURS} AND status <> 'sent'"),
                         timeout=60, what="the rest of the batch sent by the second worker")
        outcome.statuses = dict(await db.rows(f"SELECT status, count(*) FROM outbox WHERE {OURS} GROUP BY status"))
        outcome.copies = await copies_in(playground)
        return outcome


@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    result = asyncio.run(scenario(stack))
    print(f"\ndelivery SIGTERM: {result.sent_at_signal}/{N} sent and {result.in_hand_at_signal} in hand at the "
          f"signal; exited {result.exit_code} after {result.stop_seconds:.1f}s; then {result.sending_after_stop} "
          f"sending, {result.pending_after_stop} pending; duplicates: "
          f"{sum(c - 1 for c in result.copies.values() if c > 1)}")
    return result


def test_the_signal_hit_the_batch(outcome: Outcome) -> None:
    assert outcome.sent_at_signal < N and outcome.pending_after_stop > 0, outcome.logs


def test_the_worker_stops_within_its_stop_timeout(outcome: Outcome) -> None:
    assert outcome.exit_code == 0, outcome.log[-3000:]
    assert outcome.stop_seconds < STOP_TIMEOUT_S + 5
    assert "worker stopping" in outcome.log


def test_nothing_is_left_claimed(outcome: Outcome) -> None:
    assert outcome.sending_after_stop == 0


def test_every_notification_delivered_exactly_once(outcome: Outcome) -> None:
    assert outcome.statuses == {"sent": N}
    assert {outcome.copies[text_of(i)] for i in range(N)} == {1}
