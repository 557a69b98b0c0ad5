"""Requests from report to follow-up, through the real bot code: staff triage, resident timeline, 回访."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared.clock import utcnow
from shared.db.models import OutboxMessage, Request, RequestEvent
from shared.repo.users import get_or_create_user, give_consent, grant_role
from shared.sweeps import followup_sweep, sla_sweep
from tests.pipeline.test_resident_request import RESIDENT, STAFF_CHAT_ZJY, onboard

STAFF = 600001
OTHER_STAFF = 600002   # staff of zjy too
CJX_STAFF = 600003     # staff of another community
STAFF_CHAT_CJX = -1001000000101


async def make_staff(db, telegram_id: int, community: str) -> None:
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(telegram_id), display_name=f"staff{telegram_id}")
        give_consent(user)
        user.community_code = community
        grant_role(user, "staff")
        await session.commit()


async def report(p, db, text: str, user_id: int = RESIDENT) -> Request:
    await p.feed(p.updates.message(user_id, text))
    await p.drain()
    async with db.sessions() as session:
        return (await session.scalars(select(Request).order_by(Request.id.desc()))).first()


def texts(p, chat_id: int, since: int = 0) -> str:
    return "\n".join(m.text for m in p.telegram.sent(chat_id)[since:])


def buttons(message) -> list[str]:
    markup = message.reply_markup
    return [b.callback_data for row in (markup.inline_keyboard if markup else []) for b in row]


async def events(db, request_id: int) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(RequestEvent.kind).where(RequestEvent.request_id == request_id)
                                          .order_by(RequestEvent.id)))


@pytest.fixture
async def people(pipeline, db):
    await onboard(pipeline)
    await make_staff(db, STAFF, "zjy")
    await make_staff(db, OTHER_STAFF, "zjy")
    await make_staff(db, CJX_STAFF, "cjx")
    return pipeline


async def test_from_report_to_rating(people, db):
    p = people
    request = await report(p, db, "楼道的灯坏了好几天了")
    card = p.telegram.sent(STAFF_CHAT_ZJY)[-1]
    assert request.number in card.text
    assert f"st:take:{request.id}" in buttons(card) and f"st:res:{request.id}" in buttons(card)

    n = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.press(STAFF, f"st:take:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    assert "已受理" in texts(p, RESIDENT, n)
    assert "已受理" in texts(p, STAFF)  # the presser is told privately

    await p.feed(p.updates.press(STAFF, f"st:reply:{request.id}", chat_id=STAFF_CHAT_ZJY))
    assert "请输入要回复给居民的内容" in texts(p, STAFF)
    n = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.message(STAFF, "明天上午电工上门换灯泡"))
    await p.drain()
    reply = p.telegram.sent(RESIDENT)[n]
    assert "明天上午电工上门换灯泡" in reply.text and "张家园社区" in reply.text
    assert buttons(reply) == [f"ans:{request.id}"]

    await p.feed(p.updates.press(RESIDENT, f"ans:{request.id}"))
    n = len(p.telegram.sent(STAFF))
    await p.feed(p.updates.message(RESIDENT, "好的 我上午在家"))
    await p.drain()
    assert "我上午在家" in texts(p, STAFF, n)  # the assignee gets the answer privately

    n = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.press(STAFF, f"st:res:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    question = p.telegram.sent(RESIDENT)[n]
    assert buttons(question) == [f"fu:{request.id}:yes", f"fu:{request.id}:no"]
    await p.feed(p.updates.press(RESIDENT, f"fu:{request.id}:yes"))
    await p.drain()
    assert buttons(p.telegram.sent(RESIDENT)[-1]) == [f"rate:{request.id}:{i}" for i in range(1, 6)]
    await p.feed(p.updates.press(RESIDENT, f"rate:{request.id}:5"))
    await p.feed(p.updates.message(RESIDENT, "电工师傅很耐心"))
    async with db.sessions() as session:
        done = await session.get(Request, request.id)
    assert (done.status, done.rating, done.solved) == ("closed", 5, True)
    assert done.first_response_at is not None and done.resolved_at is not None
    assert await events(db, request.id) == ["received", "routed", "taken", "staff_reply", "resident_reply",
                                            "resolved", "solved", "rated", "commented"]
    # The comment did not open a new request.
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 1

    # The resident's timeline, in plain words.
    await p.feed(p.updates.press(RESIDENT, f"req:{request.id}"))
    timeline = p.telegram.sent(RESIDENT)[-1].text
    for words in ("收到诉求", "工作人员已受理", "社区回复：明天上午电工上门换灯泡", "已办结", "您的评分：5 分"):
        assert words in timeline


async def test_not_solved_reopens_and_tells_the_team(people, db):
    p = people
    request = await report(p, db, "小区垃圾桶满了没人清")
    await p.feed(p.updates.press(STAFF, f"st:res:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    n = len(p.telegram.sent(STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(RESIDENT, f"fu:{request.id}:no"))
    await p.drain()
    assert "没有解决" in texts(p, STAFF_CHAT_ZJY, n)
    assert "重新打开" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        assert (await session.get(Request, request.id)).status == "in_progress"
    # Pressing the old buttons again changes nothing.
    await p.feed(p.updates.press(RESIDENT, f"fu:{request.id}:no"))
    await p.feed(p.updates.press(RESIDENT, f"rate:{request.id}:1"))
    async with db.sessions() as session:
        again = await session.get(Request, request.id)
    assert (again.status, again.rating) == ("in_progress", None)
    assert (await events(db, request.id)).count("reopened") == 1


async def test_take_twice_is_refused_and_notifies_once(people, db):
    p = people
    request = await report(p, db, "水管爆了 楼道全是水")
    await p.feed(p.updates.press(STAFF, f"st:take:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(OTHER_STAFF, f"st:take:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    assert "做不了" in texts(p, OTHER_STAFF)
    assert sum("已受理" in m.text for m in p.telegram.sent(RESIDENT)) == 1
    async with db.sessions() as session:
        taken = await session.get(Request, request.id)
    assert taken.assignee_id is not None and (await events(db, request.id)).count("taken") == 1


async def test_forged_staff_actions_change_nothing(people, db):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    before = await events(db, request.id)
    forged = [
        (RESIDENT, f"st:take:{request.id}"), (RESIDENT, f"st:res:{request.id}"), (RESIDENT, f"stc:{request.id}:safety"),
        (CJX_STAFF, f"st:take:{request.id}"), (CJX_STAFF, f"st:reply:{request.id}"), (CJX_STAFF, f"stm:{request.id}:cjx"),
        (CJX_STAFF, f"st:view:{request.id}"), (STAFF, f"stc:{request.id}:nolabel"), (STAFF, f"stm:{request.id}:xyz"),
        (STAFF, f"st:hack:{request.id}"), (STAFF, "st:take:999999"), (CJX_STAFF, f"req:{request.id}"),
        (CJX_STAFF, f"fu:{request.id}:yes"), (CJX_STAFF, f"wdy:{request.id}"), (STAFF, f"rate:{request.id}:5"),
    ]
    for user, data in forged:
        n = len(p.telegram.sent(user))
        await p.feed(p.updates.press(user, data, chat_id=STAFF_CHAT_ZJY if user != RESIDENT else None))
        answer = texts(p, user, n)
        assert any(w in answer for w in ("只有本社区", "没有权限", "失效", "做不了")), (user, data, answer)
    await p.drain()
    assert await events(db, request.id) == before
    async with db.sessions() as session:
        same = await session.get(Request, request.id)
    assert (same.status, same.category, same.community_code, same.assignee_id) == ("routed", "repair", "zjy", None)
    # A staff member of another community cannot look it up by number either.
    await p.feed(p.updates.message(CJX_STAFF, f"/request {request.number}"))
    assert "没有找到" in p.telegram.sent(CJX_STAFF)[-1].text
    await p.feed(p.updates.message(RESIDENT, "/queue"))
    assert "没有权限" in p.telegram.sent(RESIDENT)[-1].text


async def test_staff_cannot_make_themselves_staff_of_another_community(people, db):
    """Staff act for the community an administrator gave them (`linju users promote … --community`).
    A community button — stale from onboarding, or forged — does not move them, so it cannot make
    them staff of another community's requests (found by the hostile-input property test)."""
    p = people
    neighbour = 501888
    await onboard(p, neighbour, "cjx")
    theirs = await report(p, db, "小区门口的路灯不亮了", user_id=neighbour)
    history = await events(db, theirs.id)
    await p.feed(p.updates.message(STAFF, "/start"))
    assert not [b for b in buttons(p.telegram.sent(STAFF)[-1]) if b.startswith("comm:")]
    for data in ("comm:cjx", "comm:nsm"):
        n = len(p.telegram.sent(STAFF))
        await p.feed(p.updates.press(STAFF, data))
        assert "管理员" in texts(p, STAFF, n), data
    await p.feed(p.updates.press(STAFF, "comm:zjy"))   # their own community: nothing changes, nothing refused
    async with db.sessions() as session:
        staff = await get_or_create_user(session, "telegram", str(STAFF))
        assert staff.community_code == "zjy"
    for data in (f"st:take:{theirs.id}", f"st:res:{theirs.id}", f"stm:{theirs.id}:zjy"):
        await p.feed(p.updates.press(STAFF, data, chat_id=STAFF_CHAT_ZJY))
        assert "只有本社区" in p.telegram.sent(STAFF)[-1].text, data
    await p.drain()
    async with db.sessions() as session:
        same = await session.get(Request, theirs.id)
    assert (same.status, same.community_code, same.assignee_id) == ("routed", "cjx", None)
    assert await events(db, theirs.id) == history
    # Residents still move freely: their community only decides where their next request goes.
    await p.feed(p.updates.press(RESIDENT, "comm:cjx"))
    async with db.sessions() as session:
        assert (await get_or_create_user(session, "telegram", str(RESIDENT))).community_code == "cjx"


async def test_change_category_and_reassign(people, db):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    await p.feed(p.updates.press(STAFF, f"st:cat:{request.id}", chat_id=STAFF_CHAT_ZJY))
    assert f"stc:{request.id}:safety" in buttons(p.telegram.sent(STAFF)[-1])
    n = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.press(STAFF, f"stc:{request.id}:safety", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    assert "安全隐患" in texts(p, RESIDENT, n)
    await p.feed(p.updates.press(STAFF, f"stm:{request.id}:cjx", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    assert request.number in texts(p, STAFF_CHAT_CJX)
    async with db.sessions() as session:
        moved = await session.get(Request, request.id)
    assert (moved.community_code, moved.category, moved.status) == ("cjx", "safety", "routed")
    assert "reassigned" in await events(db, request.id)
    # Now it belongs to cjx: zjy staff can no longer act, cjx staff can.
    await p.feed(p.updates.press(STAFF, f"st:take:{request.id}", chat_id=STAFF_CHAT_ZJY))
    assert "只有本社区" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.press(CJX_STAFF, f"st:take:{request.id}", chat_id=STAFF_CHAT_CJX))
    assert "已受理" in p.telegram.sent(CJX_STAFF)[-1].text


async def test_withdraw_and_add_information(people, db):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    await p.feed(p.updates.press(RESIDENT, f"add:{request.id}"))
    n = len(p.telegram.sent(STAFF_CHAT_ZJY))
    await p.feed(p.updates.message(RESIDENT, "是三单元二楼那盏"))
    await p.drain()
    assert "三单元二楼" in texts(p, STAFF_CHAT_ZJY, n)
    await p.feed(p.updates.press(RESIDENT, f"wd:{request.id}"))
    assert buttons(p.telegram.sent(RESIDENT)[-1]) == [f"wdy:{request.id}"]
    await p.feed(p.updates.press(RESIDENT, f"wdy:{request.id}"))
    await p.feed(p.updates.press(RESIDENT, f"wdy:{request.id}"))  # a second tap
    await p.drain()
    assert "撤回" in texts(p, STAFF_CHAT_ZJY, n)
    assert await events(db, request.id) == ["received", "routed", "info_added", "withdrawn"]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 1


async def test_private_categories_stay_out_of_group_chats(people, db):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    await p.feed(p.updates.press(STAFF, f"stc:{request.id}:legal_aid", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    n = len(p.telegram.sent(STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(RESIDENT, f"add:{request.id}"))
    await p.feed(p.updates.message(RESIDENT, "老板拖欠我三个月工资"))
    await p.drain()
    group = texts(p, STAFF_CHAT_ZJY, n)
    assert request.number in group and "拖欠" not in group and "隐私" in group
    # The staff member who opens it privately sees the details.
    await p.feed(p.updates.press(STAFF, f"st:reply:{request.id}", chat_id=STAFF_CHAT_ZJY))
    assert "楼道的灯坏了" in texts(p, STAFF)


async def test_group_card_hides_private_text(config):
    from shared.db.models import Request as R
    from shared.flows.cards import staff_card

    request = R(number="CJX-2026-00001", community_code="cjx", text="邻居家漏水打架了", category="mediation",
                team="mediation", status="routed", urgent=False)
    assert "漏水" not in staff_card(config, request, "zh", in_group=True).text
    assert "漏水" in staff_card(config, request, "zh", in_group=False).text


async def test_two_staff_replying_at_once_do_not_mix(people, db):
    p = people
    first = await report(p, db, "楼道的灯坏了")
    second = await report(p, db, "小区垃圾没人清")
    await p.feed(p.updates.press(STAFF, f"st:reply:{first.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(OTHER_STAFF, f"st:reply:{second.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.message(OTHER_STAFF, "垃圾车下午来"))
    await p.feed(p.updates.message(STAFF, "电工明天来"))
    await p.drain()
    async with db.sessions() as session:
        rows = list(await session.execute(select(RequestEvent.request_id, RequestEvent.data)
                                          .where(RequestEvent.kind == "staff_reply")))
    replies = {request_id: data["text"] for request_id, data in rows}
    assert replies == {first.id: "电工明天来", second.id: "垃圾车下午来"}


async def test_queue_mine_and_request_commands(people, db):
    p = people
    first = await report(p, db, "楼道的灯坏了")
    second = await report(p, db, "小区垃圾没人清")
    await p.feed(p.updates.message(STAFF, "/queue"))
    listing = p.telegram.sent(STAFF)[-1]
    assert buttons(listing) == [f"st:view:{first.id}", f"st:view:{second.id}"]  # oldest first
    await p.feed(p.updates.message(STAFF, "/mine"))
    assert "还没有" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.press(STAFF, f"st:take:{second.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.message(STAFF, "/mine"))
    assert buttons(p.telegram.sent(STAFF)[-1]) == [f"st:view:{second.id}"]
    await p.feed(p.updates.message(STAFF, f"/request {first.number.lower()}"))
    assert first.number in p.telegram.sent(STAFF)[-1].text and "灯坏了" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.message(STAFF, "/request nonsense"))
    assert "用法" in p.telegram.sent(STAFF)[-1].text


async def test_sla_reminder_then_escalation_once(people, db, config):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    due = request.due_at
    async with db.sessions() as session:
        assert await sla_sweep(session, config, due - timedelta(minutes=1)) == []
        reminded = await sla_sweep(session, config, due + timedelta(minutes=1))
        again = await sla_sweep(session, config, due + timedelta(minutes=2))
        escalated = await sla_sweep(session, config, due + timedelta(hours=config.defaults.sla_escalate_after_hours, minutes=1))
        later = await sla_sweep(session, config, due + timedelta(days=3))
        await session.commit()
    assert len(reminded) == 1 and again == [] and len(escalated) == 1 and later == []
    assert (await events(db, request.id))[-2:] == ["sla_reminder", "sla_escalated"]


async def test_followup_reminder_then_closed_unrated(people, db, config):
    p = people
    request = await report(p, db, "楼道的灯坏了")
    await p.feed(p.updates.press(STAFF, f"st:res:{request.id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    now = utcnow()
    async with db.sessions() as session:
        assert await followup_sweep(session, config, now + timedelta(days=1)) == []
        reminders = await followup_sweep(session, config, now + timedelta(days=3, hours=1))
        assert await followup_sweep(session, config, now + timedelta(days=4)) == []
        await followup_sweep(session, config, now + timedelta(days=6, hours=1))
        await session.commit()
        closed = await session.get(Request, request.id)
        keys = list(await session.scalars(select(OutboxMessage.key).where(OutboxMessage.request_id == request.id)))
    assert len(reminders) == 1 and closed.status == "closed" and closed.rating is None
    assert sum("followup_reminder" in k for k in keys) == 1
    assert (await events(db, request.id))[-2:] == ["followup_reminder", "closed_unrated"]
