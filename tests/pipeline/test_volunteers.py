"""Volunteers through the real bot code: registration and approval, offers, exactly-once claims, hours."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared import volunteering
from shared.clock import as_utc, utcnow
from shared.db.models import OutboxMessage, Request, Task, User, Volunteer
from shared.repo import tasks as task_repo
from shared.repo.users import get_or_create_user, give_consent, grant_role
from shared.sweeps import recognition_sweep, task_sweep
from tests.pipeline.test_request_handling import (
    CJX_STAFF, STAFF, STAFF_CHAT_CJX, STAFF_CHAT_ZJY, buttons, make_staff, people, report, texts,  # noqa: F401 - fixture
)
from tests.pipeline.test_resident_request import RESIDENT, onboard

VOLUNTEER_CHAT_ZJY = -1001000000202
HELPER, OTHER_HELPER, CJX_HELPER = 700001, 700002, 700003
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def approved_volunteer(db, telegram_id: int, community: str, *, skills=("companionship", "errands"),
                             phone: str | None = None, named: bool = True) -> int:
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(telegram_id), display_name=f"v{telegram_id}")
        give_consent(user)
        user.community_code = community
        grant_role(user, "volunteer")
        session.add(Volunteer(user_id=user.id, name=f"志愿者{telegram_id % 100}", community_code=community,
                              skills=list(skills), days=ALL_DAYS, parts=["am", "pm", "eve"], phone=phone,
                              share_phone=phone is not None, named_in_recognition=named, status="approved"))
        await session.commit()
        return user.id


@pytest.fixture
async def crew(people, db):
    await approved_volunteer(db, HELPER, "zjy", phone="13800001111")
    await approved_volunteer(db, OTHER_HELPER, "zjy")
    await approved_volunteer(db, CJX_HELPER, "cjx")
    return people


async def only_task(db) -> Task:
    async with db.sessions() as session:
        return (await session.scalars(select(Task))).one()


async def test_registration_and_approval(people, db):
    p = people
    await p.feed(p.updates.message(RESIDENT, "/volunteer"))
    await p.feed(p.updates.message(RESIDENT, "王秀英"))
    skills = p.telegram.sent(RESIDENT)[-1]
    assert "vs:companionship" in buttons(skills) and "vs:done" in buttons(skills)
    await p.feed(p.updates.press(RESIDENT, "vs:done"))
    assert "至少" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(RESIDENT, "vs:companionship"))
    await p.feed(p.updates.press(RESIDENT, "vs:nonsense"))
    await p.feed(p.updates.press(RESIDENT, "vs:done"))
    for code in ("sat", "sun", "am", "pm"):
        await p.feed(p.updates.press(RESIDENT, f"va:{code}"))
    await p.feed(p.updates.press(RESIDENT, "va:done"))
    await p.feed(p.updates.message(RESIDENT, "12"))
    assert "不对" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "138-0000-2222"))
    await p.feed(p.updates.press(RESIDENT, "vn:no"))
    await p.drain()
    assert "审核" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        volunteer = (await session.scalars(select(Volunteer))).one()
    assert (volunteer.name, volunteer.skills, volunteer.days, volunteer.parts, volunteer.phone, volunteer.status) == (
        "王秀英", ["companionship"], ["sat", "sun"], ["am", "pm"], "13800002222", "pending")
    card = p.telegram.sent(STAFF_CHAT_ZJY)[-1]
    assert "王秀英" in card.text and "13800002222" not in card.text
    decide = f"vol:ok:{volunteer.user_id}"
    assert decide in buttons(card)
    for intruder in (RESIDENT, CJX_STAFF):
        await p.feed(p.updates.press(intruder, decide, chat_id=STAFF_CHAT_ZJY))
        assert "只有本社区" in texts(p, intruder).splitlines()[-1]
    await p.feed(p.updates.press(STAFF, decide, chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(STAFF, f"vol:no:{volunteer.user_id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    assert "已经处理过" in p.telegram.sent(STAFF)[-1].text
    assert "通过" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        assert (await session.get(Volunteer, volunteer.user_id)).status == "approved"
        assert "volunteer" in (await session.get(User, volunteer.user_id)).roles


async def test_an_approval_does_not_follow_a_volunteer_to_another_community(crew, db):
    """An approved zjy volunteer who moves to cjx and registers again waits for cjx's staff to approve
    them: zjy's approval does not carry over, and zjy's staff cannot decide for cjx."""
    p = crew
    await p.feed(p.updates.message(HELPER, "/start"))
    await p.feed(p.updates.press(HELPER, "comm:cjx"))
    await p.feed(p.updates.message(HELPER, "/volunteer"))
    await p.feed(p.updates.message(HELPER, "李建国"))
    await p.feed(p.updates.press(HELPER, "vs:errands"))
    await p.feed(p.updates.press(HELPER, "vs:done"))
    await p.feed(p.updates.press(HELPER, "va:sat"))
    await p.feed(p.updates.press(HELPER, "va:am"))
    await p.feed(p.updates.press(HELPER, "va:done"))
    await p.feed(p.updates.press(HELPER, "vp:skip"))
    await p.feed(p.updates.press(HELPER, "vn:yes"))
    await p.drain()
    assert "审核" in p.telegram.sent(HELPER)[-1].text
    async with db.sessions() as session:
        helper = await get_or_create_user(session, "telegram", str(HELPER))
        volunteer = await session.get(Volunteer, helper.id)
        assert (volunteer.community_code, volunteer.status) == ("cjx", "pending")
    card = p.telegram.sent(STAFF_CHAT_CJX)[-1]
    assert "李建国" in card.text and f"vol:ok:{helper.id}" in buttons(card)
    assert not any("李建国" in m.text for m in p.telegram.sent(STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(STAFF, f"vol:ok:{helper.id}", chat_id=STAFF_CHAT_ZJY))   # not theirs any more
    assert "只有本社区" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.press(CJX_STAFF, f"vol:ok:{helper.id}", chat_id=STAFF_CHAT_CJX))
    await p.drain()
    async with db.sessions() as session:
        assert (await session.get(Volunteer, helper.id)).status == "approved"


async def test_task_lifecycle_from_a_request(crew, db):
    p = crew
    request = await report(p, db, "我妈一个人在家 想找个人陪她聊聊天")
    task = await only_task(db)
    assert (task.request_id, task.skill, task.status) == (request.id, "companionship", "open")
    offer = p.telegram.sent(HELPER)[-1]
    assert buttons(offer) == [f"tk:claim:{task.id}"] and "我妈" not in offer.text  # details only after the claim
    assert f"tk:claim:{task.id}" in buttons(p.telegram.sent(VOLUNTEER_CHAT_ZJY)[-1])
    assert p.telegram.sent(OTHER_HELPER)  # every matching volunteer is offered it

    await p.feed(p.updates.press(CJX_HELPER, f"tk:claim:{task.id}"))
    assert "只有本社区" in p.telegram.sent(CJX_HELPER)[-1].text
    await p.feed(p.updates.press(HELPER, f"tk:claim:{task.id}", chat_id=VOLUNTEER_CHAT_ZJY))
    details = p.telegram.sent(HELPER)[-1]
    assert "我妈一个人在家" in details.text and buttons(details) == [f"tk:start:{task.id}", f"tk:done:{task.id}",
                                                                    f"tk:rel:{task.id}"]
    await p.feed(p.updates.press(OTHER_HELPER, f"tk:claim:{task.id}"))
    assert "已经有人认领" in p.telegram.sent(OTHER_HELPER)[-1].text
    await p.drain()
    resident = texts(p, RESIDENT)
    assert "已接下您的诉求" in resident and "13800001111" in resident
    async with db.sessions() as session:
        edits = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.edit_message_id.is_not(None))))
    assert len(edits) == 3 and all("已由" in e.text for e in edits)  # the group and both private offers

    await p.feed(p.updates.press(OTHER_HELPER, f"tk:done:{task.id}"))
    assert "不是您认领" in p.telegram.sent(OTHER_HELPER)[-1].text
    await p.feed(p.updates.press(HELPER, f"tk:start:{task.id}"))
    await p.feed(p.updates.press(HELPER, f"tk:done:{task.id}"))
    await p.feed(p.updates.message(HELPER, "99 小时"))
    assert "0 到 24" in p.telegram.sent(HELPER)[-1].text
    await p.feed(p.updates.message(HELPER, "2 陪阿姨聊了一下午"))
    await p.drain()
    confirm = p.telegram.sent(STAFF_CHAT_ZJY)[-1]
    assert buttons(confirm) == [f"tk:ok:{task.id}", f"tk:adj:{task.id}"]
    assert "已完成您的诉求" in texts(p, RESIDENT)
    for intruder in (HELPER, CJX_STAFF, RESIDENT):
        await p.feed(p.updates.press(intruder, f"tk:ok:{task.id}", chat_id=STAFF_CHAT_ZJY))
    assert (await only_task(db)).status == "done"
    await p.feed(p.updates.press(STAFF, f"tk:adj:{task.id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.message(STAFF, "1.5"))
    await p.drain()
    done = await only_task(db)
    assert (done.status, done.hours, done.confirmed_hours, done.note) == ("confirmed", 2.0, 1.5, "陪阿姨聊了一下午")
    await p.feed(p.updates.message(HELPER, "/hours"))
    assert "本月：1.5 小时" in p.telegram.sent(HELPER)[-1].text


async def test_release_offers_it_again(crew, db):
    p = crew
    await report(p, db, "我妈一个人在家 想找个人陪她聊聊天")
    task = await only_task(db)
    await p.feed(p.updates.press(HELPER, f"tk:claim:{task.id}"))
    await p.feed(p.updates.message(HELPER, "/mytasks"))
    assert task.title in p.telegram.sent(HELPER)[-1].text
    n = len(p.telegram.sent(OTHER_HELPER))
    await p.feed(p.updates.press(HELPER, f"tk:rel:{task.id}"))
    await p.feed(p.updates.press(HELPER, f"tk:rel:{task.id}"))
    await p.drain()
    assert buttons(p.telegram.sent(OTHER_HELPER)[n]) == [f"tk:claim:{task.id}"]
    await p.feed(p.updates.press(OTHER_HELPER, f"tk:claim:{task.id}"))
    again = await only_task(db)
    assert again.status == "claimed" and again.offer_round == 2


@pytest.mark.parametrize("claimers", [200])
async def test_claim_race_has_exactly_one_winner(crew, db, claimers):
    async with db.sessions() as session:
        task, _ = await volunteering.create_task(session, crew.intake.config, community="zjy", skill="errands",
                                                 title="race", details="x", place=None, window_start=utcnow(),
                                                 window_end=utcnow() + timedelta(hours=2))
        await session.commit()
        ids = []
        for i in range(claimers):
            user = await get_or_create_user(session, "telegram", f"race{i}")
            ids.append(user.id)
        await session.commit()

    async def claim(user_id: int):
        async with db.sessions() as session:
            won = await task_repo.claim(session, task.id, user_id)
            await session.commit()
            return won is not None

    results = await asyncio.gather(*(claim(u) for u in ids))
    assert sum(results) == 1
    async with db.sessions() as session:
        stored = await session.get(Task, task.id)
        assert stored.status == "claimed" and stored.claimer_id == ids[results.index(True)]


async def test_a_crowd_pressing_claim_in_the_bot_gets_one_winner_and_everyone_else_told(crew, db):
    """200 approved volunteers press Claim on the same offer at once, through the bot (on PostgreSQL
    the claim lane answers most of them from one read; on SQLite every press runs the full flow)."""
    p = crew
    crowd = [900000 + i for i in range(200)]
    for telegram_id in crowd:
        await approved_volunteer(db, telegram_id, "zjy")
    async with db.sessions() as session:
        task, _ = await volunteering.create_task(session, p.intake.config, community="zjy", skill="errands",
                                                 title="搬米", details="3楼 王阿姨", place=None,
                                                 window_start=utcnow(), window_end=utcnow() + timedelta(hours=2))
        await session.commit()
    await asyncio.gather(*(p.feed(p.updates.press(v, f"tk:claim:{task.id}", chat_id=VOLUNTEER_CHAT_ZJY))
                           for v in crowd))
    answers = {v: p.telegram.sent(v) for v in crowd}
    assert all(len(sent) == 1 for sent in answers.values())  # every press answered once, privately
    winners = [v for v, sent in answers.items() if "3楼 王阿姨" in sent[0].text]
    assert len(winners) == 1
    assert all("「搬米」已经有人认领" in sent[0].text for v, sent in answers.items() if v != winners[0])
    async with db.sessions() as session:
        stored = await session.get(Task, task.id)
        winner = await get_or_create_user(session, "telegram", str(winners[0]))
    assert (stored.status, stored.claimer_id) == ("claimed", winner.id)
    # The same press delivered again (Telegram retries an update) changes nothing.
    await p.feed(p.updates.press(winners[0], f"tk:claim:{task.id}"))
    assert "已经有人认领" in p.telegram.sent(winners[0])[-1].text
    async with db.sessions() as session:
        assert (await session.get(Task, task.id)).claimer_id == winner.id


async def test_scheduler_reminds_reoffers_alerts_and_expires(crew, db, config):
    p = crew
    start = utcnow() + timedelta(hours=5)
    async with db.sessions() as session:
        claimed, _ = await volunteering.create_task(session, config, community="zjy", skill="errands", title="代办社保",
                                                    details="d", place=None, window_start=start,
                                                    window_end=start + timedelta(hours=2))
        untaken, _ = await volunteering.create_task(session, config, community="zjy", skill="driving", title="送医院",
                                                    details="d", place=None, window_start=start,
                                                    window_end=start + timedelta(hours=2))
        helper = await get_or_create_user(session, "telegram", str(HELPER))
        await task_repo.claim(session, claimed.id, helper.id)
        await session.commit()

    async def sweep(at):
        async with db.sessions() as session:
            ids = await task_sweep(session, config, at)
            await session.commit()
            rows = [await session.get(OutboxMessage, i) for i in ids]
            return [(r.chat_id, r.text) for r in rows]

    assert await sweep(start - timedelta(hours=4)) == []
    wider = await sweep(start - timedelta(hours=2, minutes=30))      # reoffer window (3 h) for the untaken one
    assert {chat for chat, _ in wider} == {str(HELPER), str(OTHER_HELPER)} and all("送医院" in x for _, x in wider)
    reminder = await sweep(start - timedelta(hours=1))                # reminder window (2 h) for the claimed one
    assert reminder == [(str(HELPER), reminder[0][1])] and "代办社保" in reminder[0][1]
    assert await sweep(start - timedelta(minutes=30)) == []           # nothing twice
    alert = await sweep(start + timedelta(minutes=1))
    assert [c for c, _ in alert] == [str(STAFF_CHAT_ZJY)] and "还没人认领" in alert[0][1]
    late = await sweep(start + timedelta(hours=3))
    assert sorted(x for _, x in late) == sorted([x for _, x in late if "已过时间" in x or "过期" in x])
    assert len(late) == 2
    assert await sweep(start + timedelta(hours=4)) == []
    async with db.sessions() as session:
        assert (await session.get(Task, untaken.id)).status == "expired"


async def test_staff_create_a_task_with_task_command(crew, db):
    p = crew
    await p.feed(p.updates.message(HELPER, "/task"))
    assert "没有权限" in p.telegram.sent(HELPER)[-1].text
    await p.feed(p.updates.message(STAFF, "/task"))
    await p.feed(p.updates.press(STAFF, "nts:errands"))
    await p.feed(p.updates.message(STAFF, "帮孙大爷取药\n3号楼2单元 联系电话见社区登记"))
    await p.feed(p.updates.press(STAFF, "ntw:nonsense"))
    await p.feed(p.updates.press(STAFF, "ntw:tomorrow_am"))
    await p.drain()
    task = await only_task(db)
    assert (task.title, task.skill, task.details) == ("帮孙大爷取药", "errands", "3号楼2单元 联系电话见社区登记")
    assert as_utc(task.window_end) - as_utc(task.window_start) == timedelta(hours=3)
    assert "帮孙大爷取药" in p.telegram.sent(HELPER)[-1].text and "3号楼" not in p.telegram.sent(HELPER)[-1].text


async def test_monthly_recognition_names_only_those_who_agreed(crew, db, config):
    async with db.sessions() as session:
        users = {tid: await get_or_create_user(session, "telegram", str(tid)) for tid in (HELPER, OTHER_HELPER)}
        await session.execute(Volunteer.__table__.update().where(Volunteer.user_id == users[OTHER_HELPER].id)
                              .values(named_in_recognition=False))
        last_month = utcnow().replace(day=1) - timedelta(days=10)
        for tid, hours in ((HELPER, 3.0), (OTHER_HELPER, 5.0)):
            session.add(Task(community_code="zjy", skill="errands", title="t", window_start=last_month,
                             window_end=last_month, status="confirmed", claimer_id=users[tid].id,
                             confirmed_hours=hours, done_at=last_month))
        await session.commit()
        first_of_month = utcnow().replace(day=1, hour=4)
        ids = await recognition_sweep(session, config, first_of_month)
        again = await recognition_sweep(session, config, first_of_month + timedelta(hours=1))
        text = (await session.get(OutboxMessage, ids[0])).text
        await session.commit()
    assert len(ids) == 1 and again == [] and "志愿者1 —— 3.0 小时" in text and "志愿者2" not in text
