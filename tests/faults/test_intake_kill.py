"""kill -9 of the intake worker in the middle of a burst: every request classified exactly once in effect.

Real processes: `linju intake` (twice), `linju deliver`, `linju scheduler`, the playground, PostgreSQL, Redis.
Requests are stored as the bot stores them (`create_request`, status `received`) and
`intake.classify_request` is enqueued for each. The first intake worker is killed with SIGKILL
once a quarter of them are classified; a second worker is started. The dead worker's unacknowledged
messages come back through the Redis broker's heartbeat maintenance (BROKER_HEARTBEAT_TIMEOUT_MS=2000,
BROKER_MAINTENANCE_CHANCE=1000000 here), not through the scheduler, which is started only afterwards
for outbox rows whose delivery enqueue died with the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from shared.config import load_communities
from shared.queue.contracts import CLASSIFY_REQUEST, ClassifyRequest, send
from shared.settings import REPO_ROOT
from tests.faults.harness import (Db, Stack, at_least, copies_of_rows, eventually, mismatches, none_left, problem,
                                  scene, unacked)

pytestmark = pytest.mark.faults

N = 240
RESIDENTS = 720_000
# The notifications intake queued about the requests (the scheduler's own jobs may queue others meanwhile).
OURS = "request_id IS NOT NULL"
UNSENT = f"{OURS} AND status <> 'sent'"


@dataclass
class Outcome:
    classified_at_kill: int = 0
    unacked_of_dead_worker: int = 0
    recovered_seconds: float = 0.0
    left_received: int = 0
    decisions_per_request: Counter = field(default_factory=Counter)
    outbox_by_status: dict = field(default_factory=dict)
    outbox_keys: int = 0
    outbox_rows: int = 0
    copies: dict = field(default_factory=dict)       # (chat, text) -> (queued, received)
    bot_messages_per_chat: dict = field(default_factory=dict)
    resident_messages: dict = field(default_factory=dict)
    pending_before_scheduler: int = 0
    logs: str = ""


async def scenario(stack: Stack) -> Outcome:
    outcome = Outcome()
    config = load_communities(REPO_ROOT / "config" / "communities.yaml")
    async with scene(stack, outcome) as parts:
        playground, db, broker = parts.playground, parts.db, parts.broker
        await playground.seed(config)
        telegram_ids = [RESIDENTS + i for i in range(N)]
        for telegram_id in telegram_ids:
            await playground.user(telegram_id, "居民")
        users = await db.residents(telegram_ids, [c.code for c in config.communities])

        from shared.repo.requests import create_request

        request_ids = []
        async with db.database.sessions() as session:
            for index, telegram_id in enumerate(telegram_ids):
                request, _ = await create_request(
                    session, community_code=config.communities[index % len(config.communities)].code,
                    user_id=users[telegram_id], text=problem(index), idempotency_key=f"faults:intake:{index}")
                request_ids.append(request.id)

        await stack.start("deliver")
        first = await stack.start("intake", "--threads", "4")

        def enqueue_all() -> None:
            for request_id in request_ids:
                send(broker, CLASSIFY_REQUEST, ClassifyRequest(request_id=request_id))

        await asyncio.to_thread(enqueue_all)

        async def classified() -> int:
            return await db.scalar("SELECT count(*) FROM requests WHERE status <> 'received'")

        await eventually(lambda: at_least(classified, N // 4), timeout=60, interval=0.005,
                         what="a quarter of the burst to be classified")
        first.kill9()
        outcome.classified_at_kill = await classified()
        outcome.unacked_of_dead_worker = await asyncio.to_thread(unacked, stack.redis_url, "intake")

        second = await stack.start("intake", "--threads", "4")
        started = time.monotonic()
        await eventually(lambda: at_least(classified, N), timeout=45, interval=0.1,
                         what="every request to leave `received` (dead worker's messages redelivered)")
        outcome.recovered_seconds = time.monotonic() - started

        # Rows the dead worker committed but never enqueued for delivery stay pending: the scheduler's job.
        outcome.pending_before_scheduler = await _settled(db, f"SELECT count(*) FROM outbox WHERE {UNSENT}")
        await stack.start("scheduler")
        await eventually(lambda: none_left(db, f"SELECT count(*) FROM outbox WHERE {UNSENT}"), timeout=45,
                         what="every notification to be sent")

        outcome.left_received = await db.scalar("SELECT count(*) FROM requests WHERE status = 'received'")
        rows = await db.rows("SELECT request_id, count(*) FROM request_events "
                             "WHERE kind IN ('routed', 'classified', 'redirected') GROUP BY request_id")
        outcome.decisions_per_request = Counter({request_id: count for request_id, count in rows})
        for request_id in request_ids:
            outcome.decisions_per_request.setdefault(request_id, 0)
        outcome.outbox_by_status = dict(await db.rows(
            f"SELECT status, count(*) FROM outbox WHERE {OURS} GROUP BY status"))
        outcome.outbox_rows = await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS}")
        outcome.outbox_keys = await db.scalar(f"SELECT count(DISTINCT key) FROM outbox WHERE {OURS}")
        outcome.copies = await copies_of_rows(db, playground, OURS)
        stats = await playground.stats()
        outcome.bot_messages_per_chat = {chat: c["from_bot"] for chat, c in stats["messages_per_chat"].items()}
        outcome.resident_messages = {str(t): outcome.bot_messages_per_chat.get(str(t), 0) for t in telegram_ids}
        assert second.alive(), second.tail()
        return outcome




async def _settled(db: Db, sql: str, quiet: float = 1.5, limit: float = 15.0) -> int:
    """The value of `sql` once it has stopped changing for `quiet` seconds."""
    value, since, started = await db.scalar(sql), time.monotonic(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() - started < limit and value:
        await asyncio.sleep(0.1)
        current = await db.scalar(sql)
        if current != value:
            value, since = current, time.monotonic()
    return value



@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    result = asyncio.run(scenario(stack))
    print(f"\nintake kill -9: {result.classified_at_kill}/{N} classified at the kill, "
          f"{result.unacked_of_dead_worker} messages unacknowledged by the dead worker, all classified "
          f"{result.recovered_seconds:.1f}s after the restart; {result.pending_before_scheduler} notifications "
          f"left for the scheduler")
    return result


def test_the_kill_hit_the_burst(outcome: Outcome) -> None:
    """The fault really happened mid-flight: work was left, and the dead worker held messages."""
    assert outcome.classified_at_kill < N, "the burst was over before the kill; make it bigger"
    assert outcome.unacked_of_dead_worker > 0, outcome.logs


def test_every_request_classified_exactly_once(outcome: Outcome) -> None:
    assert outcome.left_received == 0
    doubled = {r: c for r, c in outcome.decisions_per_request.items() if c != 1}
    assert not doubled, f"requests without exactly one intake decision: {doubled}"


def test_dead_workers_messages_came_back_promptly(outcome: Outcome) -> None:
    # Heartbeat timeout 2 s in the test: well under the production 60 s.
    assert outcome.recovered_seconds < 30


def test_every_notification_sent_once(outcome: Outcome) -> None:
    assert outcome.outbox_keys == outcome.outbox_rows
    assert outcome.outbox_by_status == {"sent": outcome.outbox_rows}
    # Every resident heard exactly once about their request (routed, or asked to choose).
    assert set(outcome.resident_messages.values()) == {1}, Counter(outcome.resident_messages.values())
    # Every notification (to residents, staff groups, volunteers) reached its chat exactly once.
    assert not mismatches(outcome.copies), mismatches(outcome.copies)
