"""Activities through the real bot code: staff create one in chat, parents enrol children (consent, pick-up list),
the waiting list and its offers, cancellations, roll call with pick-up checks, reminders, intake offers, forgeries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.methods import EditMessageText
from sqlalchemy import func, select, update

from services.scheduler import jobs
from shared import activities as service
from shared.activity_config import ActivityDefaults
from shared.clock import utcnow
from shared.config import load_communities
from shared.db.models import (
    Activity,
    ActivityAttendance,
    ActivityChild,
    ActivityEnrolment,
    ActivitySession,
    OutboxMessage,
)
from shared.settings import REPO_ROOT
from tests.pipeline.test_request_handling import CJX_STAFF, STAFF, STAFF_CHAT_CJX, buttons, people, report, texts  # noqa: F401 - fixture
from tests.pipeline.test_resident_request import RESIDENT, onboard

PARENT, PARENT2, GRANDPA = 502001, 502002, 502003


@pytest.fixture
def config():
    """The shipped config without quiet hours, so offers go out whatever the hour the suite runs at."""
    shipped = load_communities(REPO_ROOT / "config" / "communities.yaml")
    return shipped.model_copy(update={"defaults": shipped.defaults.model_copy(
        update={"activities": ActivityDefaults(reminder_hours=24, offer_hours=24, quiet_hours=None)})})


@pytest.fixture
async def parents(people):
    for who in (PARENT, PARENT2, GRANDPA):
        await onboard(people, who, community="cjx")
    return people


def last(p, chat):
    return p.telegram.sent(chat)[-1]


def edits(p, chat) -> list[EditMessageText]:
    return [c for c in p.telegram.calls if isinstance(c, EditMessageText) and str(c.chat_id) == str(chat)]


async def create_by_chat(p, config, *, capacity: str = "1") -> int:
    """CJX staff create a children's activity with two sessions, bad input first at every step."""
    today = service.local(config, utcnow()).date()
    d1, d2 = today + timedelta(days=3), today + timedelta(days=10)
    await p.feed(p.updates.message(CJX_STAFF, "/activities"))
    assert "ac:new" in buttons(last(p, CJX_STAFF))
    await p.feed(p.updates.press(CJX_STAFF, "ac:new"))
    await p.feed(p.updates.message(CJX_STAFF, "🙂🙂"))
    assert "活动名称" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, "x" * 5000))
    assert "不超过" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, "四点半课堂·冬季班"))
    assert buttons(last(p, CJX_STAFF)) == ["acn:children", "acn:seniors", "acn:everyone"]
    await p.feed(p.updates.press(CJX_STAFF, "acn:save"))                 # out of order
    assert "过期" in last(p, CJX_STAFF).text or "失效" in last(p, CJX_STAFF).text
    await p.feed(p.updates.press(CJX_STAFF, "acn:children"))
    await p.feed(p.updates.message(CJX_STAFF, "12-6"))
    assert "6-12" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, "6-12"))
    await p.feed(p.updates.message(CJX_STAFF, "下周三下午"))
    assert "没看懂时间" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, f"{today - timedelta(days=2):%Y-%m-%d} 16:30-18:00"))
    assert "已经过去" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, f"{d1:%Y-%m-%d} 16:30-18:00；{d2:%Y-%m-%d} 16:30-18:00"))
    assert "共 2 次课" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, "畅家巷社区活动室"))
    await p.feed(p.updates.message(CJX_STAFF, "很多"))
    assert "1 到 500" in last(p, CJX_STAFF).text
    await p.feed(p.updates.message(CJX_STAFF, capacity))
    await p.feed(p.updates.press(CJX_STAFF, "acn:free"))
    assert "acn:save" in buttons(last(p, CJX_STAFF)) and "免费" in last(p, CJX_STAFF).text
    await p.feed(p.updates.press(CJX_STAFF, "acn:save"))
    await p.feed(p.updates.press(CJX_STAFF, "acn:save"))                 # a duplicate press creates nothing more
    async with p.db.sessions() as session:
        found = list(await session.scalars(select(Activity).where(Activity.title == "四点半课堂·冬季班")))
    assert len(found) == 1 and "已创建" in texts(p, CJX_STAFF)
    activity = found[0]
    assert (activity.community_code, activity.audience, activity.age_min, activity.age_max, activity.capacity,
            activity.fee) == ("cjx", "children", 6, 12, int(capacity), 0)
    return activity.id


async def enrol_new_child(p, who: int, activity_id: int, name: str, age: str = "8") -> None:
    await p.feed(p.updates.press(who, f"ace:{activity_id}:new"))
    await p.feed(p.updates.message(who, name))
    await p.feed(p.updates.message(who, age))
    await p.feed(p.updates.press(who, "acc:skip"))
    await p.feed(p.updates.message(who, "妈妈 王芳、爷爷 李建国"))
    await p.feed(p.updates.press(who, "acc:yes"))


async def enrolments(db, activity_id: int) -> list[ActivityEnrolment]:
    async with db.sessions() as session:
        return list(await session.scalars(select(ActivityEnrolment).where(ActivityEnrolment.activity_id == activity_id)
                                          .order_by(ActivityEnrolment.id)))


async def test_the_whole_story(parents, db, config):
    p = parents
    aid = await create_by_chat(p, config)

    # A parent finds it from the main menu and enrols a new child, with bad input at each step.
    assert any("ac:menu" in buttons(m) for m in p.telegram.sent(PARENT))   # the main menu after onboarding
    await p.feed(p.updates.press(PARENT, "ac:menu"))
    await p.feed(p.updates.press(PARENT, "ac:children"))
    assert "四点半课堂·冬季班" in last(p, PARENT).text and f"aco:{aid}" in buttons(last(p, PARENT))
    await p.feed(p.updates.press(PARENT, f"aco:{aid}"))
    card = last(p, PARENT)
    assert "6–12 岁" in card.text and f"ace:{aid}:new" in buttons(card) and f"ace:{aid}:self" not in buttons(card)
    await p.feed(p.updates.press(PARENT, f"ace:{aid}:self"))             # forged: a children's activity
    assert "请为孩子报名" in last(p, PARENT).text
    await p.feed(p.updates.press(PARENT, f"ace:{aid}:new"))
    await p.feed(p.updates.message(PARENT, "\u200b\u200b"))
    assert "没看懂名字" in last(p, PARENT).text
    await p.feed(p.updates.message(PARENT, "小明"))
    await p.feed(p.updates.message(PARENT, "八岁半"))
    assert "1 到 18" in last(p, PARENT).text
    await p.feed(p.updates.message(PARENT, "8"))
    await p.feed(p.updates.press(PARENT, "acc:yes"))                    # consent before the form is complete
    assert "过期" in last(p, PARENT).text or "失效" in last(p, PARENT).text
    await p.feed(p.updates.message(PARENT, "兰州一中附小 三年级二班"))
    await p.feed(p.updates.message(PARENT, "、、"))
    assert "接送人" in last(p, PARENT).text
    await p.feed(p.updates.message(PARENT, "妈妈 王芳、爷爷 李建国"))
    consent = last(p, PARENT)
    assert "监护人" in consent.text and buttons(consent) == ["acc:yes", "acc:no"]
    await p.feed(p.updates.press(PARENT, "acc:yes"))
    await p.feed(p.updates.press(PARENT, "acc:yes"))                    # duplicate press: nothing more
    assert "小明已报名" in texts(p, PARENT)
    async with db.sessions() as session:
        kids = list(await session.scalars(select(ActivityChild)))
    assert [(k.name, k.age, k.school_class, k.pickup, k.consent_at is not None) for k in kids] == [
        ("小明", 8, "兰州一中附小 三年级二班", ["妈妈 王芳", "爷爷 李建国"], True)]
    first = (await enrolments(db, aid))[0]
    assert first.status == "enrolled" and first.child_id == kids[0].id

    # Full: the next parent's child waits; a refused consent saves nothing.
    await enrol_new_child(p, PARENT2, aid, "小红", "7")
    assert "候补名单" in last(p, PARENT2).text and "第 1 位" in last(p, PARENT2).text
    await p.feed(p.updates.press(GRANDPA, f"ace:{aid}:new"))
    await p.feed(p.updates.message(GRANDPA, "小刚"))
    await p.feed(p.updates.message(GRANDPA, "9"))
    await p.feed(p.updates.press(GRANDPA, "acc:skip"))
    await p.feed(p.updates.message(GRANDPA, "奶奶"))
    await p.feed(p.updates.press(GRANDPA, "acc:no"))
    assert "没有保存" in last(p, GRANDPA).text
    assert [e.status for e in await enrolments(db, aid)] == ["enrolled", "waiting"]

    # Forged: someone else's enrolment, another community, nonexistent ids, malformed args, a resident organising.
    second = (await enrolments(db, aid))[1]
    await p.feed(p.updates.press(PARENT2, f"acx:{first.id}"))
    assert "不能进行" in last(p, PARENT2).text
    await p.feed(p.updates.press(PARENT2, f"acy:{first.id}:yes"))
    assert "不能进行" in last(p, PARENT2).text
    await p.feed(p.updates.press(RESIDENT, f"aco:{aid}"))                 # zjy resident
    assert "只面向本社区" in last(p, RESIDENT).text
    await p.feed(p.updates.press(RESIDENT, f"ace:{aid}:self"))
    await p.feed(p.updates.press(RESIDENT, f"ace:{aid}:{kids[0].id}"))   # someone else's child, other community
    assert "只面向本社区" in last(p, RESIDENT).text
    await p.feed(p.updates.press(PARENT2, f"ace:{aid}:{kids[0].id}"))     # someone else's child
    assert "不能为这位孩子报名" in last(p, PARENT2).text
    for forged in ("aco:99999999", "ace:99999999:self", "acx:99999999", "acy:99999999:yes", "ace:abc:self",
                   "acm:1:2", "acs:roll", "ace:1:../x", "ac:nonsense", "acg:view:99999999", "acy:1:maybe"):
        await p.feed(p.updates.press(PARENT2, forged))
        reply = last(p, PARENT2).text
        assert any(word in reply for word in ("过期", "失效", "不存在", "不能进行", "已取消")), (forged, reply)
    async with db.sessions() as session:
        meeting = (await service.upcoming(session, aid, utcnow()))[0]
    for forged in (f"acs:roll:{meeting.id}", f"acm:{meeting.id}:{first.id}:1", f"acp:{meeting.id}:{first.id}",
                   f"acs:done:{meeting.id}", f"acs:cancel:{meeting.id}", f"acg:view:{aid}", f"acg:cancely:{aid}",
                   "ac:new"):
        await p.feed(p.updates.press(PARENT2, forged))
        assert any(w in last(p, PARENT2).text for w in ("不能进行", "工作人员")), forged
    await p.feed(p.updates.press(STAFF, f"acg:cancely:{aid}"))            # staff of another community
    assert "不能进行" in last(p, STAFF).text
    assert [e.status for e in await enrolments(db, aid)] == ["enrolled", "waiting"]

    # The first parent cancels: the place is offered to the first in line, who takes it (twice: once).
    await p.feed(p.updates.press(PARENT, f"acx:{first.id}"))
    await p.drain()
    offer = last(p, PARENT2)
    assert "空出来" in offer.text and buttons(offer) == [f"acy:{second.id}:yes", f"acy:{second.id}:no"]
    await p.feed(p.updates.press(PARENT, f"acx:{first.id}"))
    assert "已经取消过了" in last(p, PARENT).text
    await p.feed(p.updates.press(PARENT2, f"acy:{second.id}:yes"))
    assert "名额已确认" in last(p, PARENT2).text
    await p.feed(p.updates.press(PARENT2, f"acy:{second.id}:yes"))
    assert "已经过期或已处理" in last(p, PARENT2).text
    await p.feed(p.updates.press(PARENT2, "ac:mine"))
    assert "小红：已报名" in last(p, PARENT2).text
    assert [e.status for e in await enrolments(db, aid)] == ["cancelled", "enrolled"]

    # The first parent enrols the same child again: back in line behind nobody, but the activity is full.
    await p.feed(p.updates.press(PARENT, f"ace:{aid}:{kids[0].id}"))
    assert "候补名单" in last(p, PARENT).text

    # Reminder before the session, once, through the scheduler job with an explicit now.
    before = meeting.starts_at - timedelta(hours=3)
    n = len(p.telegram.sent(PARENT2))
    assert await jobs.activities(p.db, p.broker, config, now=before) >= 1
    assert await jobs.activities(p.db, p.broker, config, now=before) == 0
    await p.drain()
    reminders = [m.text for m in p.telegram.sent(PARENT2)[n:] if "提醒" in m.text]
    assert len(reminders) == 1 and "小红" in reminders[0] and "畅家巷社区活动室" in reminders[0]

    # Roll call: the session has begun. The organiser marks presence and checks who collects the child.
    async with db.sessions() as session:
        await session.execute(update(ActivitySession).where(ActivitySession.id == meeting.id)
                              .values(starts_at=utcnow() - timedelta(minutes=5), ends_at=utcnow() + timedelta(minutes=85)))
        await session.commit()
    await p.feed(p.updates.press(CJX_STAFF, f"acg:sessions:{aid}"))
    assert f"acs:roll:{meeting.id}" in buttons(last(p, CJX_STAFF))
    await p.feed(p.updates.press(CJX_STAFF, f"acs:roll:{meeting.id}"))
    roll = last(p, CJX_STAFF)
    assert "到场 0/1" in roll.text and f"acm:{meeting.id}:{second.id}:1" in buttons(roll)
    await p.feed(p.updates.press(CJX_STAFF, f"acm:{meeting.id}:{second.id}:1"))
    await p.feed(p.updates.press(CJX_STAFF, f"acm:{meeting.id}:{second.id}:1"))   # the same press twice
    assert "到场 1/1" in edits(p, CJX_STAFF)[-1].text
    await p.feed(p.updates.press(CJX_STAFF, f"acm:{meeting.id}:{first.id}:1"))    # not enrolled any more
    assert "不能进行" in last(p, CJX_STAFF).text
    await p.feed(p.updates.press(CJX_STAFF, f"acp:{meeting.id}:{second.id}"))
    await p.feed(p.updates.message(CJX_STAFF, "张三"))
    await p.drain()
    assert "不在授权接送名单上" in texts(p, CJX_STAFF)
    assert "不在授权名单上" in texts(p, STAFF_CHAT_CJX)
    assert "不在您授权的接送名单上" in texts(p, PARENT2)
    await p.feed(p.updates.press(CJX_STAFF, f"acp:{meeting.id}:{second.id}"))
    await p.feed(p.updates.message(CJX_STAFF, "李建国"))
    await p.drain()
    assert "小红已由李建国接走" in texts(p, PARENT2)
    await p.feed(p.updates.press(CJX_STAFF, f"acs:done:{meeting.id}"))
    assert "点名完成：到场 1/1" in last(p, CJX_STAFF).text
    await p.feed(p.updates.press(CJX_STAFF, f"acs:done:{meeting.id}"))
    assert "已经点过名了" in last(p, CJX_STAFF).text
    async with db.sessions() as session:
        marks = list(await session.scalars(select(ActivityAttendance)))
    assert [(m.enrolment_id, m.present, m.picked_up_by, m.pickup_ok) for m in marks] == [(second.id, True, "李建国", True)]

    # The organiser cancels the next session: everyone with a place hears once.
    async with db.sessions() as session:
        nxt = (await service.upcoming(session, aid, utcnow()))[0]
    n = len(p.telegram.sent(PARENT2))
    await p.feed(p.updates.press(CJX_STAFF, f"acs:cancel:{nxt.id}"))
    await p.feed(p.updates.press(CJX_STAFF, f"acs:cancel:{nxt.id}"))
    await p.drain()
    assert sum("这次课取消了" in m.text for m in p.telegram.sent(PARENT2)[n:]) == 1
    await p.feed(p.updates.press(CJX_STAFF, "ac:stats"))
    assert "四点半课堂·冬季班" in last(p, CJX_STAFF).text and "已上 1 次" in last(p, CJX_STAFF).text


async def test_seniors_enrol_themselves_and_intake_offers_matching_activities(parents, db, config):
    p = parents
    async with db.sessions() as session:
        await service.sync_configured(session, config)
        start = utcnow() + timedelta(days=2)
        activity = await service.create_activity(
            session, community="cjx", title="四点半课后托管班（测试）", audience="children", age_min=6, age_max=12,
            place="活动室", capacity=10, spans=[(start, start + timedelta(hours=2))], keywords=["放学", "没人接", "托管"])
        senior = await service.create_activity(
            session, community="cjx", title="长者太极班", audience="seniors", place="广场", capacity=10,
            spans=[(start, start + timedelta(hours=1))], keywords=["太极"])
        await session.commit()
    await p.feed(p.updates.press(GRANDPA, f"aco:{senior.id}"))
    assert f"ace:{senior.id}:self" in buttons(last(p, GRANDPA)) and f"ace:{senior.id}:new" not in buttons(last(p, GRANDPA))
    await p.feed(p.updates.press(GRANDPA, f"ace:{senior.id}:new"))          # forged: a child in a seniors' course
    assert "请本人报名" in last(p, GRANDPA).text
    await p.feed(p.updates.press(GRANDPA, f"ace:{senior.id}:self"))
    await p.feed(p.updates.press(GRANDPA, f"ace:{senior.id}:self"))
    assert "已报名《长者太极班》" in texts(p, GRANDPA) and "不用重复报名" in last(p, GRANDPA).text
    assert len(await enrolments(db, senior.id)) == 1

    request = await report(p, db, "孩子放学早 下午没人接 社区能帮忙吗", user_id=PARENT)
    assert request.category == "youth" and request.status == "routed"
    routed = last(p, PARENT)
    assert "还有名额" in routed.text and f"aco:{activity.id}" in buttons(routed)
    assert request.number in routed.text


async def test_organiser_volunteer_and_cancel_activity(parents, db, config):
    p = parents
    aid = await create_by_chat(p, config, capacity="5")
    await enrol_new_child(p, PARENT, aid, "小明")
    await enrol_new_child(p, PARENT2, aid, "小红")
    await p.feed(p.updates.press(CJX_STAFF, f"acg:view:{aid}"))
    card = last(p, CJX_STAFF)
    assert "2/5" in card.text and f"acg:cancel:{aid}" in buttons(card)
    await p.feed(p.updates.press(CJX_STAFF, f"acg:people:{aid}"))
    assert "小明" in last(p, CJX_STAFF).text and "李建国" in last(p, CJX_STAFF).text
    await p.feed(p.updates.press(CJX_STAFF, f"acv:{aid}:99999999"))        # not a volunteer
    assert "过期" in last(p, CJX_STAFF).text or "失效" in last(p, CJX_STAFF).text
    await p.feed(p.updates.press(CJX_STAFF, f"acg:cancel:{aid}"))
    await p.feed(p.updates.press(CJX_STAFF, f"acg:cancely:{aid}"))
    await p.feed(p.updates.press(CJX_STAFF, f"acg:cancely:{aid}"))
    await p.drain()
    assert "已通知 2 人" in texts(p, CJX_STAFF)
    for parent in (PARENT, PARENT2):
        assert sum("已取消" in m.text and "通知" in m.text for m in p.telegram.sent(parent)) == 1
    assert {e.status for e in await enrolments(db, aid)} == {"cancelled"}
    await p.feed(p.updates.press(PARENT, f"aco:{aid}"))
    assert "已取消或不存在" in last(p, PARENT).text
    async with db.sessions() as session:
        keys = list(await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like("%ac_cancel:%"))))
        sessions_left = await session.scalar(select(func.count()).select_from(ActivitySession).where(
            ActivitySession.activity_id == aid, ActivitySession.status == "scheduled"))
    assert len(keys) == 2 and sessions_left == 0


async def test_mydata_shows_children_and_forgetme_erases_them(parents, db, config):
    p = parents
    aid = await create_by_chat(p, config, capacity="1")
    await enrol_new_child(p, PARENT, aid, "小明")
    await enrol_new_child(p, PARENT2, aid, "小红")
    await p.feed(p.updates.message(PARENT, "/mydata"))
    assert "小明" in texts(p, PARENT, -3) and "李建国" in texts(p, PARENT, -3)
    await p.feed(p.updates.message(PARENT, "/forgetme"))
    await p.feed(p.updates.press(PARENT, "fm:yes"))
    async with db.sessions() as session:
        kids = {k.guardian_id: k for k in await session.scalars(select(ActivityChild))}
    assert sorted(k.name for k in kids.values()) == ["[已删除 erased]", "小红"]
    erased = next(k for k in kids.values() if k.name != "小红")
    assert erased.pickup == [] and erased.school_class is None and erased.consent_at is None
    assert [e.status for e in await enrolments(db, aid)] == ["cancelled", "waiting"]
    # The freed place goes to the next in line at the scheduler's next run.
    await jobs.activities(p.db, p.broker, config)
    await p.drain()
    assert "空出来" in last(p, PARENT2).text


# Refused at every step of the child form (a name, an age, a class, a pick-up list) and at the pick-up prompt.
HOSTILE = (" ", "x" * 5000, "\x00\x01\x02", "🙂" * 50, "\u200b\u200c\u200d", "'); DROP TABLE activities; --",
           "<script>alert(1)</script>", "{{7*7}}", "\u202e\u202c")


async def test_hostile_input_at_every_step_changes_nothing(parents, db, config):
    p = parents
    aid = await create_by_chat(p, config, capacity="3")
    await p.feed(p.updates.press(PARENT, f"ace:{aid}:new"))
    steps = [("小明", "名字"), ("8", "岁"), ("兰州一中附小", None), ("妈妈 王芳", None)]
    for good, _ in steps:
        for bad in HOSTILE:
            n = len(p.telegram.sent(PARENT))
            await p.feed(p.updates.message(PARENT, bad))
            assert len(p.telegram.sent(PARENT)) == n + 1, bad   # a clear reply each time
        await p.feed(p.updates.message(PARENT, good))
    assert "监护人" in last(p, PARENT).text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ActivityChild)) == 0
    await p.feed(p.updates.press(PARENT, "acc:yes"))
    async with db.sessions() as session:
        kids = list(await session.scalars(select(ActivityChild)))
    assert [(k.name, k.age, k.school_class, k.pickup) for k in kids] == [("小明", 8, "兰州一中附小", ["妈妈 王芳"])]
    # The organiser's pick-up prompt refuses the same input.
    enrolment = (await enrolments(db, aid))[0]
    async with db.sessions() as session:
        meeting = (await service.upcoming(session, aid, utcnow()))[0]
    await p.feed(p.updates.press(CJX_STAFF, f"acp:{meeting.id}:{enrolment.id}"))
    for bad in HOSTILE:
        await p.feed(p.updates.message(CJX_STAFF, bad))
        assert "接孩子的人的名字" in last(p, CJX_STAFF).text, bad
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ActivityAttendance)) == 0
    assert {a.title for a in await _activities(db)} == {"四点半课堂·冬季班"}


async def _activities(db):
    async with db.sessions() as session:
        return list(await session.scalars(select(Activity).where(Activity.code.is_(None))))


async def test_a_volunteer_organises_and_takes_the_roll(parents, db, config):
    from shared.db.models import Volunteer
    from shared.repo.users import get_or_create_user

    p = parents
    aid = await create_by_chat(p, config, capacity="3")
    tutor_tg = 502099
    await onboard(p, tutor_tg, community="cjx")
    async with db.sessions() as session:
        tutor = await get_or_create_user(session, "telegram", str(tutor_tg))
        session.add(Volunteer(user_id=tutor.id, name="小李老师", community_code="cjx", skills=["tutoring"], days=[],
                              parts=[], status="approved"))
        await session.commit()
        tutor_id = tutor.id
    await p.feed(p.updates.press(tutor_tg, f"acg:view:{aid}"))                # not yet theirs
    assert "不能进行" in last(p, tutor_tg).text
    await p.feed(p.updates.press(CJX_STAFF, f"acg:org:{aid}"))
    assert f"acv:{aid}:{tutor_id}" in buttons(last(p, CJX_STAFF))
    await p.feed(p.updates.press(tutor_tg, f"acv:{aid}:{tutor_id}"))          # forged: a volunteer appoints themself
    assert "不能进行" in last(p, tutor_tg).text
    await p.feed(p.updates.press(CJX_STAFF, f"acv:{aid}:{tutor_id}"))
    assert "小李老师" in last(p, CJX_STAFF).text
    await enrol_new_child(p, PARENT, aid, "小明")
    await p.feed(p.updates.press(tutor_tg, "ac:menu"))
    assert "ac:manage" in buttons(last(p, tutor_tg)) and "ac:new" not in buttons(last(p, tutor_tg))
    await p.feed(p.updates.press(tutor_tg, "ac:manage"))
    assert f"acg:view:{aid}" in buttons(last(p, tutor_tg))
    await p.feed(p.updates.press(tutor_tg, f"acg:view:{aid}"))
    assert f"acg:cancel:{aid}" not in buttons(last(p, tutor_tg))              # staff only
    await p.feed(p.updates.press(tutor_tg, f"acg:cancely:{aid}"))
    assert "不能进行" in last(p, tutor_tg).text
    async with db.sessions() as session:
        meeting = (await service.upcoming(session, aid, utcnow()))[0]
        await session.execute(update(ActivitySession).where(ActivitySession.id == meeting.id)
                              .values(starts_at=utcnow() - timedelta(minutes=1), ends_at=utcnow() + timedelta(minutes=89)))
        await session.commit()
    enrolment = (await enrolments(db, aid))[0]
    await p.feed(p.updates.press(tutor_tg, f"acm:{meeting.id}:{enrolment.id}:1"))
    await p.feed(p.updates.press(tutor_tg, f"acs:done:{meeting.id}"))
    await p.feed(p.updates.press(tutor_tg, f"acs:done:{meeting.id}"))
    await p.feed(p.updates.message(tutor_tg, "/hours"))
    assert "1.5 小时" in last(p, tutor_tg).text.split("\n")[-1]              # 累计 (all time)
