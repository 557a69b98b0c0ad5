"""Telegram answering 429, 5xx and 403: delivery waits, retries, and gives up only on permanent refusals.

Real processes: `linju deliver`, `linju scheduler`, the playground with flood limits on
(`--rate-limits --scale 0.5`: 15 messages/s for the bot, one per 2 s per chat after a burst of 3),
PostgreSQL, Redis; between the worker and the playground an HTTP proxy answers the first five
sends with 502 Bad Gateway. Delivery's own limiter is set 200 times looser than the playground
(DELIVERY_SCALE=100), as if Telegram throttled below its documented limits, so the playground's
429s reach the worker.

56 notifications: one to each of 40 residents, a second one to 8 of them, 6 to one resident
(more than a chat's burst of 3), and 2 to a resident who blocked the bot (403). The first 403
marks that resident unreachable; 3 notifications queued to them afterwards are marked failed
without a request to Telegram.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from services.bot.delivery import UNREACHABLE
from shared.repo.outbox import queue_notification
from shared.repo.users import get_or_create_user
from tests.faults.harness import FlakyTelegram, Stack, eventually, scene

pytestmark = pytest.mark.faults

SCALE = 0.5
FIRST = 760_000
CHATS = 40
BUSY_CHAT, BUSY_ROWS = FIRST + CHATS, 6
BLOCKED = FIRST + CHATS + 1
LATER_TO_BLOCKED = 3  # queued once the blocked resident is marked unreachable
FAILURES_5XX = 5
OURS = "key LIKE 'faults:%'"  # the scheduler's own jobs may queue other rows meanwhile


@dataclass
class Outcome:
    rows: dict = field(default_factory=dict)            # id -> (chat, text, status, attempts, last_error)
    copies: Counter = field(default_factory=Counter)    # (chat, text) -> copies received
    too_many_requests: int = 0
    attempts: dict = field(default_factory=dict)        # (chat, text) -> sends that reached Telegram
    postponed: list = field(default_factory=list)       # ((chat, text), retry_after) followed by another attempt
    early: list = field(default_factory=list)           # attempts sooner than retry_after allowed
    retried_5xx: int = 0
    answered_502: int = 0
    blocked_attempts_later: list = field(default_factory=list)
    blocked_marked_unreachable: bool = False
    blocked_sends_first: int = 0                         # sends to the blocked chat that reached Telegram
    later_to_blocked: list = field(default_factory=list)  # (status, attempts, last_error) of rows queued after
    blocked_sends_later: int = 0
    logs: str = ""


async def scenario(stack: Stack) -> Outcome:
    outcome = Outcome()
    async with scene(stack, outcome, rate_limits=True, scale=SCALE) as parts:
        playground, db, broker = parts.playground, parts.db, parts.broker
        flaky = FlakyTelegram(playground.base, FAILURES_5XX)
        parts.at_exit(flaky.close)
        for chat in range(FIRST, BUSY_CHAT + 1):
            await playground.user(chat, "居民")
        await playground.user(BLOCKED, "拉黑了机器人的居民", blocked=True)
        async with db.database.sessions() as session:  # the blocked resident is someone the bot knows
            await get_or_create_user(session, "telegram", str(BLOCKED))
            await session.commit()
        plan = [(FIRST + i, f"通知 {i}：明天停水") for i in range(CHATS)]
        plan += [(BUSY_CHAT, f"通知 忙 {i}：活动提醒") for i in range(BUSY_ROWS)]
        plan += [(FIRST + i, f"通知 再 {i}：活动提醒") for i in range(8)]
        plan += [(BLOCKED, f"通知 拉黑 {i}") for i in range(2)]
        async with db.database.sessions() as session:
            ids = [await queue_notification(session, key=f"faults:tg:{i}", chat_id=chat, text=text)
                   for i, (chat, text) in enumerate(plan)]
            await session.commit()

        deliver = await stack.start("deliver", "--threads", "8", TELEGRAM_API_BASE=flaky.base)
        await stack.start("scheduler", TELEGRAM_API_BASE=flaky.base)
        await asyncio.to_thread(lambda: [send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=i))
                                         for i in ids])

        async def done() -> bool:
            return await db.scalar(f"SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending') AND {OURS}") == 0

        await eventually(done, timeout=60, interval=0.2, what="every notification sent or failed for good")
        blocked_before = await db.rows("SELECT id, attempts FROM outbox WHERE chat_id = :c ORDER BY id",
                                       c=str(BLOCKED))
        # A failed row must stay failed: give the scheduler (tick 0.5 s) a few ticks to prove it leaves it alone.
        await asyncio.sleep(2.0)
        blocked_after = await db.rows("SELECT id, attempts FROM outbox WHERE chat_id = :c ORDER BY id",
                                      c=str(BLOCKED))
        outcome.blocked_attempts_later = [tuple(r) for r in blocked_after if tuple(r) not in
                                          {tuple(b) for b in blocked_before}]
        outcome.blocked_marked_unreachable = await db.scalar(
            "SELECT unreachable_since IS NOT NULL FROM users WHERE external_id = :c", c=str(BLOCKED))
        outcome.blocked_sends_first = sum(1 for send_ in flaky.sends if send_[1] == str(BLOCKED))

        # Later notifications to the person who blocked the bot: not one more request to Telegram.
        async with db.database.sessions() as session:
            later = [await queue_notification(session, key=f"faults:tg:later:{i}", chat_id=BLOCKED,
                                              text=f"通知 拉黑以后 {i}") for i in range(LATER_TO_BLOCKED)]
            await session.commit()
        await asyncio.to_thread(lambda: [send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=i))
                                         for i in later])
        await eventually(done, timeout=30, interval=0.2, what="the later notifications to be settled")
        outcome.later_to_blocked = [tuple(r) for r in await db.rows(
            "SELECT status, attempts, last_error FROM outbox WHERE key LIKE 'faults:tg:later:%' ORDER BY id")]
        outcome.blocked_sends_later = sum(1 for send_ in flaky.sends if send_[1] == str(BLOCKED)) \
            - outcome.blocked_sends_first

        for row in await db.rows(f"SELECT id, chat_id, text, status, attempts, last_error FROM outbox WHERE {OURS} "
                                 "AND key NOT LIKE 'faults:tg:later:%'"):
            outcome.rows[row[0]] = tuple(row[1:])
        for chat in {chat for chat, _ in plan}:
            for text in await playground.bot_texts(chat):
                outcome.copies[(str(chat), text)] += 1
        outcome.too_many_requests = (await playground.stats())["too_many_requests"]
        outcome.answered_502 = flaky.failed

        # Per notification, in the order the proxy saw them: every attempt after a 429 must come
        # retry_after seconds after that answer (20 ms of tolerance for clocks and scheduling).
        attempts: dict[tuple[str, str], list[tuple[float, int, float, float]]] = defaultdict(list)
        for arrived, chat, text, status, retry_after, answered in flaky.sends:
            attempts[(chat, text)].append((arrived, status, retry_after, answered))
        outcome.attempts = {key: len(value) for key, value in attempts.items()}
        for key, seen in attempts.items():
            seen.sort()
            for (_, status, retry_after, answered), (next_arrived, *_rest) in zip(seen, seen[1:]):
                if status == 429:
                    outcome.postponed.append((key, retry_after))
                    if next_arrived < answered + retry_after - 0.02:
                        outcome.early.append((key, round(next_arrived - answered, 3), retry_after))
        outcome.retried_5xx = deliver.count(r"Retrying message")
        return outcome


@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Iterator[Outcome]:
    result = asyncio.run(scenario(stack))
    print(f"\ntelegram errors: {result.too_many_requests} answers 429, {len(result.postponed)} postponements "
          f"followed by another attempt, {len(result.early)} too early; {result.answered_502} answers 502, "
          f"{result.retried_5xx} dramatiq retries; statuses "
          f"{dict(Counter(status for _, _, status, _, _ in result.rows.values()))}; the blocked resident: "
          f"{result.blocked_sends_first} answers 403, then {result.blocked_sends_later} requests for "
          f"{len(result.later_to_blocked)} later notifications")
    yield result


def test_the_faults_happened(outcome: Outcome) -> None:
    assert outcome.too_many_requests > 0
    assert outcome.postponed, outcome.logs
    assert outcome.answered_502 == FAILURES_5XX


def test_every_notification_to_a_reachable_chat_is_delivered_once(outcome: Outcome) -> None:
    reachable = {i: row for i, row in outcome.rows.items() if row[0] != str(BLOCKED)}
    assert {row[2] for row in reachable.values()} == {"sent"}
    for chat, text, *_ in reachable.values():
        assert outcome.copies[(chat, text)] == 1, (chat, text)


def test_delivery_waits_retry_after(outcome: Outcome) -> None:
    assert not outcome.early, f"attempts before retry_after had passed: {outcome.early}"


def test_5xx_is_retried_with_backoff(outcome: Outcome) -> None:
    assert outcome.retried_5xx >= FAILURES_5XX


def test_a_blocked_user_is_given_up_on_not_retried_forever(outcome: Outcome) -> None:
    blocked = [row for row in outcome.rows.values() if row[0] == str(BLOCKED)]
    assert len(blocked) == 2
    forbidden = 0
    for chat, text, status, attempts, last_error in blocked:
        assert status == "failed"
        assert attempts == 1
        if "Forbidden" in (last_error or ""):
            forbidden += 1
            assert outcome.attempts[(chat, text)] == 1  # one request to Telegram, no retry
        else:  # the first 403 marked the person before this one was tried
            assert last_error == UNREACHABLE and (chat, text) not in outcome.attempts
    assert forbidden >= 1 and outcome.blocked_sends_first == forbidden
    assert not outcome.blocked_attempts_later
    assert not [key for key in outcome.copies if key[0] == str(BLOCKED)]


def test_a_blocked_user_is_marked_unreachable_and_costs_no_more_403s(outcome: Outcome) -> None:
    assert outcome.blocked_marked_unreachable
    assert outcome.later_to_blocked == [("failed", 1, UNREACHABLE)] * LATER_TO_BLOCKED
    assert outcome.blocked_sends_later == 0
