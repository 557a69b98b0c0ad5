"""kill -9 of the bot while residents' messages are being handled: none lost, none doubled.

Real processes: `linju bot` (polling the playground), `linju intake`, `linju deliver`,
`linju scheduler`, the playground, PostgreSQL, Redis. 60 onboarded residents write at once (one
message each); as soon as the first of those messages is stored as a request, the bot gets
SIGKILL — the rest are fetched from Telegram and in hand, not finished. Residents write 20 more
while no bot runs, and a new bot starts.

Checked afterwards:
- every message a resident sent is exactly one request (its key `tg:<chat>:<message>`): the
  updates the dead bot had in hand come back from Telegram because the bot confirms an update
  only once it has been handled (`services/bot/polling.py`; aiogram's own polling confirmed them
  at once, and this test lost them);
- every request is classified and its routed notice reaches the resident once;
- no resident got their number twice, and every one who got it has a stored request behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from dataclasses import dataclass, field

import pytest

from shared.config import load_communities
from shared.i18n import t
from shared.settings import REPO_ROOT
from tests.faults.harness import Stack, at_least, eventually, none_left, problem, scene

pytestmark = pytest.mark.faults

RESIDENTS = 760_000
BURST, WHILE_DOWN = 60, 20
ACK = t("zh", "report.ack", number="@").split("@")[0]
NUMBER = re.compile(r"[A-Z]{3}-\d{4}-\d{5}")


@dataclass
class Outcome:
    sent: list = field(default_factory=list)             # (chat, message_id)
    stored_at_kill: int = 0
    requests_per_message: Counter = field(default_factory=Counter)
    unclassified: int = 0
    acks: dict = field(default_factory=dict)              # chat -> numbers acknowledged
    stored_numbers: dict = field(default_factory=dict)    # chat -> numbers stored
    routed_notices: Counter = field(default_factory=Counter)  # number -> notices mentioning it
    logs: str = ""


async def scenario(stack: Stack) -> Outcome:
    outcome = Outcome()
    config = load_communities(REPO_ROOT / "config" / "communities.yaml")
    async with scene(stack, outcome) as parts:
        playground, db = parts.playground, parts.db
        await playground.seed(config)
        chats = [RESIDENTS + i for i in range(BURST + WHILE_DOWN)]
        for chat in chats:
            await playground.user(chat, "居民")
        await db.residents(chats, [c.code for c in config.communities])
        for service in ("intake", "deliver", "scheduler"):
            await stack.start(service)
        first = await stack.start("bot")

        async def write(chat: int, index: int) -> None:
            outcome.sent.append((chat, await playground.send(chat, problem(index))))

        async def stored() -> int:
            return await db.scalar("SELECT count(*) FROM requests")

        writing = asyncio.gather(*(write(chat, i) for i, chat in enumerate(chats[:BURST])))
        await eventually(lambda: at_least(stored, 1), timeout=30, interval=0.002, what="the first request stored")
        first.kill9()
        await writing
        outcome.stored_at_kill = await stored()
        await asyncio.gather(*(write(chat, BURST + i) for i, chat in enumerate(chats[BURST:])))

        await stack.start("bot")
        total = BURST + WHILE_DOWN
        with contextlib.suppress(AssertionError):  # what never arrives is counted below, message by message
            await eventually(lambda: at_least(stored, total), timeout=30, what="every message stored as a request")
        await eventually(lambda: none_left(db, "SELECT count(*) FROM requests WHERE status = 'received'"),
                         timeout=60, what="every request classified")
        await eventually(lambda: none_left(db, "SELECT count(*) FROM outbox WHERE request_id IS NOT NULL "
                                               "AND status <> 'sent'"), timeout=60, what="every notice sent")
        await asyncio.sleep(1.0)  # a late duplicate would arrive now

        keys = Counter(key for (key,) in await db.rows("SELECT idempotency_key FROM requests"))
        outcome.requests_per_message = Counter({(chat, message): keys.get(f"tg:{chat}:{message}", 0)
                                                for chat, message in outcome.sent})
        outcome.unclassified = await db.scalar("SELECT count(*) FROM requests WHERE status = 'received'")
        for number, chat in await db.rows("SELECT r.number, u.external_id FROM requests r "
                                          "JOIN users u ON u.id = r.user_id"):
            outcome.stored_numbers.setdefault(int(chat), []).append(number)
        for chat in chats:
            texts = await playground.bot_texts(chat)
            outcome.acks[chat] = [NUMBER.search(text).group(0) for text in texts if text.startswith(ACK)]
            own = set(outcome.stored_numbers.get(chat, []))
            for text in texts:
                if not text.startswith(ACK):  # a notice may also name another resident's similar request
                    for number in set(NUMBER.findall(text)) & own:
                        outcome.routed_notices[number] += 1
        return outcome


@pytest.fixture(scope="module")
def outcome(stack: Stack) -> Outcome:
    result = asyncio.run(scenario(stack))
    print(f"\nbot kill -9: {result.stored_at_kill} of {BURST} messages stored when the bot died; "
          f"requests per message {dict(Counter(result.requests_per_message.values()))}")
    return result


def test_the_kill_hit_messages_in_hand(outcome: Outcome) -> None:
    assert outcome.stored_at_kill < BURST, outcome.logs


def test_every_message_is_one_request(outcome: Outcome) -> None:
    assert len(outcome.sent) == BURST + WHILE_DOWN
    lost = [sent for sent, count in outcome.requests_per_message.items() if count == 0]
    doubled = [sent for sent, count in outcome.requests_per_message.items() if count > 1]
    assert not lost, f"{len(lost)} messages never became a request\n{outcome.logs}"
    assert not doubled


def test_every_request_is_routed_and_its_notice_arrives_once(outcome: Outcome) -> None:
    assert outcome.unclassified == 0
    numbers = [n for stored in outcome.stored_numbers.values() for n in stored]
    assert numbers and all(outcome.routed_notices[n] == 1 for n in numbers), outcome.routed_notices


def test_no_number_given_twice_or_without_a_request(outcome: Outcome) -> None:
    # Those who wrote while no bot ran were answered by the new one, each with their number.
    assert all(len(outcome.acks[chat]) == 1 for chat, _ in outcome.sent[BURST:]), outcome.acks
    for chat, acked in outcome.acks.items():
        assert len(acked) == len(set(acked)), chat
        assert set(acked) <= set(outcome.stored_numbers.get(chat, [])), chat
