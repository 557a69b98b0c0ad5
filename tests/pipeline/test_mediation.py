"""Mediation cases through the real bot code (毛大姐调解室): a whole case with a controllable clock,
privacy between parties, forged callbacks, duplicate presses and duplicate sweeps.

Runs on SQLite and PostgreSQL, with the in-process and the Redis broker.
"""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.scheduler import jobs
from shared.clock import as_utc, utcnow
from shared.db.models import (
    MediationAgreement,
    MediationAttendance,
    MediationCase,
    MediationNote,
    MediationParty,
    MediationSession,
    MediationStage,
    OutboxMessage,
    Request,
    RequestEvent,
    User,
    Volunteer,
)
from shared.repo.users import get_or_create_user, give_consent
from tests.pipeline.test_request_handling import CJX_STAFF, STAFF, STAFF_CHAT_CJX, buttons, make_staff, texts

REPORTER, NEIGHBOUR, MEDIATOR, OUTSIDER, THIRD = 701001, 701002, 701003, 701004, 701005
REPORT = "楼上邻居家卫生间漏水到我家天花板 找他好几次都不理 想请毛大姐调解一下"
NEIGHBOUR_SAYS = "其实是他家先装修把我家管子碰坏的"
NOTE = "双方情绪激动，建议先分开谈"
PARTY_NAME = "302室李先生"


async def onboard(p, user_id: int, first_name: str, community: str = "cjx") -> None:
    await p.feed(p.updates.message(user_id, "/start", first_name=first_name))
    await p.feed(p.updates.press(user_id, "consent:yes"))
    await p.feed(p.updates.press(user_id, f"comm:{community}"))
    await p.feed(p.updates.press(user_id, "lang:zh"))


async def make_mediator(db, telegram_id: int, community: str = "cjx") -> None:
    """An approved volunteer with the mediation skill (a 毛大姐调解室 volunteer)."""
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(telegram_id), display_name="毛大姐")
        give_consent(user)
        user.community_code = community
        session.add(Volunteer(user_id=user.id, name="毛大姐", community_code=community, skills=["mediation"],
                              status="approved"))
        await session.commit()


async def one(db, model, *where):  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return (await session.scalars(select(model).where(*where).order_by(model.id.desc()))).first()


async def count(db, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


def last(p, chat: int) -> str:
    return p.telegram.sent(chat)[-1].text


async def press(p, user: int, data: str, chat: int | None = None) -> str:
    """Everything the presser was told in answer (and by notifications it caused)."""
    n = len(p.telegram.sent(user))
    await p.feed(p.updates.press(user, data, chat_id=chat))
    await p.drain()
    return texts(p, user, n)


async def say(p, user: int, text: str) -> str:
    n = len(p.telegram.sent(user))
    await p.feed(p.updates.message(user, text))
    await p.drain()
    return texts(p, user, n)


async def sweep(p, config, now) -> int:  # type: ignore[no-untyped-def]
    sent = await jobs.mediation(p.db, p.broker, config, now=now)
    await p.drain()
    return sent


def session_text(days: int, hhmm: str = "19:30", place: str = "毛大姐调解室") -> tuple[str, object]:
    local = (utcnow().astimezone(ZoneInfo("Asia/Shanghai")) + timedelta(days=days))
    hour, minute = (int(x) for x in hhmm.split(":"))
    start = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return f"{start.month:02d}-{start.day:02d} {hhmm} {place}", start.astimezone(ZoneInfo("UTC"))


@pytest.fixture
async def room(pipeline, db):
    p = pipeline
    await onboard(p, REPORTER, "陈大娘")
    await onboard(p, OUTSIDER, "赵大爷")
    await make_mediator(db, MEDIATOR)
    await make_staff(db, CJX_STAFF, "cjx")
    await make_staff(db, STAFF, "zjy")
    return p


async def open_case(p, db) -> tuple[Request, MediationCase]:
    await p.feed(p.updates.message(REPORTER, REPORT))
    await p.drain()
    request = await one(db, Request, Request.user_id.is_not(None))
    assert request.category == "mediation" and request.community_code == "cjx"
    card = p.telegram.sent(STAFF_CHAT_CJX)[-1]
    assert f"mdo:{request.id}" in buttons(card) and "漏水" not in card.text   # the group sees no details
    await p.feed(p.updates.press(MEDIATOR, "mdl:mine"))
    assert f"mdo:{request.id}" in buttons(p.telegram.sent(MEDIATOR)[-1])
    assert "立为调解案件" in await press(p, MEDIATOR, f"mdo:{request.id}")
    case = await one(db, MediationCase)
    return request, case


async def invite_neighbour(p, db, case: MediationCase) -> MediationParty:
    await press(p, MEDIATOR, f"md:party:{case.id}")
    assert "称呼" in await say(p, MEDIATOR, "🙂🙂")                          # bad input: asked again
    await say(p, MEDIATOR, PARTY_NAME)
    invited = "\n".join(m.text for m in p.telegram.sent(MEDIATOR)[-2:])
    await p.feed(p.updates.press(MEDIATOR, f"md:pinv:{case.id}"))
    await p.feed(p.updates.press(MEDIATOR, f"md:pinv:{case.id}"))           # a double tap adds one party
    await p.drain()
    invited = texts(p, MEDIATOR)
    code = re.findall(r"/join ([A-Z0-9]{8})", invited)[-1]
    assert f"https://t.me/linju_bot?start=md{code}" in invited            # the one-time link, same code
    assert await count(db, MediationParty, MediationParty.case_id == case.id) == 2
    party = await one(db, MediationParty, MediationParty.side == 2)
    assert (party.name, party.status, party.user_id, party.invite_hash != code) == (PARTY_NAME, "invited", None, True)
    # The neighbour has never used the bot: the code alone brings them in, and nothing is stored until they agree.
    await p.feed(p.updates.message(NEIGHBOUR, f"/join {code.lower()}", first_name="李建国"))
    prompt = p.telegram.sent(NEIGHBOUR)[-1]
    assert "自愿" in prompt.text and buttons(prompt) == [f"mdy:{party.id}:yes", f"mdy:{party.id}:no"]
    assert "漏水" not in prompt.text and "陈大娘" not in prompt.text           # nothing of the other side
    assert (await one(db, MediationParty, MediationParty.id == party.id)).user_id is None
    assert "没有权限" in await press(p, OUTSIDER, f"mdy:{party.id}:yes")     # no code in this conversation
    assert "谢谢您同意" in await press(p, NEIGHBOUR, f"mdy:{party.id}:yes")
    assert "处理过" in await press(p, NEIGHBOUR, f"mdy:{party.id}:yes")      # a second tap changes nothing
    await p.feed(p.updates.message(THIRD, f"/join {code}"))                  # one-time: used up
    assert "无效" in last(p, THIRD)
    party = await one(db, MediationParty, MediationParty.id == party.id)
    neighbour = await one(db, User, User.external_id == str(NEIGHBOUR))
    assert (party.status, party.user_id, party.invite_hash) == ("consented", neighbour.id, None)
    assert neighbour.consent_at is not None and neighbour.community_code == "cjx"
    assert "同意参与" in texts(p, MEDIATOR)
    return party


async def test_a_whole_case_from_invitation_to_follow_up(room, db, config):
    p = room
    request, case = await open_case(p, db)
    assert (case.status, case.level, case.number) == ("open", 0, request.number)
    reporter = await one(db, MediationParty, MediationParty.case_id == case.id, MediationParty.side == 1)
    consent = p.telegram.sent(REPORTER)[-1]
    assert buttons(consent) == [f"mdy:{reporter.id}:yes", f"mdy:{reporter.id}:no"] and "单元信息员" in consent.text
    assert "没有权限" in await press(p, OUTSIDER, f"mdy:{reporter.id}:yes")
    await press(p, REPORTER, f"mdy:{reporter.id}:yes")
    assert (await one(db, MediationParty, MediationParty.id == reporter.id)).status == "consented"
    neighbour = await invite_neighbour(p, db, case)

    # A party writes privately to the mediators; a mediator keeps a confidential note.
    await press(p, NEIGHBOUR, f"mdm:{neighbour.id}")
    assert "只有调解员" in await say(p, NEIGHBOUR, NEIGHBOUR_SAYS)
    assert NEIGHBOUR_SAYS in texts(p, MEDIATOR)
    assert "没有权限" in await press(p, REPORTER, f"mdm:{neighbour.id}")
    await press(p, MEDIATOR, f"md:note:{case.id}")
    assert "保密记录已保存" in await say(p, MEDIATOR, NOTE)
    # The same message delivered again by Telegram: still one note, and never a new request.
    n_notes, n_requests = await count(db, MediationNote), await count(db, Request)
    await press(p, MEDIATOR, f"md:note:{case.id}")
    await p.feed(p.updates.message(MEDIATOR, "第二条记录", message_id=424242))
    await p.feed(p.updates.message(MEDIATOR, "第二条记录", message_id=424242))
    await p.drain()
    assert (await count(db, MediationNote), await count(db, Request)) == (n_notes + 1, n_requests)
    notes = await press(p, MEDIATOR, f"md:notes:{case.id}")
    assert NOTE in notes and NEIGHBOUR_SAYS in notes
    assert "没有权限" in await press(p, REPORTER, f"md:notes:{case.id}")
    assert "没有权限" in await press(p, NEIGHBOUR, f"md:view:{case.id}")

    # Session one: bad input, then a time two days ahead; reminders the day before, once.
    await press(p, MEDIATOR, f"md:sess:{case.id}")
    assert "没看懂时间" in await say(p, MEDIATOR, "明天晚上")
    assert "已经过去" in await say(p, MEDIATOR, "2020-01-01 10:00 调解室")
    text, start = session_text(2)
    assert "已安排调解会" in await say(p, MEDIATOR, text)
    assert "毛大姐调解室" in last(p, REPORTER) and "毛大姐调解室" in last(p, NEIGHBOUR)
    assert await sweep(p, config, start - timedelta(hours=30)) == 0
    n_rep, n_nb = len(p.telegram.sent(REPORTER)), len(p.telegram.sent(NEIGHBOUR))
    assert await sweep(p, config, start - timedelta(hours=23)) == 3      # two parties and the mediator
    assert await sweep(p, config, start - timedelta(hours=22)) == 0      # a second sweep sends nothing
    assert "提醒" in texts(p, REPORTER, n_rep) and "提醒" in texts(p, NEIGHBOUR, n_nb)
    assert len(p.telegram.sent(REPORTER)) == n_rep + 1

    meeting = (await one(db, MediationCase, MediationCase.id == case.id))
    first = await one(db, MediationSession, MediationSession.case_id == case.id)
    assert "没有权限" in await press(p, NEIGHBOUR, f"mdss:held:{first.id}")
    await press(p, MEDIATOR, f"mdss:held:{first.id}")
    assert f"mda:{first.id}:{reporter.id}:y" in buttons(p.telegram.sent(MEDIATOR)[-1])
    await press(p, MEDIATOR, f"mda:{first.id}:{reporter.id}:y")
    await press(p, MEDIATOR, f"mda:{first.id}:{reporter.id}:y")          # the same tap twice: one row
    await press(p, MEDIATOR, f"mda:{first.id}:{neighbour.id}:n")
    assert "没有权限" in await press(p, REPORTER, f"mda:{first.id}:{neighbour.id}:y")
    async with db.sessions() as session:
        marks = dict((await session.execute(select(MediationAttendance.party_id, MediationAttendance.present))).all())
    assert marks == {reporter.id: True, neighbour.id: False}

    # No agreement at the building level: escalate with a reason to the compound.
    assert meeting.level == 0
    await press(p, MEDIATOR, f"md:esc:{case.id}")
    n_group = len(p.telegram.sent(STAFF_CHAT_CJX))
    assert "小区调解" in await say(p, MEDIATOR, "双方分歧较大，需要小区协调")
    assert "小区调解" in last(p, REPORTER) and "分歧" not in last(p, REPORTER)   # the reason stays with mediators
    group = texts(p, STAFF_CHAT_CJX, n_group)
    assert case.number in group and "分歧" not in group and "李" not in group
    notice = p.telegram.sent(STAFF_CHAT_CJX)[-1]
    assert buttons(notice) == [f"md:view:{case.id}"]
    n_group = len(p.telegram.sent(STAFF_CHAT_CJX))
    assert "小区调解" in await press(p, CJX_STAFF, f"md:view:{case.id}", chat=STAFF_CHAT_CJX)   # answered privately
    assert "没有权限" in await press(p, OUTSIDER, f"md:view:{case.id}", chat=STAFF_CHAT_CJX)
    assert len(p.telegram.sent(STAFF_CHAT_CJX)) == n_group
    assert (await one(db, MediationCase, MediationCase.id == case.id)).level == 1

    # Session two at the compound, then the agreement, accepted by each party in the bot.
    await press(p, MEDIATOR, f"md:sess:{case.id}")
    text, _ = session_text(3, "10:00", "小区会议室")
    await say(p, MEDIATOR, text)
    second = await one(db, MediationSession, MediationSession.case_id == case.id)
    await press(p, MEDIATOR, f"mdss:held:{second.id}")
    await press(p, MEDIATOR, f"md:agree:{case.id}")
    await say(p, MEDIATOR, "乙方：12月10日前修好卫生间防水；甲方：自行粉刷天花板，不再索赔。")
    agreement = await one(db, MediationAgreement)
    ask = p.telegram.sent(NEIGHBOUR)[-1]
    assert "修好卫生间防水" in ask.text and buttons(ask) == [f"mdk:{agreement.id}:{neighbour.id}:yes",
                                                         f"mdk:{agreement.id}:{neighbour.id}:no"]
    assert "没有权限" in await press(p, REPORTER, f"mdk:{agreement.id}:{neighbour.id}:yes")   # not their answer
    assert "等待其他" in await press(p, REPORTER, f"mdk:{agreement.id}:{reporter.id}:yes")
    assert "回答过" in await press(p, REPORTER, f"mdk:{agreement.id}:{reporter.id}:no")        # no change of mind
    assert "达成" in await press(p, NEIGHBOUR, f"mdk:{agreement.id}:{neighbour.id}:yes")
    case = await one(db, MediationCase, MediationCase.id == case.id)
    assert case.status == "agreed" and case.followup_due is not None

    # Follow-up four weeks later (config): the neighbour says it does not hold → reopened at the same level.
    due = as_utc(case.followup_due)
    assert await sweep(p, config, due - timedelta(days=1)) == 0
    assert await sweep(p, config, due + timedelta(minutes=1)) == 2
    assert await sweep(p, config, due + timedelta(minutes=2)) == 0
    assert buttons(p.telegram.sent(NEIGHBOUR)[-1]) == [f"mdf:{agreement.id}:{neighbour.id}:yes",
                                                       f"mdf:{agreement.id}:{neighbour.id}:no"]
    assert "没有权限" in await press(p, OUTSIDER, f"mdf:{agreement.id}:{neighbour.id}:no")
    await press(p, NEIGHBOUR, f"mdf:{agreement.id}:{neighbour.id}:no")
    assert "重新打开" in texts(p, MEDIATOR)
    case = await one(db, MediationCase, MediationCase.id == case.id)
    assert (case.status, case.level) == ("open", 1)
    assert "过期" in await press(p, REPORTER, f"mdf:{agreement.id}:{reporter.id}:yes")   # that follow-up is over

    # A second agreement holds at its follow-up: resolved, and the request closed as solved.
    await press(p, MEDIATOR, f"md:agree:{case.id}")
    await say(p, MEDIATOR, "乙方：本周内请师傅重做防水；甲方：验收后签字。")
    again = await one(db, MediationAgreement)
    await press(p, REPORTER, f"mdk:{again.id}:{reporter.id}:yes")
    await press(p, NEIGHBOUR, f"mdk:{again.id}:{neighbour.id}:yes")
    due = as_utc((await one(db, MediationCase, MediationCase.id == case.id)).followup_due)
    assert await sweep(p, config, due + timedelta(hours=1)) == 2
    await press(p, REPORTER, f"mdf:{again.id}:{reporter.id}:yes")
    assert "化解" in await press(p, NEIGHBOUR, f"mdf:{again.id}:{neighbour.id}:yes")
    case = await one(db, MediationCase, MediationCase.id == case.id)
    request = await one(db, Request, Request.id == request.id)
    assert case.status == "resolved" and (request.status, request.solved) == ("closed", True)
    async with db.sessions() as session:
        held = list(await session.scalars(select(MediationAgreement.held).order_by(MediationAgreement.id)))
        stages = list(await session.execute(select(MediationStage.level, MediationStage.outcome)
                                            .order_by(MediationStage.id)))
        kinds = list(await session.scalars(select(RequestEvent.kind).where(RequestEvent.request_id == request.id)
                                           .order_by(RequestEvent.id)))
    assert held == [False, True]
    assert [tuple(s) for s in stages] == [(0, "escalated"), (1, "agreed"), (1, "agreed")]
    assert [k for k in kinds if k.startswith("mediation")] == [
        "mediation_opened", "mediation_escalated", "mediation_agreed", "mediation_followup", "mediation_reopened",
        "mediation_agreed", "mediation_followup", "mediation_held"]

    # The reporter's timeline tells the story in plain words; the statistics measure the success rate.
    timeline = await press(p, REPORTER, f"req:{request.id}")
    assert "已立为调解案件" in timeline and "小区调解" in timeline
    stats = await press(p, CJX_STAFF, "mdl:stats")
    assert "立案 1 件" in stats and "小区调解：受理 1，达成协议 2，上报 0，回访 2，履行 1，成功率 50%" in stats
    assert "单元信息员调解：受理 1，达成协议 0，上报 1" in stats
    assert "没有权限" in await press(p, MEDIATOR, "mdl:stats")        # volunteers mediate; staff report

    # Privacy across the whole case: each party saw only what was meant for them; the group saw numbers.
    reporter_saw, neighbour_saw = texts(p, REPORTER), texts(p, NEIGHBOUR)
    for secret in (NOTE, NEIGHBOUR_SAYS, PARTY_NAME, "李建国", "分歧"):
        assert secret not in reporter_saw
    for secret in (NOTE, REPORT[:8], "陈大娘", "分歧"):
        assert secret not in neighbour_saw
    group = texts(p, STAFF_CHAT_CJX)
    for secret in (NOTE, NEIGHBOUR_SAYS, PARTY_NAME, "陈大娘", "修好卫生间防水"):
        assert secret not in group
    # Every notification was queued once.
    async with db.sessions() as session:
        keys = list(await session.scalars(select(OutboxMessage.key)))
    assert len(keys) == len(set(keys))


async def test_declined_agreement_offline_party_and_the_top_level(room, db, config):
    p = room
    request, case = await open_case(p, db)
    reporter = await one(db, MediationParty, MediationParty.side == 1)
    await press(p, REPORTER, f"mdy:{reporter.id}:yes")
    # A neighbour without a chat account, recorded by the mediator in person.
    await press(p, MEDIATOR, f"md:party:{case.id}")
    await say(p, MEDIATOR, "一楼王奶奶")
    await press(p, MEDIATOR, f"md:prec:{case.id}")
    await press(p, MEDIATOR, f"md:prec:{case.id}")                         # second tap: nothing added
    offline = await one(db, MediationParty, MediationParty.side == 2)
    assert (offline.status, offline.user_id) == ("recorded", None)
    assert await count(db, MediationParty, MediationParty.case_id == case.id) == 2

    # Up two levels; staff of the community take the lead at the residents' committee; no higher level.
    for reason in ("单元调解不成", "小区调解不成"):
        await press(p, MEDIATOR, f"md:esc:{case.id}")
        await say(p, MEDIATOR, reason)
    assert (await one(db, MediationCase, MediationCase.id == case.id)).level == 2
    assert "没有权限" in await press(p, STAFF, f"md:lead:{case.id}")       # another community's staff
    assert "主调解员" in await press(p, CJX_STAFF, f"md:lead:{case.id}")
    assert "主调解员" in await press(p, MEDIATOR, f"md:agree:{case.id}")    # no longer the lead
    assert "最高一级" in await press(p, CJX_STAFF, f"md:esc:{case.id}")

    # The agreement: the lead records the offline party's answer; the reporter declines → mediation goes on.
    await press(p, CJX_STAFF, f"md:agree:{case.id}")
    assert "没看懂" in await say(p, CJX_STAFF, "x" * 3000)
    await say(p, CJX_STAFF, "王奶奶：晚上十点后不再剁馅；陈大娘：有事先敲门沟通。")
    agreement = await one(db, MediationAgreement)
    assert f"mdk:{agreement.id}:{offline.id}:yes" in buttons(p.telegram.sent(CJX_STAFF)[-1])
    assert "没有权限" in await press(p, MEDIATOR, f"mdk:{agreement.id}:{offline.id}:yes")  # only the lead
    await press(p, CJX_STAFF, f"mdk:{agreement.id}:{offline.id}:yes")
    assert "不同意" in await press(p, REPORTER, f"mdk:{agreement.id}:{reporter.id}:no")
    assert (await one(db, MediationCase, MediationCase.id == case.id)).status == "open"
    assert "不同意这份协议" in texts(p, CJX_STAFF)

    # No agreement in the end: referred to legal aid; nothing more can happen on the case.
    await press(p, CJX_STAFF, f"md:legal:{case.id}")
    assert "法律援助" in await say(p, CJX_STAFF, "涉及赔偿金额，建议走法律途径")
    case = await one(db, MediationCase, MediationCase.id == case.id)
    request = await one(db, Request, Request.id == request.id)
    assert (case.status, request.status) == ("referred", "closed")
    assert "法律援助" in last(p, REPORTER)
    assert "不能进行这一步" in await press(p, CJX_STAFF, f"md:sess:{case.id}")
    assert "过期" in await press(p, CJX_STAFF, f"mdk:{agreement.id}:{offline.id}:no")


async def test_forged_and_malformed_callbacks_change_nothing(room, db, config):
    p = room
    request, case = await open_case(p, db)
    reporter = await one(db, MediationParty, MediationParty.side == 1)
    await press(p, REPORTER, f"mdy:{reporter.id}:yes")
    # A second case, with the outsider as its reporter, to act across cases.
    await p.feed(p.updates.message(OUTSIDER, "隔壁天天半夜吵架摔东西 吵得睡不着 想请调解员调解"))
    await p.drain()
    other_request = await one(db, Request, Request.user_id.is_not(None))
    assert other_request.id != request.id and other_request.category == "mediation"
    await press(p, CJX_STAFF, f"mdo:{other_request.id}", chat=STAFF_CHAT_CJX)   # staff open it from the group card
    other = await one(db, MediationCase)
    outsider_party = await one(db, MediationParty, MediationParty.case_id == other.id)
    await press(p, OUTSIDER, f"mdy:{outsider_party.id}:yes")
    before = await count(db, OutboxMessage)

    refused = [
        (REPORTER, f"mdo:{request.id}"),                  # a resident acting as mediator
        (REPORTER, f"md:view:{case.id}"), (REPORTER, f"md:esc:{case.id}"), (REPORTER, f"md:join:{case.id}"),
        (STAFF, f"mdo:{request.id}"), (STAFF, f"md:view:{case.id}"), (STAFF, f"md:join:{case.id}"),
        (OUTSIDER, f"mdv:{reporter.id}"), (OUTSIDER, f"mdm:{reporter.id}"),   # a party of another case
        (REPORTER, f"mdv:{outsider_party.id}"), (REPORTER, f"md:view:{other.id}"),
        (MEDIATOR, f"md:view:{other.id}"),                # not on that case (may join it, not read it)
        (REPORTER, "md:view:999999"), (REPORTER, "mdv:999999"), (REPORTER, "mdo:999999"),
        (REPORTER, "mdk:999999:1:yes"), (REPORTER, "mdf:1:999999:yes"), (MEDIATOR, "mdss:held:999999"),
        (MEDIATOR, "md:view:abc"), (MEDIATOR, "mda:1:2:y"), (MEDIATOR, "mdo:-1"),
    ]
    for user, data in refused:
        reply = await press(p, user, data)
        assert "没有权限" in reply, (data, reply)
    stale = [(MEDIATOR, f"md:hack:{case.id}"), (MEDIATOR, "md:view"), (MEDIATOR, f"md:view:{case.id}:1"),
             (REPORTER, f"mdy:{reporter.id}:maybe"), (REPORTER, f"mdk:1:{reporter.id}:maybe"), (MEDIATOR, "mdl:all"),
             (MEDIATOR, f"md:pinv:{case.id}"),            # no name typed first
             (MEDIATOR, "md:view:" + "9" * 40)]
    for user, data in stale:
        reply = await press(p, user, data)
        assert "失效" in reply, (data, reply)
    assert await count(db, OutboxMessage) == before
    assert await count(db, MediationParty) == 2 and await count(db, MediationNote) == 0
    # A party of one case cannot answer another case's agreement, even with their own party id.
    await press(p, MEDIATOR, f"md:agree:{case.id}")
    await say(p, MEDIATOR, "双方互相体谅。")
    agreement = await one(db, MediationAgreement)
    assert "没有权限" in await press(p, OUTSIDER, f"mdk:{agreement.id}:{outsider_party.id}:yes")
    assert "没有权限" in await press(p, OUTSIDER, f"mdk:{agreement.id}:{reporter.id}:yes")
    assert await count(db, MediationAgreement, MediationAgreement.status == "proposed") == 1
    await press(p, REPORTER, f"mdk:{agreement.id}:{reporter.id}:no")      # back to mediation
    # A party cannot join their own case as the other side, nor a mediator as a party.
    await press(p, MEDIATOR, f"md:party:{case.id}")
    await say(p, MEDIATOR, "对门邻居")
    await press(p, MEDIATOR, f"md:pinv:{case.id}")
    code = re.findall(r"/join ([A-Z0-9]{8})", texts(p, MEDIATOR))[-1]
    invited = await one(db, MediationParty, MediationParty.side == 2, MediationParty.case_id == case.id)
    await say(p, REPORTER, f"/join {code}")
    assert "另一方" in await press(p, REPORTER, f"mdy:{invited.id}:yes")
    await say(p, MEDIATOR, f"/join {code}")
    assert "调解员" in await press(p, MEDIATOR, f"mdy:{invited.id}:yes")
    assert (await one(db, MediationParty, MediationParty.id == invited.id)).status == "invited"
    # Opening the same request twice opens one case; a co-mediator may join, once.
    await press(p, MEDIATOR, f"mdo:{request.id}")
    assert await count(db, MediationCase) == 2
    # Staff of the community oversee the case; its confidential notes need joining it first.
    assert "调解案件" in await press(p, CJX_STAFF, f"md:view:{case.id}")
    assert f"md:join:{case.id}" in buttons(p.telegram.sent(CJX_STAFF)[-1])
    assert f"md:notes:{case.id}" not in buttons(p.telegram.sent(CJX_STAFF)[-1])
    assert "没有权限" in await press(p, CJX_STAFF, f"md:notes:{case.id}")
    await press(p, CJX_STAFF, f"md:join:{case.id}")
    await press(p, CJX_STAFF, f"md:join:{case.id}")
    assert "保密记录" in await press(p, CJX_STAFF, f"md:notes:{case.id}")
    # Bad invitation codes get a kind reply.
    for bad in ("/join", "/join 12345", "/join ' OR 1=1 --", "/start mdZZZZZZZZ"):
        assert "无效" in await say(p, THIRD, bad)
    assert await count(db, User, User.external_id == str(THIRD), User.consent_at.is_not(None)) == 0


async def test_followup_reminder_then_closed_unconfirmed_and_sweeps_idempotent(room, db, config):
    p = room
    request, case = await open_case(p, db)
    reporter = await one(db, MediationParty, MediationParty.side == 1)
    await press(p, REPORTER, f"mdy:{reporter.id}:yes")
    await press(p, MEDIATOR, f"md:agree:{case.id}")
    await say(p, MEDIATOR, "双方各退一步，互相道歉。")
    agreement = await one(db, MediationAgreement)
    await press(p, REPORTER, f"mdk:{agreement.id}:{reporter.id}:yes")
    due = as_utc((await one(db, MediationCase, MediationCase.id == case.id)).followup_due)
    assert await sweep(p, config, due) == 1
    assert await sweep(p, config, due + timedelta(days=6)) == 0
    assert await sweep(p, config, due + timedelta(days=7)) == 1          # one reminder
    assert "提醒" in last(p, REPORTER)
    assert await sweep(p, config, due + timedelta(days=8)) == 0
    assert await sweep(p, config, due + timedelta(days=14)) == 1         # closed, not counted as holding
    assert await sweep(p, config, due + timedelta(days=15)) == 0
    case = await one(db, MediationCase, MediationCase.id == case.id)
    agreement = await one(db, MediationAgreement, MediationAgreement.id == agreement.id)
    assert case.status == "resolved" and agreement.held is None
    assert "过期" in await press(p, REPORTER, f"mdf:{agreement.id}:{reporter.id}:yes")


async def test_decline_cancel_my_data_forget_me_and_english(room, db, config):
    p = room
    request, case = await open_case(p, db)
    reporter = await one(db, MediationParty, MediationParty.side == 1)
    await press(p, REPORTER, f"mdy:{reporter.id}:yes")
    # The invited side declines: the invitation is used up and no account is linked to the case.
    await press(p, MEDIATOR, f"md:party:{case.id}")
    await say(p, MEDIATOR, "三楼张先生")
    await press(p, MEDIATOR, f"md:pinv:{case.id}")
    link = re.findall(r"https://t\.me/linju_bot\?start=(md[A-Z0-9]{8})", texts(p, MEDIATOR))[-1]
    invited = await one(db, MediationParty, MediationParty.side == 2)
    await p.feed(p.updates.message(NEIGHBOUR, f"/start {link}", first_name="张伟"))   # opened the link
    assert "没有保存" in await press(p, NEIGHBOUR, f"mdy:{invited.id}:no")
    invited = await one(db, MediationParty, MediationParty.id == invited.id)
    neighbour = await one(db, User, User.external_id == str(NEIGHBOUR))
    assert (invited.status, invited.user_id, invited.invite_hash) == ("declined", None, None)
    assert neighbour.consent_at is None                                     # declining consents to nothing
    assert "拒绝参与" in texts(p, MEDIATOR)

    # A session planned and cancelled: the reporter is told; a cancelled session is never reminded.
    await press(p, MEDIATOR, f"md:sess:{case.id}")
    text, start = session_text(2)
    await say(p, MEDIATOR, text)
    meeting = await one(db, MediationSession)
    assert "调解案件" in await press(p, CJX_STAFF, f"md:join:{case.id}")     # staff join as co-mediator
    assert "只能由本案的主调解员" in await press(p, CJX_STAFF, f"mdss:cancel:{meeting.id}")
    await press(p, MEDIATOR, f"mdss:cancel:{meeting.id}")
    assert "已取消" in last(p, REPORTER)
    assert "开过或取消" in await press(p, MEDIATOR, f"mdss:cancel:{meeting.id}")
    assert await sweep(p, config, start - timedelta(hours=12)) == 0

    # The reporter writes privately, then sees it in /mydata, then erases it with /forgetme.
    await press(p, REPORTER, f"mdv:{reporter.id}")
    await press(p, REPORTER, f"mdm:{reporter.id}")
    await say(p, REPORTER, "他家孩子每天晚上跳绳到十一点")
    mine = await say(p, REPORTER, "/mydata")
    assert "跳绳" in mine and case.number in mine and NOTE not in mine and "三楼张先生" not in mine
    await say(p, REPORTER, "/forgetme")
    await press(p, REPORTER, "fm:yes")
    async with db.sessions() as session:
        party = await session.get(MediationParty, reporter.id)
        written = list(await session.scalars(select(MediationNote.text).where(MediationNote.party_id == reporter.id)))
    assert party.name != "陈大娘" and "跳绳" not in "".join(written) and party.status == "consented"

    # English mediators and parties get English, with the same privacy.
    async with db.sessions() as session:
        mediator = await session.scalar(select(User).where(User.external_id == str(MEDIATOR)))
        mediator.locale = "en"
        await session.commit()
    card = await press(p, MEDIATOR, f"md:view:{case.id}")
    assert "Mediation case" in card and "Building informant" in card and "declined" in card
