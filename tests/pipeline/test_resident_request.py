"""A resident's request travels bot → queue → intake → database → reply.

Runs on SQLite and PostgreSQL, with the in-process and the Redis broker.
"""

from __future__ import annotations

from sqlalchemy import func, select

from shared.db.models import OutboxMessage, Request, RequestEvent, User
from shared.queue.contracts import CLASSIFY_REQUEST, ClassifyRequest, send

RESIDENT = 501001
STAFF_CHAT_ZJY = -1001000000201


async def onboard(p, user_id: int = RESIDENT, community: str = "zjy") -> None:
    await p.feed(p.updates.message(user_id, "/start"))
    await p.feed(p.updates.press(user_id, "consent:yes"))
    await p.feed(p.updates.press(user_id, f"comm:{community}"))
    await p.feed(p.updates.press(user_id, "lang:zh"))


async def test_start_consent_community_language_menu(pipeline, db):
    p = pipeline
    await p.feed(p.updates.message(RESIDENT, "/start"))
    first = p.telegram.sent(RESIDENT)[-1]
    assert "个人信息" in first.text
    assert [b.callback_data for b in first.reply_markup.inline_keyboard[0]] == ["consent:yes", "consent:no"]
    await p.feed(p.updates.press(RESIDENT, "consent:yes"))
    communities = p.telegram.sent(RESIDENT)[-1]
    assert [row[0].callback_data for row in communities.reply_markup.inline_keyboard] == [
        "comm:cjx", "comm:zjy", "comm:nsm", "comm:yjy", "comm:zjz"]
    await p.feed(p.updates.press(RESIDENT, "comm:zjy"))
    await p.feed(p.updates.press(RESIDENT, "lang:zh"))
    menu = p.telegram.sent(RESIDENT)[-1]
    assert "张家园社区" in menu.text and menu.reply_markup is not None
    async with db.sessions() as session:
        user = await session.scalar(select(User).where(User.external_id == str(RESIDENT)))
        assert user.consent_at is not None and user.community_code == "zjy" and user.locale == "zh"


async def test_free_text_gets_a_number_then_the_routed_reply(pipeline, db):
    p = pipeline
    await onboard(p)
    before = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.message(RESIDENT, "楼道的灯坏了好几天了 晚上黑乎乎的"))
    ack = p.telegram.sent(RESIDENT)[before]
    assert "已收到您的诉求" in ack.text
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.number in ack.text and request.number.startswith("ZJY-")

    await p.wait_for(lambda: len(p.telegram.sent(RESIDENT)) >= before + 2)
    await p.drain()
    routed = p.telegram.sent(RESIDENT)[before + 1]
    assert request.number in routed.text and "已转交" in routed.text
    async with db.sessions() as session:
        request = await session.get(Request, request.id)
        kinds = list(await session.scalars(select(RequestEvent.kind).where(RequestEvent.request_id == request.id)
                                           .order_by(RequestEvent.id)))
        statuses = list(await session.scalars(select(OutboxMessage.status)))
    assert request.status == "routed" and request.category == "repair" and request.team == "property"
    assert request.due_at is not None
    assert kinds == ["received", "routed"]
    assert statuses == ["sent", "sent"]  # resident + staff group
    staff = p.telegram.sent(STAFF_CHAT_ZJY)
    assert len(staff) == 1 and request.number in staff[0].text


async def test_urgent_message_gives_emergency_numbers_and_alerts_staff(pipeline, db):
    p = pipeline
    await onboard(p)
    before = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.message(RESIDENT, "楼道里好大的煤气味 快来人"))
    await p.wait_for(lambda: len(p.telegram.sent(RESIDENT)) >= before + 2 and p.telegram.sent(STAFF_CHAT_ZJY))
    reply = p.telegram.sent(RESIDENT)[before + 1].text
    assert reply.index("119") < reply.index("已转交")
    assert "紧急" in p.telegram.sent(STAFF_CHAT_ZJY)[0].text
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.urgent


async def test_the_same_update_twice_makes_one_request_and_one_ack(pipeline, db):
    p = pipeline
    await onboard(p)
    before = len(p.telegram.sent(RESIDENT))
    update = p.updates.message(RESIDENT, "家里水管漏水了", message_id=4242)
    await p.feed(update)
    await p.feed(update)
    await p.drain()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 1
    texts = [m.text for m in p.telegram.sent(RESIDENT)[before:]]
    assert sum("已收到您的诉求" in t for t in texts) == 1


async def test_a_second_intake_message_changes_nothing(pipeline, db):
    p = pipeline
    await onboard(p)
    await p.feed(p.updates.message(RESIDENT, "小区垃圾桶满了没人清 臭死了"))
    await p.drain()
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
        events = await session.scalar(select(func.count()).select_from(RequestEvent))
        rows = await session.scalar(select(func.count()).select_from(OutboxMessage))
    sent = len(p.telegram.calls)
    send(p.broker, CLASSIFY_REQUEST, ClassifyRequest(request_id=request.id))
    await p.drain()
    async with db.sessions() as session:
        again = await session.get(Request, request.id)
        assert await session.scalar(select(func.count()).select_from(RequestEvent)) == events
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == rows
    assert (again.status, again.category, again.updated_at) == (request.status, request.category, request.updated_at)
    assert len(p.telegram.calls) == sent


async def test_text_before_consent_is_not_stored(pipeline, db):
    p = pipeline
    await p.feed(p.updates.message(RESIDENT, "路灯不亮"))
    assert "同意" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 0
