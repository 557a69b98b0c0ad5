"""kill -9 of the delivery worker in the middle of a batch: every notification delivered; duplicates counted.

Real processes: `linju deliver` (twice), `linju scheduler`, the playground, PostgreSQL, Redis.
400 outbox rows (20 chats x 20, each text unique) are queued and `delivery.deliver_notification`
is enqueued for each. Mid-batch the worker is frozen (SIGSTOP), the database and the playground
are compared, and the worker is killed (SIGKILL) at a moment when at least one row has reached
the playground but is not yet marked sent: that window (HTTP answer → `mark_sent` commit) exists
on every send, and Telegram has no idempotency key to close it.

What happens next, and what the tests check:
- rows the dead worker had only prefetched come back through the broker (heartbeat timeout 2 s
  here) and are sent once;
- rows it had claimed stay `sending` until the lease of `shared.repo.outbox.SENDING_LEASE`
  (2 minutes) runs out: nothing is re-sent before that. The test then moves their `claimed_at`
  back by the lease instead of waiting two minutes, and the scheduler re-offers them;
- a claimed row that had already reached Telegram is then sent a second time: the duplicates
  are exactly those rows. "None twice" is therefore an expected failure (strict xfail).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from dataclasses import dataclass, field

import pytest

from shared.config import load_communities
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from shared.repo.outbox import SENDING_LEASE, queue_notification
from shared.settings import REPO_ROOT
from tests.faults.harness import Db, PlaygroundClient, Stack, at_least, eventually, none_left, scene, unacked

pytestmark = pytest.mark.faults

CHATS, PER_CHAT = 20, 20
N = CHATS * PER_CHAT
FIRST_CHAT = 730_000
OURS = "key LIKE 'faults:%'"  # the scheduler's own jobs may queue other rows meanwhile


def text_of(index: int) -> str:
    return f"故障测试通知 #{index:04d}：本周六上午九点社区议事会，请准时参加。"


@dataclass
class Outcome:
    sent_at_kill: int = 0
    looks: int = 0                      # SIGSTOP inspections until one showed a row in doubt
    first_look_in_doubt: int = 0        # rows sent-but-not-marked at the first (random) inspection
    first_look_sending: int = 0         # rows claimed at the first inspection
    sending_after_recovery: int = 0     # rows waiting for their lease after everything else was sent
    resent_before_lease: int = 0
    in_doubt: set = field(default_factory=set)       # rows that reached the playground but were still `sending`
    statuses: dict = field(default_factory=dict)
    copies: Counter = field(default_factory=Counter)  # text -> copies the playground received
    logs: str = ""


async def copies_in(playground: PlaygroundClient) -> Counter:
    copies: Counter = Counter()
    for chat in range(FIRST_CHAT, FIRST_CHAT + CHATS):
        copies.update(await playground.bot_texts(chat))
    return copies


async def sending_rows(db: Db) -> list[tuple[int, str, str]]:
    return [tuple(r) for r in await db.rows(f"SELECT id, chat_id, text FROM outbox WHERE {OURS} AND status = 'sending'")]


async def reached_playground(playground: PlaygroundClient, rows: list[tuple[int, str, str]]) -> set[int]:
    texts: dict[str, set[str]] = {}
    for chat in {chat for _, chat, _ in rows}:
        texts[chat] = set(await playground.bot_texts(chat))
    return {row_id for row_id, chat, text in rows if text in texts[chat]}


async def scenario(stack: Stack) -> Outcome:
    outcome = Outcome()
    async with scene(stack, outcome) as parts:
        playground, db, broker = parts.playground, parts.db, parts.broker
        await playground.seed(load_communities(REPO_ROOT / "config" / "communities.yaml"))
        for chat in range(FIRST_CHAT, FIRST_CHAT + CHATS):
            await playground.user(chat, "居民")
        ids = []
        async with db.database.sessions() as session:
            for index in range(N):
                ids.append(await queue_notification(session, key=f"faults:delivery:{index}",
                                                    chat_id=FIRST_CHAT + index % CHATS, text=text_of(index)))
            await session.commit()

        first = await stack.start("deliver", "--threads", "8")
        await asyncio.to_thread(lambda: [send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=i))
                                         for i in ids])

        async def sent() -> int:
            return await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS} AND status = 'sent'")

        await eventually(lambda: at_least(sent, N // 5), timeout=60, interval=0.005, what="a fifth of the batch sent")
        # Freeze, look, and kill at a moment when a row is in the sent-but-not-marked window.
        while True:
            first.signal(signal.SIGSTOP)
            outcome.looks += 1
            rows = await sending_rows(db)
            doubtful = await reached_playground(playground, rows)
            if outcome.looks == 1:
                outcome.first_look_in_doubt, outcome.first_look_sending = len(doubtful), len(rows)
            if doubtful or outcome.looks >= 300 or await sent() > N * 0.9:
                break
            first.signal(signal.SIGCONT)
            await asyncio.sleep(0.003)
        first.kill9()
        outcome.sent_at_kill = await sent()

        await stack.start("deliver", "--threads", "8")
        await stack.start("scheduler")

        async def only_leased_rows_left() -> bool:
            pending = await db.scalar(f"SELECT count(*) FROM outbox WHERE {OURS} AND status = 'pending'")
            held = await asyncio.to_thread(unacked, stack.redis_url, "delivery")
            return pending == 0 and held == 0

        await eventually(only_leased_rows_left, timeout=45, what="every unclaimed row to be sent")
        rows = await sending_rows(db)
        outcome.sending_after_recovery = len(rows)
        outcome.in_doubt = await reached_playground(playground, rows)
        copies = await copies_in(playground)
        outcome.resent_before_lease = sum(1 for _, _, text in rows if copies[text] > 1)

        # Two minutes pass for the leases (instead of waiting them out).
        await db.execute("UPDATE outbox SET claimed_at = claimed_at - make_interval(secs => :s) "
                         f"WHERE {OURS} AND status = 'sending'", s=SENDING_LEASE.total_seconds() + 1)
        await eventually(lambda: none_left(db, f"SELECT count(*) FROM outbox WHERE {OURS} AND status <> 'sent'"), timeout=30,
                         what="every row to be sent after its lease")
        outcome.statuses = dict(await db.rows(f"SELECT status, count(*) FROM outbox WHERE {OURS} GROUP BY status"))
        outcome.copies = await copies_in(playground)
        return outcome




@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    result = asyncio.run(scenario(stack))
    duplicates = sum(c - 1 for c in result.copies.values() if c > 1)
    print(f"\ndelivery kill -9: {result.sent_at_kill}/{N} sent at the kill; first look: "
          f"{result.first_look_in_doubt} of {result.first_look_sending} claimed rows already at Telegram; "
          f"looks until one in doubt: {result.looks}; {result.sending_after_recovery} rows waited for the lease, "
          f"{len(result.in_doubt)} of them already delivered; duplicates: {duplicates}")
    return result


def test_the_kill_hit_the_batch(outcome: Outcome) -> None:
    assert outcome.sent_at_kill < N
    assert outcome.sending_after_recovery > 0, outcome.logs


def test_every_notification_delivered(outcome: Outcome) -> None:
    assert outcome.statuses == {"sent": N}
    missing = [i for i in range(N) if outcome.copies[text_of(i)] == 0]
    assert not missing, f"never reached the playground: {missing}"


def test_claimed_rows_wait_for_their_lease(outcome: Outcome) -> None:
    # Nothing a dead worker had claimed is sent again before SENDING_LEASE has passed.
    assert outcome.resent_before_lease == 0


def test_duplicates_are_only_the_rows_in_doubt_at_the_kill(outcome: Outcome) -> None:
    texts = {text for text, count in outcome.copies.items() if count > 1}
    assert all(outcome.copies[t] <= 2 for t in texts)
    assert len(texts) == len(outcome.in_doubt)


@pytest.mark.xfail(strict=True, reason=(
    "at-least-once: a row the dead worker sent but had not yet marked sent is sent again when its "
    "lease ends; Telegram's sendMessage has no idempotency key, so the window can be narrowed, not closed "
    "(docs/reliability.md)"))
def test_no_notification_delivered_twice(outcome: Outcome) -> None:
    doubled = {text: count for text, count in outcome.copies.items() if count > 1}
    assert not doubled, f"{len(doubled)} notifications delivered twice"
