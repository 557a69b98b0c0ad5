"""Webhook secret, storage outages, bad input, forged callbacks, the scheduler's re-enqueue, privacy of logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from services.bot.app import create_dispatcher
from services.bot.main import WEBHOOK_PATH, create_webhook_app
from services.scheduler.jobs import requeue_stuck_requests
from shared.clock import utcnow
from shared.db.models import Request
from shared.repo.requests import create_request
from shared.repo.users import get_or_create_user
from shared.runtime import Database
from shared.settings import Settings
from tests.fakes import Updates, recording_bot
from tests.pipeline.test_resident_request import RESIDENT, onboard


async def test_webhook_checks_the_secret_token(db, config, broker):
    bot, telegram = recording_bot()
    dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=broker)
    app = create_webhook_app(bot, dispatcher, "s3cret")
    update = Updates().message(RESIDENT, "/start").model_dump(mode="json", exclude_none=True)
    async with TestClient(TestServer(app)) as client:
        forged = await client.post(WEBHOOK_PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
        assert forged.status == 401
        assert telegram.sent(RESIDENT) == []
        real = await client.post(WEBHOOK_PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
        assert real.status == 200
        assert (await client.get("/healthz")).status == 200
        for _ in range(200):  # the handler answers Telegram first, then works in the background
            if telegram.sent(RESIDENT):
                break
            await asyncio.sleep(0.01)
    assert "个人信息" in telegram.sent(RESIDENT)[0].text


async def test_database_down_gets_a_plain_answer(config, broker):
    bot, telegram = recording_bot()
    down = Database.connect(Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", _env_file=None))
    dispatcher = create_dispatcher(config=config, sessions=down.sessions, broker=broker)
    await dispatcher.feed_update(bot, Updates().message(RESIDENT, "楼道灯坏了"))
    assert "暂时" in telegram.sent(RESIDENT)[-1].text
    await down.close()


async def test_bad_input_is_answered_kindly_and_stores_nothing(pipeline, db):
    p = pipeline
    await onboard(p)
    for text in ["   ", "\u200b\u200b", "😀😀😀", "？？？", "\u202e\u202e"]:
        before = len(p.telegram.sent(RESIDENT))
        await p.feed(p.updates.message(RESIDENT, text))
        assert "文字" in p.telegram.sent(RESIDENT)[before].text, text
    huge = "灯" * 5000
    await p.feed(p.updates.message(RESIDENT, huge))
    assert "太长" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 0
    # Odd but real text is accepted as is: injection-looking, RTL, mixed scripts.
    await p.feed(p.updates.message(RESIDENT, "'; DROP TABLE requests; -- 楼道灯坏了 مرحبا"))
    async with db.sessions() as session:
        stored = (await session.scalars(select(Request))).one()
    assert stored.text.startswith("'; DROP TABLE requests;")


async def test_forged_callbacks_change_nothing(pipeline, db):
    p = pipeline
    await onboard(p)
    await p.feed(p.updates.message(RESIDENT, "楼道灯坏了"))
    await p.drain()
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
        status = request.status
    intruder = 777001
    await onboard(p, intruder)
    # Someone else's request, a label that does not exist, a community that does not exist, garbage.
    for data in [f"cat:{request.id}:safety", f"cat:{request.id}:nonsense", "comm:xyz", "lang:fr", "cat:abc:repair", "x" * 64]:
        before = len(p.telegram.sent(intruder))
        await p.feed(p.updates.press(intruder, data))
        reply = "\n".join(m.text for m in p.telegram.sent(intruder)[before:])
        assert ("权限" in reply) or ("失效" in reply) or ("没有找到" in reply), (data, reply)
    # The owner cannot re-route a request intake already routed.
    await p.feed(p.updates.press(RESIDENT, f"cat:{request.id}:safety"))
    async with db.sessions() as session:
        again = await session.get(Request, request.id)
        intruder_user = await get_or_create_user(session, "telegram", str(intruder))
    assert (again.status, again.category) == (status, request.category)
    assert intruder_user.community_code == "zjy" and intruder_user.locale == "zh"


async def test_scheduler_re_enqueues_a_request_whose_enqueue_was_lost(pipeline, db):
    p = pipeline
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(RESIDENT))
        user.community_code = "zjy"
        await session.commit()
        request, _ = await create_request(session, community_code="zjy", user_id=user.id, text="水管漏水",
                                          idempotency_key="lost-enqueue")
        await session.execute(update(Request).where(Request.id == request.id)
                              .values(created_at=utcnow() - timedelta(minutes=5)))
        await session.commit()
    assert await requeue_stuck_requests(db, p.broker, older_than_seconds=30) == 1
    await p.drain()
    async with db.sessions() as session:
        assert (await session.get(Request, request.id)).status == "routed"
    assert await requeue_stuck_requests(db, p.broker, older_than_seconds=30) == 0


async def test_no_personal_data_in_logs_at_info(pipeline, caplog):
    p = pipeline
    caplog.set_level(logging.INFO)
    await onboard(p)
    secret_text = "我家电话13912345678 楼道灯坏了"
    await p.feed(p.updates.message(RESIDENT, secret_text, first_name="王秀英"))
    await p.drain()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.levelno >= logging.INFO)
    assert "request stored" in logged  # the log is there …
    for secret in ("13912345678", "楼道灯坏了", "王秀英"):
        assert secret not in logged  # … without the person's data
