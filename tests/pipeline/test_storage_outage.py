"""Redis (conversation state) unreachable while residents write: no update is dropped unanswered.

The storages here are aiogram's real `RedisStorage`, pointed at a port nothing listens on (what
the bot sees while Redis restarts) or at the test Redis; the fault test
tests/faults/test_redis_restart.py does the same with real processes and a real restart.
"""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from sqlalchemy import func, select

from services.bot.app import create_dispatcher
from services.bot.storage import DegradingStorage
from shared.db.models import Request
from shared.i18n import t
from tests.pipeline.test_resident_request import RESIDENT, STAFF_CHAT_ZJY, onboard

NOWHERE = "redis://127.0.0.1:1/0"  # connection refused, like a Redis being restarted


async def stored_requests(db) -> int:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Request))


async def test_with_redis_down_a_request_is_still_stored_and_acknowledged(pipeline, db, config):
    p = pipeline
    await onboard(p)
    storage = DegradingStorage(RedisStorage.from_url(NOWHERE))
    p.dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=p.broker, storage=storage)
    await p.feed(p.updates.message(RESIDENT, "楼道的灯坏了，晚上看不见"))
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert p.telegram.sent(RESIDENT)[-1].text == t("zh", "report.ack", number=request.number)
    # A button press needs no stored state either.
    before = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.press(RESIDENT, "menu:requests"))
    assert len(p.telegram.sent(RESIDENT)) > before
    # The same message delivered again is still one request.
    await p.feed(p.updates.message(RESIDENT, "楼道的灯坏了，晚上看不见", message_id=4242))
    await p.feed(p.updates.message(RESIDENT, "楼道的灯坏了，晚上看不见", message_id=4242))
    assert await stored_requests(db) == 2
    await storage.close()


async def test_without_the_degrading_wrapper_the_last_line_still_answers(pipeline, db, config,
                                                                      unhandled_updates_expected):
    """aiogram's FSM middleware raises before our code: the dispatcher's error handler answers plainly."""
    p = pipeline
    await onboard(p)
    storage = RedisStorage.from_url(NOWHERE)
    p.dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=p.broker, storage=storage)
    await p.feed(p.updates.message(RESIDENT, "楼道的灯坏了"))
    assert p.telegram.sent(RESIDENT)[-1].text == t("zh", "errors.unavailable")
    await p.feed(p.updates.press(RESIDENT, "menu:requests"))
    assert p.telegram.sent(RESIDENT)[-1].text == t("zh", "errors.unavailable")
    # Never into a group: the error is answered to nobody there.
    before = len(p.telegram.sent(STAFF_CHAT_ZJY))
    await p.feed(p.updates.message(RESIDENT, "群里的一句话", chat_id=STAFF_CHAT_ZJY))
    assert len(p.telegram.sent(STAFF_CHAT_ZJY)) == before
    await storage.close()


async def test_unexpected_errors_get_a_plain_answer_and_no_personal_data_in_logs(pipeline, db, config, monkeypatch,
                                                                                 caplog, unhandled_updates_expected):
    import logging

    from services.bot.handlers import messages

    p = pipeline
    await onboard(p)

    async def broken(ctx, text, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError(f"a bug that quotes its input: {text}")

    monkeypatch.setattr(messages, "handle_text", broken)
    caplog.set_level(logging.INFO)
    await p.feed(p.updates.message(RESIDENT, "我的电话13912345678"))
    assert p.telegram.sent(RESIDENT)[-1].text == t("zh", "errors.unavailable")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__.get('error')} {r.exc_text or ''}"
                       for r in caplog.records if r.levelno >= logging.INFO)
    assert "update failed" in logged and "ValueError" in logged
    assert "13912345678" not in logged


async def test_degrading_storage_is_transparent_while_redis_answers(redis_url):
    storage = DegradingStorage(RedisStorage.from_url(redis_url))
    key = StorageKey(bot_id=42, chat_id=RESIDENT, user_id=RESIDENT)
    try:
        await storage.set_state(key, "report:behalf_name")
        await storage.set_data(key, {"await": "behalf_name"})
        assert await storage.get_state(key) == "report:behalf_name"
        assert await storage.update_data(key, {"behalf_name": "李奶奶"}) == {"await": "behalf_name",
                                                                              "behalf_name": "李奶奶"}
        assert await storage.get_data(key) == {"await": "behalf_name", "behalf_name": "李奶奶"}
    finally:
        await storage.set_state(key, None)
        await storage.set_data(key, {})
        await storage.close()


async def test_degrading_storage_answers_empty_while_redis_is_down():
    storage = DegradingStorage(RedisStorage.from_url(NOWHERE))
    key = StorageKey(bot_id=42, chat_id=RESIDENT, user_id=RESIDENT)
    await storage.set_state(key, "x")
    await storage.set_data(key, {"a": 1})
    assert await storage.get_state(key) is None
    assert await storage.get_data(key) == {}
    assert await storage.update_data(key, {"b": 2}) == {"b": 2}
    await storage.close()
