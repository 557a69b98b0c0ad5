"""Duplicates, reporting for a neighbour, outside referral, announcements and statistics."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from shared.clock import utcnow
from shared.db.models import Announcement, OutboxMessage, Referral, Request
from shared.sweeps import referral_sweep
from tests.pipeline.test_request_handling import (
    CJX_STAFF, STAFF, STAFF_CHAT_ZJY, buttons, events, people, report, texts,  # noqa: F401 - fixture
)
from tests.pipeline.test_resident_request import RESIDENT, onboard

NEIGHBOUR = 501002


async def test_a_similar_open_request_is_offered_and_followed(people, db):
    p = people
    first = await report(p, db, "3单元楼道灯坏了 晚上看不见")
    await onboard(p, NEIGHBOUR)
    n = len(p.telegram.sent(NEIGHBOUR))
    second = await report(p, db, "三单元楼道的灯坏了好几天", user_id=NEIGHBOUR)
    offer = p.telegram.sent(NEIGHBOUR)[n + 1]
    assert first.number in offer.text and buttons(offer) == [f"dup:{second.id}:{first.id}"]
    # Someone else cannot press it; the owner can, once.
    await p.feed(p.updates.press(RESIDENT, f"dup:{second.id}:{first.id}"))
    assert "没有权限" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(NEIGHBOUR, f"dup:{second.id}:{first.id}"))
    await p.feed(p.updates.press(NEIGHBOUR, f"dup:{second.id}:{first.id}"))
    await p.drain()
    async with db.sessions() as session:
        closed = await session.get(Request, second.id)
    assert (closed.status, closed.duplicate_of_id) == ("closed", first.id)
    # The follower hears about the request they follow.
    n = len(p.telegram.sent(NEIGHBOUR))
    await p.feed(p.updates.press(STAFF, f"st:reply:{first.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.message(STAFF, "电工下午到"))
    await p.drain()
    assert "电工下午到" in texts(p, NEIGHBOUR, n) and first.number in texts(p, NEIGHBOUR, n)


async def test_staff_merge_duplicates(people, db):
    p = people
    first = await report(p, db, "小区门口垃圾堆满了")
    await onboard(p, NEIGHBOUR)
    second = await report(p, db, "东门那边垃圾没人收", user_id=NEIGHBOUR)
    await p.feed(p.updates.message(CJX_STAFF, f"/merge {second.number} {first.number}"))
    assert "没有找到" in p.telegram.sent(CJX_STAFF)[-1].text  # another community's staff
    await p.feed(p.updates.message(STAFF, "/merge nonsense"))
    assert "用法" in p.telegram.sent(STAFF)[-1].text
    n = len(p.telegram.sent(NEIGHBOUR))
    await p.feed(p.updates.message(STAFF, f"/merge {second.number} {first.number}"))
    await p.drain()
    assert "合并" in texts(p, NEIGHBOUR, n)
    await p.feed(p.updates.message(STAFF, f"/merge {second.number} {first.number}"))
    assert "无法" in p.telegram.sent(STAFF)[-1].text
    assert "merged_into" in await events(db, second.id)


async def test_reporting_for_a_neighbour(people, db):
    p = people
    await p.feed(p.updates.press(RESIDENT, "menu:behalf"))
    assert "替谁反映" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "😀"))
    assert "称呼" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "3号楼2单元 李奶奶"))
    await p.feed(p.updates.message(RESIDENT, "   "))  # still waiting for the problem
    await p.feed(p.updates.message(RESIDENT, "李奶奶家的水管漏水了她腿脚不好"))
    await p.drain()
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.on_behalf_name == "3号楼2单元 李奶奶" and request.user_id is not None
    assert "李奶奶" in texts(p, STAFF_CHAT_ZJY)
    # The next message is an ordinary request of the reporter again.
    await p.feed(p.updates.message(RESIDENT, "楼道灯也坏了"))
    async with db.sessions() as session:
        latest = (await session.scalars(select(Request).order_by(Request.id.desc()))).first()
    assert latest.on_behalf_name is None


async def test_outside_referral_is_chased_until_answered(people, db, config):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    await p.feed(p.updates.press(STAFF, f"st:ref:{request.id}", chat_id=STAFF_CHAT_ZJY))
    assert f"stf:{request.id}:power" in buttons(p.telegram.sent(STAFF)[-1])
    await p.feed(p.updates.press(STAFF, f"stf:{request.id}:nobody", chat_id=STAFF_CHAT_ZJY))
    assert "失效" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.press(STAFF, f"stf:{request.id}:power", chat_id=STAFF_CHAT_ZJY))
    n = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.message(STAFF, "GD-2026-1187"))
    await p.drain()
    assert "供电公司" in texts(p, RESIDENT, n) and "GD-2026-1187" in texts(p, RESIDENT, n)
    async with db.sessions() as session:
        referral = (await session.scalars(select(Referral))).one()
        deadline = referral.deadline
        assert await referral_sweep(session, config, deadline - timedelta(hours=1)) == []
        first = await referral_sweep(session, config, deadline + timedelta(hours=1))
        same_day = await referral_sweep(session, config, deadline + timedelta(hours=2))
        next_day = await referral_sweep(session, config, deadline + timedelta(days=1, hours=2))
        await session.commit()
    assert len(first) == 1 and same_day == [] and len(next_day) == 1
    await p.feed(p.updates.press(STAFF, f"st:refok:{request.id}", chat_id=STAFF_CHAT_ZJY))
    async with db.sessions() as session:
        assert await referral_sweep(session, config, deadline + timedelta(days=5)) == []
    assert "referral_answered" in await events(db, request.id)
    assert (await session_status(db, request.id)) == "routed"  # still open until the team resolves it
    await p.feed(p.updates.press(RESIDENT, f"req:{request.id}"))
    assert "转交供电公司处理" in p.telegram.sent(RESIDENT)[-1].text


async def session_status(db, request_id: int) -> str:
    async with db.sessions() as session:
        return (await session.get(Request, request_id)).status


async def test_announcement_with_confirmation_and_report(people, db):
    p = people
    await onboard(p, NEIGHBOUR)
    await p.feed(p.updates.message(RESIDENT, "/announce"))
    assert "没有权限" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(STAFF, "/announce"))
    await p.feed(p.updates.message(STAFF, "明天上午9点到12点停水 请提前储水"))
    confirm = p.telegram.sent(STAFF)[-1]
    assert buttons(confirm) == ["ann:yes", "ann:no"]
    recipients = int("".join(ch for ch in confirm.text.split("位")[0] if ch.isdigit()))
    await p.feed(p.updates.press(STAFF, "ann:yes"))
    await p.feed(p.updates.press(STAFF, "ann:yes"))  # a second tap sends nothing more
    await p.drain()
    assert "停水" in p.telegram.sent(RESIDENT)[-1].text and "停水" in p.telegram.sent(NEIGHBOUR)[-1].text
    async with db.sessions() as session:
        announcement = (await session.scalars(select(Announcement))).one()
        rows = list(await session.scalars(select(OutboxMessage.status).where(OutboxMessage.batch == f"announcement:{announcement.id}")))
    assert announcement.recipients == recipients == len(rows) and set(rows) == {"sent"}
    from shared.announcements import report_sweep
    async with db.sessions() as session:
        reported = await report_sweep(session, utcnow())
        assert await report_sweep(session, utcnow()) == []
        await session.commit()
    assert len(reported) == 1


async def test_stats_for_staff(people, db):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    await p.feed(p.updates.press(STAFF, f"st:res:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(RESIDENT, f"fu:{request.id}:yes"))
    await p.feed(p.updates.press(RESIDENT, f"rate:{request.id}:4"))
    await p.feed(p.updates.message(STAFF, "/stats"))
    week = p.telegram.sent(STAFF)[-2].text
    assert "近7天" in week and "设施报修：收到 1 · 办结 1" in week and "按时 100%" in week and "满意度 4.0" in week
    await p.feed(p.updates.message(RESIDENT, "/stats"))
    assert "没有权限" in p.telegram.sent(RESIDENT)[-1].text
