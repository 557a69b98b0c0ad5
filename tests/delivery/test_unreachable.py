"""A person who blocked the bot: marked unreachable on the first 403, not tried again until they write.

Real PostgreSQL and Redis, the playground as Telegram (its users can "block the bot": sends to
them answer `403 Forbidden: bot was blocked by the user`), the real delivery worker, and for the
person's return the real dispatcher and middleware.
"""

from __future__ import annotations

import asyncio

from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import SendMessage
from dramatiq.brokers.stub import StubBroker

from services.bot.app import create_dispatcher
from services.bot.delivery import UNREACHABLE, Deliverer
from shared.db.models import User
from shared.repo.users import find_user, get_or_create_user
from shared.settings import Settings
from tests.delivery.conftest import enqueue, limits, people, queue_rows, wait_rows, worker
from tests.delivery.test_delivery import SCALE, settings_for, stats
from tests.fakes import RecordingSession, Updates, recording_bot


async def person(pg, chat: int) -> User:  # type: ignore[no-untyped-def]
    async with pg.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(chat))
        await session.commit()
        return user


async def unreachable_since(pg, chat: int):  # type: ignore[no-untyped-def]
    async with pg.sessions() as session:
        return (await find_user(session, "telegram", str(chat))).unreachable_since


def sends(body: dict) -> int:
    return body["api_calls"].get("sendMessage", 0)


async def test_a_blocked_person_costs_one_403_then_none_until_they_write_again(start, pg, postgres_url, broker,
                                                                               namespace, config) -> None:
    playground = await start(rate_limits=True, scale=SCALE)
    blocked, fine = 720_001, 720_002
    await playground.post("/playground/api/users", {"id": blocked, "first_name": "拉黑了", "blocked": True})
    await people(playground, [fine])
    await person(pg, blocked)
    await person(pg, fine)
    async with worker(broker, settings_for(postgres_url, playground.base), limits(SCALE, namespace)):
        first = await queue_rows(pg, [blocked], "第一条通知")
        await asyncio.to_thread(enqueue, broker, first)
        found = await wait_rows(pg, first)
        assert found[first[0]].status == "failed" and "Forbidden" in found[first[0]].last_error
        assert await unreachable_since(pg, blocked) is not None
        calls = sends(await stats(playground))
        assert calls == 1

        # Later notifications, and the same one enqueued twice: failed at once, Telegram not asked.
        later = await queue_rows(pg, [blocked, blocked, blocked, fine], "后来的通知")
        await asyncio.to_thread(enqueue, broker, later + later)
        found = await wait_rows(pg, later)
        assert [found[i].status for i in later] == ["failed", "failed", "failed", "sent"]
        assert {found[i].last_error for i in later[:3]} == {UNREACHABLE}
        assert all(found[i].attempts == 1 for i in later)
        assert sends(await stats(playground)) == calls + 1  # the one to the reachable person only
        assert await unreachable_since(pg, fine) is None

        # They unblock the bot and write to it: the flag is cleared and notifications reach them again.
        await playground.post("/playground/api/users", {"id": blocked, "first_name": "拉黑了", "blocked": False})
        bot, _ = recording_bot()
        dispatcher = create_dispatcher(config=config, sessions=pg.sessions, broker=StubBroker())
        await dispatcher.feed_update(bot, Updates().message(blocked, "/start"))
        assert await unreachable_since(pg, blocked) is None
        again = await queue_rows(pg, [blocked], "又能收到了")
        await asyncio.to_thread(enqueue, broker, again)
        found = await wait_rows(pg, again)
    assert found[again[0]].status == "sent"
    messages = (await playground.get("/playground/api/messages", chat_id=blocked))["messages"]
    assert [m["text"] for m in messages if m["from_bot"]] == ["又能收到了 #0"]


class RefusingSession(RecordingSession):
    """Telegram refusing every send with 403 (a group that removed the bot, a person who blocked it)."""

    async def make_request(self, bot, method, timeout=None):  # type: ignore[no-untyped-def]
        if isinstance(method, SendMessage):
            self.calls.append(method)
            raise TelegramForbiddenError(method=method, message="Forbidden: bot was kicked from the group chat")
        return await super().make_request(bot, method, timeout)


async def test_a_403_in_a_group_marks_no_person(pg, postgres_url) -> None:
    """A group's 403 fails the row; nobody becomes unreachable (a group id is nobody's user id)."""
    from aiogram import Bot

    group = -1001000000301
    async with pg.sessions() as session:  # a user row whose id happens to equal the group's: not touched
        await get_or_create_user(session, "telegram", str(group))
        await session.commit()
    session = RefusingSession()
    deliverer = Deliverer(Settings(database_url=postgres_url, redis_url=None, broker="stub", _env_file=None),
                          StubBroker(), bot=Bot("42:TEST", session=session))
    ids = await queue_rows(pg, [group, group])
    assert [await deliverer.deliver(i) for i in ids] == ["failed", "failed"]
    assert len(session.calls) == 2  # each tried: a group is not a person
    assert await unreachable_since(pg, group) is None
    await deliverer.close()
