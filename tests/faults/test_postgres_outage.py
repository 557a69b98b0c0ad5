"""PostgreSQL unavailable for a few seconds: workers retry with backoff and succeed; the bot says it cannot.

The services reach PostgreSQL through a TCP proxy in the test process (`TcpProxy`); the real
server is never stopped (other tests use it). `down()` refuses new connections and resets the
open ones, which is what clients see when the server restarts; `up()` brings it back.

Real processes: `linju bot`, `linju intake`, `linju deliver`, `linju scheduler` (all through the
proxy), the playground, Redis. While the database is away for about 5 s:
- 20 requests are stored (directly, as the bot stored them just before) and queued for intake,
  and 10 notifications are queued for delivery: both workers fail, dramatiq retries them with
  backoff (min 500 ms, doubling), and all succeed once the database is back;
- a resident writes to the bot: it answers that it is temporarily unable to save the message;
- afterwards the same resident writes again and gets a number; no process has died.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from shared.config import load_communities
from shared.i18n import t
from shared.queue.contracts import CLASSIFY_REQUEST, DELIVER_NOTIFICATION, ClassifyRequest, DeliverNotification, send
from shared.repo.outbox import queue_notification
from shared.repo.requests import create_request
from shared.settings import REPO_ROOT
from tests.conftest import PG_HOST, PG_PORT
from tests.faults.harness import Stack, TcpProxy, copies_of_rows, eventually, mismatches, none_left, problem, scene

pytestmark = pytest.mark.faults

RESIDENTS = 750_000
K, NOTES = 20, 10
# Our notes and the notifications about requests (the scheduler's own jobs may queue others meanwhile).
OURS = "(key LIKE 'faults:%' OR request_id IS NOT NULL)"
NUMBER = re.compile(r"[A-Z]{3}-\d{4}-\d{5}")
ACK = t("zh", "report.ack", number="@").split("@")[0]
UNAVAILABLE = t("zh", "errors.unavailable")


@dataclass
class Outcome:
    outage_seconds: float = 0.0
    answer_in_outage: str | None = None
    answer_after: str | None = None
    recovered_seconds: float = 0.0
    decisions_per_request: Counter = field(default_factory=Counter)
    statuses: dict = field(default_factory=dict)
    copies: dict = field(default_factory=dict)        # (chat, text) -> (queued, received)
    retries: dict = field(default_factory=dict)       # service -> "Retrying message" lines
    dead: list = field(default_factory=list)          # processes that exited
    logs: str = ""


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.close()


async def next_answer(playground, chat: int, seen: int, timeout: float = 20.0) -> str:  # type: ignore[no-untyped-def]
    async def answer() -> str | None:
        texts = [m["text"] for m in await playground.messages(chat) if m["from_bot"] and m["message_id"] > seen]
        return next((text for text in texts if text.startswith(ACK) or text == UNAVAILABLE), None)

    return await eventually(answer, timeout=timeout, interval=0.1, what=f"the bot to answer in chat {chat}")


async def scenario(stack: Stack, proxy: TcpProxy) -> Outcome:
    outcome = Outcome()
    config = load_communities(REPO_ROOT / "config" / "communities.yaml")
    async with scene(stack, outcome) as parts:
        playground, db, broker = parts.playground, parts.db, parts.broker
        through_proxy = stack.database_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
        residents = [RESIDENTS + i for i in range(4)]
        await playground.seed(config)
        for chat in residents:
            await playground.user(chat, "居民")
        users = await db.residents(residents, [c.code for c in config.communities])
        procs = [await stack.start(service, DATABASE_URL=through_proxy)
                 for service in ("bot", "intake", "deliver", "scheduler")]

        # Warm-up: the whole path works through the proxy (and every service holds pooled connections).
        me = residents[0]
        await playground.send(me, problem(0))
        assert (await next_answer(playground, me, 0)).startswith(ACK)
        await eventually(lambda: none_left(db, f"SELECT count(*) FROM outbox WHERE status <> 'sent' AND {OURS}"), timeout=20,
                         what="the warm-up request to be routed and notified")

        proxy.down()
        went_down = time.monotonic()
        async with db.database.sessions() as session:
            request_ids = []
            for index in range(K):
                request, _ = await create_request(
                    session, community_code=config.communities[index % len(config.communities)].code,
                    user_id=users[residents[index % 4]], text=problem(100 + index),
                    idempotency_key=f"faults:pg:{index}")
                request_ids.append(request.id)
            note_ids = [await queue_notification(session, key=f"faults:pg:note:{i}", chat_id=residents[i % 4],
                                                 text=f"停水通知 #{i}：明天上午八点到十二点停水。") for i in range(NOTES)]
            await session.commit()
        await asyncio.to_thread(lambda: ([send(broker, CLASSIFY_REQUEST, ClassifyRequest(request_id=i))
                                          for i in request_ids],
                                         [send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=i))
                                          for i in note_ids]))
        writer = residents[1]
        seen = max([m["message_id"] for m in await playground.messages(writer)] or [0])
        await playground.send(writer, problem(1))
        outcome.answer_in_outage = await next_answer(playground, writer, seen, timeout=15)
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - went_down)))
        proxy.up()
        outcome.outage_seconds = time.monotonic() - went_down

        came_back = time.monotonic()
        await eventually(lambda: none_left(db, "SELECT (SELECT count(*) FROM requests WHERE status = 'received') "
                                               "+ (SELECT count(*) FROM outbox WHERE status <> 'sent' AND " + OURS + ")"),
                         timeout=60, interval=0.2, what="every request classified and every notification sent")
        outcome.recovered_seconds = time.monotonic() - came_back

        seen = max(m["message_id"] for m in await playground.messages(writer))
        await playground.send(writer, problem(2))
        outcome.answer_after = await next_answer(playground, writer, seen)
        await eventually(lambda: none_left(db, "SELECT (SELECT count(*) FROM requests WHERE status = 'received') "
                                               "+ (SELECT count(*) FROM outbox WHERE status <> 'sent' AND " + OURS + ")"),
                         timeout=30, what="the last request to be routed")

        rows = await db.rows("SELECT request_id, count(*) FROM request_events "
                             "WHERE kind IN ('routed', 'classified', 'redirected') GROUP BY request_id")
        outcome.decisions_per_request = Counter(dict(rows))
        outcome.statuses = dict(await db.rows("SELECT status, count(*) FROM requests GROUP BY status"))
        outcome.copies = await copies_of_rows(db, playground, OURS)
        outcome.retries = {p.name: p.count(r"Retrying message") for p in procs}
        outcome.dead = [f"{p.name}: exit {p.popen.returncode}" for p in procs if not p.alive()]
        return outcome


@pytest.fixture(scope="module")
def outcome(stack: Stack, proxy: TcpProxy) -> Outcome:
    result = asyncio.run(scenario(stack, proxy))
    print(f"\npostgres outage: down {result.outage_seconds:.1f}s; retries logged {result.retries}; everything "
          f"done {result.recovered_seconds:.1f}s after it came back; answer during the outage: "
          f"{(result.answer_in_outage or '')[:20]!r}")
    return result


def test_workers_retried_with_backoff_and_nobody_died(outcome: Outcome) -> None:
    assert outcome.outage_seconds >= 4.5
    assert outcome.retries["intake#1"] > 0, outcome.logs
    assert outcome.retries["deliver#1"] > 0, outcome.logs
    assert not outcome.dead, outcome.dead


def test_everything_queued_during_the_outage_is_done_once(outcome: Outcome) -> None:
    assert outcome.statuses.get("received", 0) == 0
    assert sum(outcome.statuses.values()) == K + 2
    assert set(outcome.decisions_per_request.values()) == {1}
    assert len(outcome.decisions_per_request) == K + 2
    assert not mismatches(outcome.copies), mismatches(outcome.copies)
    assert sum(queued for queued, _ in outcome.copies.values()) >= K + NOTES


def test_the_bot_says_it_cannot_save_then_works_again(outcome: Outcome) -> None:
    assert outcome.answer_in_outage == UNAVAILABLE
    assert outcome.answer_after is not None and outcome.answer_after.startswith(ACK)
