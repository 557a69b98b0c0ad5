"""/mydata, /forgetme, flood control, and every handler fed hostile input through the real bot code."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from services.bot.app import create_dispatcher
from shared.flows import actions
from shared.db.models import Request, RequestEvent, User
from shared.privacy import ERASED
from shared.stats import category_stats
from shared.clock import utcnow
from datetime import timedelta
from tests.pipeline.test_request_handling import STAFF, STAFF_CHAT_ZJY, people, report  # noqa: F401 - fixture
from tests.pipeline.test_resident_request import RESIDENT, onboard

NASTY = [
    "", " ", "\u200b\u200c\u200d", "\u202e\u202dabc", "😀" * 50, "🙂", "\x00\x01\x02", "a" * 4097, "灯" * 5000,
    "<script>alert(1)</script>", "'; DROP TABLE users; --", "{number}{text}%s%d", "/start@other_bot", "/",
    "مرحبا بالعالم", "שלום", "ＺＪＹ－２０２６－０００４２", "\n\n\n", "\t", "ZJY-2026-00001", "👍🏽‍♀️",
]


async def counts(db) -> tuple[int, int, int]:
    async with db.sessions() as session:
        return (await session.scalar(select(func.count()).select_from(Request)),
                await session.scalar(select(func.count()).select_from(RequestEvent)),
                await session.scalar(select(func.count()).select_from(User)))


async def test_mydata_shows_everything_and_forgetme_erases_it(people, db, config):
    p = people
    request = await report(p, db, "我家电话13912345678 楼道灯坏了")
    await p.feed(p.updates.message(RESIDENT, "/mydata"))
    dump = "\n".join(m.text for m in p.telegram.sent(RESIDENT)[-3:])
    assert "13912345678" in dump and request.number in dump and '"community": "zjy"' in dump
    await p.feed(p.updates.message(RESIDENT, "/forgetme"))
    assert p.telegram.sent(RESIDENT)[-1].reply_markup is not None
    await p.feed(p.updates.press(RESIDENT, "fm:no"))
    async with db.sessions() as session:
        assert (await session.get(Request, request.id)).text != ERASED
    await p.feed(p.updates.press(RESIDENT, "fm:yes"))
    assert "已删除" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        erased = await session.get(Request, request.id)
        user = await session.get(User, erased.user_id)
        stats = await category_stats(session, "zjy", utcnow() - timedelta(days=1), utcnow() + timedelta(minutes=1))
        leftovers = [e.data for e in await session.scalars(select(RequestEvent)) if "13912345678" in str(e.data)]
    assert erased.text == ERASED and erased.category == "repair" and erased.status == "routed"
    assert user.display_name is None and user.consent_at is None and user.external_id.startswith("forgotten:")
    assert stats["repair"].received == 1 and leftovers == []
    # Coming back starts afresh with the consent question.
    await p.feed(p.updates.message(RESIDENT, "/start"))
    assert "个人信息" in p.telegram.sent(RESIDENT)[-1].text


async def test_flood_control_refuses_politely(pipeline, db, config):
    p = pipeline
    p.dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=p.broker, max_requests_per_hour=3)
    await onboard(p)
    for i in range(3):
        await p.feed(p.updates.message(RESIDENT, f"第{i}个问题 楼道灯坏了"))
    await p.drain()                                    # the three routed replies are out
    for i in range(3, 5):
        await p.feed(p.updates.message(RESIDENT, f"第{i}个问题 楼道灯坏了"))
        assert "这一小时" in p.telegram.sent(RESIDENT)[-1].text
    await p.drain()
    assert (await counts(db))[0] == 3


async def test_every_handler_survives_hostile_input(people, db):
    p = people
    rng = random.Random(20261128)
    await report(p, db, "楼道的灯坏了")
    before = await counts(db)
    for text in NASTY:
        for user, chat in ((RESIDENT, None), (STAFF, None), (STAFF, STAFF_CHAT_ZJY)):
            n = len(p.telegram.sent(chat or user))
            await p.feed(p.updates.message(user, text, chat_id=chat))
            if chat is None and text != "/start@other_bot":  # a command for another bot is not ours to answer
                assert len(p.telegram.sent(user)) > n, repr(text)  # always a reply in private chat
    for _ in range(200):
        verb = rng.choice(list(actions.VERBS))
        args = [rng.choice(["1", "999999", "0", "-1", "zjy", "cjx", "yes", "no", "claim", "take", "x" * 30, "", "其他"])
                for _ in range(rng.randint(0, 3))]
        data = ":".join([verb, *args])[:64]
        n = len(p.telegram.sent(RESIDENT))
        await p.feed(p.updates.press(RESIDENT, data))
        assert len(p.telegram.sent(RESIDENT)) >= n  # answered or safely ignored, never an exception
    await p.drain()
    after = await counts(db)
    # Hostile text from the resident may open requests only when it has words; nothing else grew oddly.
    async with db.sessions() as session:
        texts = list(await session.scalars(select(Request.text)))
    assert after[2] == before[2]
    assert all(t and len(t) <= 4096 for t in texts)
