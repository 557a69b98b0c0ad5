"""Deliberation (议事四步法) through the real bot code: the 井儿街 water pipe from proposal to rating.

Runs on SQLite and PostgreSQL, with the in-process and the Redis broker. The scheduler's sweep
runs with a controllable clock.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.scheduler import jobs
from shared import deliberation as service
from shared.clock import as_utc, utcnow
from shared.db.models import (
    DelibAction, DelibBallot, DelibComment, DelibEvent, DelibMeeting, DelibRating, DelibResidence, DelibSupport,
    DelibTopic, DelibVote, OutboxMessage, Request, Task, User,
)
from tests.pipeline.test_request_handling import buttons, make_staff, texts
from tests.pipeline.test_resident_request import onboard

STAFF_CHAT_ZJZ = -1001000000501
ZJZ_STAFF = 610001
CJX_STAFF = 610002
PROPOSER, B, C, D, E = 510001, 510002, 510003, 510004, 510005
NO_COMPOUND = 510006        # lives in 中街子 but has not said which compound
OUTSIDER = 510007           # lives in 畅家巷 (another community)
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def hood(pipeline, db):
    for uid in (PROPOSER, B, C, D, E, NO_COMPOUND):
        await onboard(pipeline, uid, community="zjz")
    await onboard(pipeline, OUTSIDER, community="cjx")
    await make_staff(db, ZJZ_STAFF, "zjz")
    await make_staff(db, CJX_STAFF, "cjx")
    return pipeline


async def one(db, model, *where):  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return (await session.scalars(select(model).where(*where).order_by(model.id.desc()))).first()


async def count(db, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def topic_of(db, topic_id: int) -> DelibTopic:
    async with db.sessions() as session:
        return await session.get(DelibTopic, topic_id)


async def kinds(db, topic_id: int) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(DelibEvent.kind).where(DelibEvent.topic_id == topic_id)
                                          .order_by(DelibEvent.id)))


async def propose(p, db, uid: int = PROPOSER, scope: str = "0") -> DelibTopic:
    await p.feed(p.updates.press(uid, "dlm:new"))
    await p.feed(p.updates.message(uid, "井儿街10-24号楼院上下水管改造"))
    await p.feed(p.updates.message(uid, "楼院从五月底起就用不上自来水，三不管楼院没人管，希望改造上下水管网和楼顶防水。"))
    await p.feed(p.updates.press(uid, "dlp:skip"))
    await p.feed(p.updates.press(uid, f"dls:{scope}"))
    await p.drain()
    return await one(p.db, DelibTopic)


async def accepted_topic(p, db) -> DelibTopic:
    topic = await propose(p, db)
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:acc:{topic.id}", chat_id=STAFF_CHAT_ZJZ))
    await p.drain()
    return await topic_of(db, topic.id)


async def declare_and_support(p, uid: int, topic_id: int) -> None:
    await p.feed(p.updates.press(uid, f"dl:sup:{topic_id}"))
    await p.feed(p.updates.press(uid, "dlc:0"))             # 井儿街, the only compound of 中街子
    await p.feed(p.updates.press(uid, f"dl:sup:{topic_id}"))


async def open_vote(p, topic_id: int, options: str = "同意改造\n暂缓改造", mode: str = "secret", quorum: int = 3,
                    hours: int = 48, voters: str | None = "compound") -> None:
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:vote:{topic_id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, options))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlo:{mode}"))
    if voters is not None:          # a compound topic: who may vote
        await p.feed(p.updates.press(ZJZ_STAFF, f"dlw:{voters}"))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlq:{quorum}"))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlt:{hours}"))
    await p.drain()


def local_day(days: int) -> str:
    return (utcnow().astimezone(TZ) + timedelta(days=days)).strftime("%Y-%m-%d")


async def test_the_jinger_street_pipe_through_all_four_steps(hood, db, config):
    p = hood
    # --- step 1: propose (from the menu) ---------------------------------------------------------
    assert "dlm:list" in buttons(p.telegram.sent(PROPOSER)[-1])   # the main menu after onboarding
    await p.feed(p.updates.press(PROPOSER, "dlm:list"))
    assert "dlm:new" in buttons(p.telegram.sent(PROPOSER)[-1]) and "dlm:board" not in buttons(p.telegram.sent(PROPOSER)[-1])
    await p.feed(p.updates.press(PROPOSER, "dlm:new"))
    await p.feed(p.updates.message(PROPOSER, "井儿街10-24号楼院上下水管改造"))
    await p.feed(p.updates.message(PROPOSER, "楼院从五月底起就用不上自来水，希望改造上下水管网和楼顶防水。"))
    assert "dlp:skip" in buttons(p.telegram.sent(PROPOSER)[-1])
    await p.feed(p.updates.press(PROPOSER, "dlp:skip"))
    scope = p.telegram.sent(PROPOSER)[-1]
    assert buttons(scope) == ["dls:all", "dls:0"] and "井儿街" in str(scope.reply_markup)
    await p.feed(p.updates.press(PROPOSER, "dls:0"))
    await p.feed(p.updates.press(PROPOSER, "dls:0"))               # a second tap proposes nothing more
    await p.drain()
    assert await count(db, DelibTopic) == 1
    topic = await one(db, DelibTopic)
    assert (topic.stage, topic.compound, topic.community_code) == ("proposed", "井儿街", "zjz")
    card = p.telegram.sent(STAFF_CHAT_ZJZ)[-1]
    assert "新议题待审核" in card.text and f"dl:acc:{topic.id}" in buttons(card)

    # A proposal is not public before it is accepted.
    await p.feed(p.updates.press(B, f"dl:view:{topic.id}"))
    assert "没有找到" in p.telegram.sent(B)[-1].text
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:acc:{topic.id}", chat_id=STAFF_CHAT_ZJZ))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:acc:{topic.id}", chat_id=STAFF_CHAT_ZJZ))   # twice
    await p.drain()
    assert "不在这一步" in p.telegram.sent(ZJZ_STAFF)[-1].text
    assert (await topic_of(db, topic.id)).stage == "discussing"
    assert "已被社区受理" in texts(p, PROPOSER)

    # --- step 2: discuss ---------------------------------------------------------------------------
    await p.feed(p.updates.press(B, f"dl:sup:{topic.id}"))
    assert buttons(p.telegram.sent(B)[-1]) == ["dlc:0"]           # asked for the compound first
    assert await count(db, DelibSupport) == 0
    await p.feed(p.updates.press(B, "dlc:0"))
    assert "井儿街" in p.telegram.sent(B)[-1].text
    await p.feed(p.updates.press(B, "dlc:0"))                      # declared once, kept
    assert "已经登记" in p.telegram.sent(B)[-1].text
    await p.feed(p.updates.press(B, f"dl:sup:{topic.id}"))
    await p.feed(p.updates.press(B, f"dl:sup:{topic.id}"))         # a double tap supports once
    assert "已经附议" in p.telegram.sent(B)[-1].text
    for uid in (PROPOSER, C, D):
        await declare_and_support(p, uid, topic.id)
    await p.drain()
    assert not any("附议" in m.text and "议事会" in m.text for m in p.telegram.sent(STAFF_CHAT_ZJZ))
    await declare_and_support(p, E, topic.id)                      # the fifth supporter: staff are told once
    await p.drain()
    flagged = [m for m in p.telegram.sent(STAFF_CHAT_ZJZ) if "位居民附议" in m.text]
    assert len(flagged) == 1 and "5" in flagged[0].text
    assert await count(db, DelibSupport) == 5

    await p.feed(p.updates.press(C, f"dl:com:{topic.id}"))
    await p.feed(p.updates.message(C, "建议先请供水集团来看看主管道"))
    await p.feed(p.updates.press(B, f"dl:com:{topic.id}"))
    await p.feed(p.updates.message(B, "楼上张三电话13800000000天天漏水"))
    await p.drain()
    moderation = [m for m in p.telegram.sent(STAFF_CHAT_ZJZ) if "有新意见" in m.text]
    assert len(moderation) == 2
    bad = await one(db, DelibComment, DelibComment.user_id == (await one(db, User, User.external_id == str(B))).id)
    assert f"dlh:{bad.id}:private" in buttons(moderation[-1])
    await p.feed(p.updates.press(B, f"dlh:{bad.id}:private"))      # a resident cannot moderate
    assert "没有权限" in p.telegram.sent(B)[-1].text
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlh:{bad.id}:private", chat_id=STAFF_CHAT_ZJZ))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlh:{bad.id}:private", chat_id=STAFF_CHAT_ZJZ))
    await p.drain()
    assert "含有个人信息" in p.telegram.sent(B)[-1].text
    assert sum("被社区隐藏" in m.text for m in p.telegram.sent(B)) == 1
    await p.feed(p.updates.press(D, f"dl:cm:{topic.id}"))
    shown = p.telegram.sent(D)[-1].text
    assert "供水集团" in shown and "13800000000" not in shown

    meeting_day = local_day(3)
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:meet:{topic.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, "明天晚上"))
    assert "没看懂时间" in p.telegram.sent(ZJZ_STAFF)[-1].text
    await p.feed(p.updates.message(ZJZ_STAFF, f"{meeting_day} 19:00 中街子社区议事厅"))
    await p.drain()
    assert "已安排议事会" in p.telegram.sent(ZJZ_STAFF)[-1].text
    assert all("议事会" in texts(p, uid) for uid in (PROPOSER, B, C, D, E))
    await p.feed(p.updates.press(D, f"dl:view:{topic.id}"))
    assert f"下次议事会：{meeting_day} 19:00，中街子社区议事厅" in p.telegram.sent(D)[-1].text
    meeting = await one(db, DelibMeeting)
    starts = as_utc(meeting.starts_at)
    assert await jobs.deliberation(p.db, p.broker, config, starts - timedelta(hours=30)) == 0   # too early
    assert await jobs.deliberation(p.db, p.broker, config, starts - timedelta(hours=20)) == 5   # the day before
    assert await jobs.deliberation(p.db, p.broker, config, starts - timedelta(hours=19)) == 0   # never twice
    await p.drain()
    assert all(sum("提醒：明天有" in m.text for m in p.telegram.sent(uid)) == 1 for uid in (PROPOSER, B, C, D, E))

    # --- step 3: decide ---------------------------------------------------------------------------
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:vote:{topic.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, "同意改造\n暂缓改造"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlo:secret"))
    voters = p.telegram.sent(ZJZ_STAFF)[-1]
    assert buttons(voters) == ["dlw:compound", "dlw:community"] and "井儿街" in voters.reply_markup.inline_keyboard[0][0].text
    await p.feed(p.updates.press(ZJZ_STAFF, "dlw:compound"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlq:3"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlt:48"))
    await p.drain()
    vote = await one(db, DelibVote)
    assert (vote.options, vote.secret, vote.quorum, vote.compound) == (["同意改造", "暂缓改造"], True, 3, "井儿街")
    assert (await topic_of(db, topic.id)).stage == "voting"
    ballot = [m for m in p.telegram.sent(C) if "【投票】" in m.text][-1]
    assert buttons(ballot) == [f"dlv:{vote.id}:0", f"dlv:{vote.id}:1"]
    assert not any("【投票】" in m.text for m in p.telegram.sent(NO_COMPOUND))   # not eligible: not asked
    assert not any("【投票】" in m.text for m in p.telegram.sent(OUTSIDER))

    await p.feed(p.updates.press(PROPOSER, f"dlv:{vote.id}:0"))
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:0"))
    await p.feed(p.updates.press(C, f"dlv:{vote.id}:1"))
    assert "已投票：暂缓改造" in p.telegram.sent(C)[-1].text
    await p.feed(p.updates.press(C, f"dlv:{vote.id}:0"))           # changed until close
    assert "已改为：同意改造" in p.telegram.sent(C)[-1].text
    await p.feed(p.updates.press(D, f"dlv:{vote.id}:1"))
    await p.feed(p.updates.press(D, f"dlv:{vote.id}:1"))           # pressed twice: one ballot
    assert "不用重复投" in p.telegram.sent(D)[-1].text
    await p.feed(p.updates.press(NO_COMPOUND, f"dlv:{vote.id}:0"))
    assert buttons(p.telegram.sent(NO_COMPOUND)[-1]) == ["dlc:0"]
    await p.feed(p.updates.press(OUTSIDER, f"dlv:{vote.id}:0"))
    assert "其他社区" in p.telegram.sent(OUTSIDER)[-1].text
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:close:{topic.id}"))   # not while the vote is open
    assert "不在这一步" in p.telegram.sent(ZJZ_STAFF)[-1].text
    assert await count(db, DelibBallot) == 4

    closes = as_utc(vote.closes_at)
    assert await jobs.deliberation(p.db, p.broker, config, closes - timedelta(minutes=1)) == 0
    sent = await jobs.deliberation(p.db, p.broker, config, closes + timedelta(minutes=1))
    assert sent == 6                  # five supporters who took part (all voted or supported) + the staff group
    assert await jobs.deliberation(p.db, p.broker, config, closes + timedelta(minutes=2)) == 0
    await p.drain()
    vote = await one(db, DelibVote)
    assert vote.result == {"result": "decided", "counts": [3, 1], "turnout": 4, "winner": 0}
    assert (await topic_of(db, topic.id)).stage == "decided"
    result = [m for m in p.telegram.sent(D) if "【投票结果】" in m.text]
    assert len(result) == 1 and "决议：同意改造" in result[0].text and "共 4 人投票" in result[0].text
    assert "13800000000" not in result[0].text and "王阿姨" not in result[0].text   # secret: no names
    await p.feed(p.updates.press(E, f"dlv:{vote.id}:1"))           # no voting after close
    assert "投票已经结束" in p.telegram.sent(E)[-1].text
    assert await count(db, DelibBallot) == 4

    # --- step 4: carry out and report -----------------------------------------------------------------
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:act:{topic.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, "更换上下水管"))
    assert "三部分" in p.telegram.sent(ZJZ_STAFF)[-1].text
    await p.feed(p.updates.message(ZJZ_STAFF, f"更换上下水管网 / 街道物管办 / {local_day(20)}"))
    await p.drain()
    action = await one(db, DelibAction)
    assert (action.owner, action.status) == ("街道物管办", "open")
    assert (await topic_of(db, topic.id)).stage == "carrying_out"
    assert "开始落实" in texts(p, C)

    await p.feed(p.updates.press(C, f"dla:prog:{action.id}"))      # a resident cannot post progress
    assert "没有权限" in p.telegram.sent(C)[-1].text
    await p.feed(p.updates.press(ZJZ_STAFF, f"dla:prog:{action.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, "城市供水集团已进场施工"))
    await p.drain()
    assert all("已进场施工" in texts(p, uid) for uid in (PROPOSER, B, C, D, E))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dla:task:{action.id}"))
    assert f"dlk:{action.id}:repairs" in buttons(p.telegram.sent(ZJZ_STAFF)[-1])
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlk:{action.id}:repairs"))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlk:{action.id}:repairs"))   # one task, not two
    assert await count(db, Task, Task.source == "deliberation") == 1
    await p.feed(p.updates.press(ZJZ_STAFF, f"dla:done:{action.id}"))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dla:done:{action.id}"))
    assert "已经标记完成" in p.telegram.sent(ZJZ_STAFF)[-1].text

    await p.feed(p.updates.press(B, f"dl:close:{topic.id}"))       # a resident cannot close a topic
    assert "没有权限" in p.telegram.sent(B)[-1].text
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:close:{topic.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, "上下水管网和楼顶防水已改造完成，居民已恢复正常用水。"))
    await p.drain()
    assert (await topic_of(db, topic.id)).stage == "closed"
    closing = [m for m in p.telegram.sent(PROPOSER) if "已办结" in m.text][-1]
    assert buttons(closing) == [f"dlr:{topic.id}:{n}" for n in range(1, 6)]
    await p.feed(p.updates.press(PROPOSER, f"dlr:{topic.id}:5"))
    await p.feed(p.updates.press(PROPOSER, f"dlr:{topic.id}:4"))   # changeable, still one rating
    await p.feed(p.updates.press(OUTSIDER, f"dlr:{topic.id}:1"))
    await p.feed(p.updates.press(C, f"dlr:{topic.id}:9"))          # malformed
    assert "失效" in p.telegram.sent(C)[-1].text
    async with db.sessions() as session:
        assert [r.score for r in await session.scalars(select(DelibRating))] == [4]

    # Every step on the public timeline, and the board by step.
    await p.feed(p.updates.press(D, f"dl:tl:{topic.id}"))
    timeline = p.telegram.sent(D)[-1].text
    for words in ("提出议题", "受理为议题", "附议达到 5 人", "一条意见被隐藏", "安排议事会", "发起投票（无记名投票",
                  "通过「同意改造」", "落实事项", "已进场施工", "已完成", "办结"):
        assert words in timeline, words
    assert await kinds(db, topic.id) == ["proposed", "accepted", "flagged", "comment_hidden", "meeting",
                                         "vote_opened", "vote_closed", "action_added", "progress", "action_task",
                                         "action_done", "closed"]
    await p.feed(p.updates.press(ZJZ_STAFF, "dlm:board"))
    board = p.telegram.sent(ZJZ_STAFF)[-1].text
    assert "第四步 执行与监督：1 个" in board and "第一步 提议：0 个" in board
    await p.feed(p.updates.press(B, "dlm:board"))
    assert "没有权限" in p.telegram.sent(B)[-1].text


async def test_a_deliberation_request_becomes_a_topic(hood, db):
    p = hood
    await p.feed(p.updates.message(B, "想在小区门口装几个长椅 大家商量一下"))
    await p.drain()
    request = await one(db, Request)
    if request.status == "needs_category":        # the classifier may ask: the resident picks 居民议事
        await p.feed(p.updates.press(B, f"cat:{request.id}:deliberation"))
        await p.drain()
        request = await one(db, Request)
    assert (request.category, request.status) == ("deliberation", "routed")
    card = [m for m in p.telegram.sent(STAFF_CHAT_ZJZ) if request.number in m.text][-1]
    assert {f"dlf:{request.id}:all", f"dlf:{request.id}:0"} <= set(buttons(card))

    await p.feed(p.updates.press(CJX_STAFF, f"dlf:{request.id}:all", chat_id=STAFF_CHAT_ZJZ))  # other community
    await p.feed(p.updates.press(B, f"dlf:{request.id}:all"))                                  # a resident
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlf:{request.id}:7", chat_id=STAFF_CHAT_ZJZ))   # no such compound
    assert await count(db, DelibTopic) == 0
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlf:{request.id}:all", chat_id=STAFF_CHAT_ZJZ))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlf:{request.id}:all", chat_id=STAFF_CHAT_ZJZ))
    await p.drain()
    assert "已经是议题" in p.telegram.sent(ZJZ_STAFF)[-1].text
    topic = await one(db, DelibTopic)
    assert await count(db, DelibTopic) == 1
    assert (topic.stage, topic.compound, topic.request_id, topic.proposer_id) == (
        "discussing", None, request.id, request.user_id)
    closed = await one(db, Request)
    assert closed.status == "closed"
    assert "已转为议题" in texts(p, B)
    # A community-wide topic needs no compound: anyone of 中街子 supports at once, nobody else.
    await p.feed(p.updates.press(NO_COMPOUND, f"dl:sup:{topic.id}"))
    assert "已附议" in p.telegram.sent(NO_COMPOUND)[-1].text
    await p.feed(p.updates.press(OUTSIDER, f"dl:sup:{topic.id}"))
    await p.feed(p.updates.press(OUTSIDER, f"dl:view:{topic.id}"))
    assert "没有找到" in p.telegram.sent(OUTSIDER)[-1].text
    assert await count(db, DelibSupport) == 1
    # The resident's request timeline says where it went.
    await p.feed(p.updates.press(B, f"req:{request.id}"))
    assert "已转为议题" in p.telegram.sent(B)[-1].text


async def test_a_proposal_answered_as_a_normal_request(hood, db):
    p = hood
    topic = await propose(p, db, scope="all")
    await p.feed(p.updates.press(PROPOSER, f"dl:req:{topic.id}"))    # the proposer cannot decide it
    assert await count(db, Request) == 0
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:req:{topic.id}", chat_id=STAFF_CHAT_ZJZ))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:req:{topic.id}", chat_id=STAFF_CHAT_ZJZ))
    await p.drain()
    assert await count(db, Request) == 1
    request = await one(db, Request)
    assert (request.category, request.status, request.user_id) == ("deliberation", "routed", topic.proposer_id)
    assert (await topic_of(db, topic.id)).stage == "answered"
    assert request.number in texts(p, PROPOSER)
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:acc:{topic.id}", chat_id=STAFF_CHAT_ZJZ))
    assert (await topic_of(db, topic.id)).stage == "answered"
    await p.feed(p.updates.press(B, "dlm:list"))
    assert "井儿街10-24号" not in p.telegram.sent(B)[-1].text      # not on the public list


async def test_bad_input_gets_a_kind_reply_and_changes_nothing(hood, db):
    p = hood
    await p.feed(p.updates.press(PROPOSER, "dlm:new"))
    for bad in ("🙂🙂🙂", "x" * 61, "\u200b\u200b", "‮"):
        await p.feed(p.updates.message(PROPOSER, bad))
        assert "没看懂标题" in p.telegram.sent(PROPOSER)[-1].text
    await p.feed(p.updates.message(PROPOSER, "加装电梯"))
    await p.feed(p.updates.message(PROPOSER, "x" * 5000))
    assert "请用文字说明" in p.telegram.sent(PROPOSER)[-1].text
    await p.feed(p.updates.message(PROPOSER, "'; DROP TABLE delib_topics; --  老楼加装电梯"))
    await p.feed(p.updates.message(PROPOSER, "不是照片"))
    assert "请发送照片" in p.telegram.sent(PROPOSER)[-1].text
    await p.feed(p.updates.press(PROPOSER, "dls:all"))             # out of order: still waiting for a photo
    assert await count(db, DelibTopic) == 0
    await p.feed(p.updates.press(PROPOSER, "dlp:skip"))
    await p.feed(p.updates.press(PROPOSER, "dls:9"))               # no such compound
    assert "失效" in p.telegram.sent(PROPOSER)[-1].text
    await p.feed(p.updates.press(PROPOSER, "dls:all"))
    await p.drain()
    topic = await one(db, DelibTopic)
    assert topic.description.startswith("'; DROP TABLE") and topic.compound is None
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:acc:{topic.id}", chat_id=STAFF_CHAT_ZJZ))

    await p.feed(p.updates.press(B, f"dl:com:{topic.id}"))
    await p.feed(p.updates.message(B, "🙂"))
    assert "请用文字写下您的意见" in p.telegram.sent(B)[-1].text
    await p.feed(p.updates.message(B, "y" * 501))
    assert await count(db, DelibComment) == 0

    await open_vote(p, topic.id, voters=None)
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:vote:{topic.id}"))
    assert "不在这一步" in p.telegram.sent(ZJZ_STAFF)[-1].text        # one vote at a time
    assert await count(db, DelibVote) == 1
    topic2 = await propose(p, db, uid=B, scope="all")
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:acc:{topic2.id}", chat_id=STAFF_CHAT_ZJZ))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:vote:{topic2.id}"))
    for bad in ("只有一个选项", "a\na", "\n".join("选项" + str(i) for i in range(7))):
        await p.feed(p.updates.message(ZJZ_STAFF, bad))
        assert "选项需要" in p.telegram.sent(ZJZ_STAFF)[-1].text
    await p.feed(p.updates.press(ZJZ_STAFF, "dlq:5"))              # quorum before the mode: stale
    assert "失效" in p.telegram.sent(ZJZ_STAFF)[-1].text
    await p.feed(p.updates.message(ZJZ_STAFF, "赞成\n反对"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlo:maybe"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlo:open"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlq:0"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlq:99999"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlq:5"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlt:5"))              # not an offered duration
    assert await count(db, DelibVote) == 1
    await p.feed(p.updates.press(ZJZ_STAFF, "dlt:24"))
    await p.feed(p.updates.press(ZJZ_STAFF, "dlt:24"))             # a second tap opens nothing more
    assert await count(db, DelibVote) == 2
    vote2 = await one(db, DelibVote)
    assert (vote2.secret, vote2.quorum) == (False, 5)


@pytest.mark.parametrize("data", [
    "dl:view:999999", "dl:sup:999999", "dl:acc:999999", "dl:close:999999", "dl:nuke:1", "dlv:999999:0",
    "dlv:1:x", "dlv:abc:0", "dlh:999999:private", "dla:done:999999", "dla:zap:1", "dlk:999999:repairs",
    "dlr:999999:5", "dlf:999999:all", "dlm:delete", "dlc:x", "dlo:secret", "dlq:5", "dlt:24", "dlp:skip",
    "dls:all", "dl:sup:1:2", "dlv:1", "dl:view:" + "9" * 40, "dlx:999999:repair", "dlw:compound", "dla:req:999999",
])
async def test_forged_and_malformed_callbacks_change_nothing(hood, db, data):
    p = hood
    before = len(p.telegram.sent(B))
    await p.feed(p.updates.press(B, data))
    reply = p.telegram.sent(B)[before:]
    assert len(reply) == 1 and any(w in reply[0].text for w in ("失效", "没有权限", "没有找到", "工作人员"))
    for model in (DelibTopic, DelibVote, DelibBallot, DelibSupport, DelibResidence, DelibRating):
        assert await count(db, model) == 0


async def test_votes_from_another_compound_or_community_and_forged_options(hood, db, config):
    p = hood
    topic = await accepted_topic(p, db)
    async with db.sessions() as session:           # C says they live in another compound of 中街子
        c_user = await session.scalar(select(User).where(User.external_id == str(C)))
        session.add(DelibResidence(user_id=c_user.id, community_code="zjz", compound="别的院"))
        await session.commit()
    await open_vote(p, topic.id, quorum=1)
    vote = await one(db, DelibVote)
    await p.feed(p.updates.press(C, f"dlv:{vote.id}:0"))
    assert "本小区" in p.telegram.sent(C)[-1].text
    await p.feed(p.updates.press(OUTSIDER, f"dlv:{vote.id}:0"))
    await p.feed(p.updates.press(CJX_STAFF, f"dlv:{vote.id}:0"))
    await p.feed(p.updates.press(B, "dlc:0"))
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:2"))           # no option 2
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:99"))
    assert await count(db, DelibBallot) == 0
    await p.feed(p.updates.press(CJX_STAFF, f"dl:close:{topic.id}"))  # staff of another community
    await p.feed(p.updates.press(CJX_STAFF, f"dl:meet:{topic.id}"))
    assert all("没有权限" in m.text for m in p.telegram.sent(CJX_STAFF)[-2:])
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:1"))
    assert await count(db, DelibBallot) == 1
    # Quorum 1, one vote: decided. Nobody else voted.
    await jobs.deliberation(p.db, p.broker, config, as_utc(vote.closes_at))
    await p.drain()
    assert (await one(db, DelibVote)).result["winner"] == 1


async def test_no_quorum_sends_the_topic_back_to_discussion_and_an_open_vote_names_voters(hood, db, config):
    p = hood
    topic = await accepted_topic(p, db)
    for uid in (PROPOSER, B):
        await p.feed(p.updates.press(uid, "dlc:0"))
    await open_vote(p, topic.id, mode="open", quorum=3)
    vote = await one(db, DelibVote)
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:0"))
    await jobs.deliberation(p.db, p.broker, config, as_utc(vote.closes_at) + timedelta(seconds=1))
    await p.drain()
    assert (await topic_of(db, topic.id)).stage == "discussing"
    assert "票数不足" in p.telegram.sent(B)[-1].text or "人数不足" in p.telegram.sent(B)[-1].text
    # Discussed again, voted again: this time enough votes, and an open vote shows who chose what.
    await open_vote(p, topic.id, mode="open", quorum=2)
    vote2 = await one(db, DelibVote)
    assert vote2.id != vote.id
    await p.feed(p.updates.press(B, f"dlv:{vote2.id}:0"))
    await p.feed(p.updates.press(PROPOSER, f"dlv:{vote2.id}:0"))
    await jobs.deliberation(p.db, p.broker, config, as_utc(vote2.closes_at) + timedelta(seconds=1))
    await p.drain()
    assert (await topic_of(db, topic.id)).stage == "decided"
    result = [m for m in p.telegram.sent(B) if "【投票结果】" in m.text][-1]
    assert "王阿姨" in result.text and "决议：同意改造" in result.text


async def test_one_ballot_per_person_under_concurrent_presses(hood, db, database_url, config):
    """Many presses at once, each in its own session: one ballot row per person, the unique constraint decides."""
    p = hood
    topic = await accepted_topic(p, db)
    await p.feed(p.updates.press(B, "dlc:0"))
    await open_vote(p, topic.id)
    vote = await one(db, DelibVote)
    b_id = (await one(db, User, User.external_id == str(B))).id

    async def press(choice: int) -> str:
        async with db.sessions() as session:
            user = await session.get(User, b_id)
            outcome = await service.cast(session, vote.id, user, choice, utcnow())
            await session.commit()
            return outcome.extra.get("ballot", outcome.result)

    if database_url.startswith("sqlite"):
        results = [await press(i % 2) for i in range(10)]          # SQLite has one writer: presses in a row
    else:
        results = await asyncio.gather(*(press(i % 2) for i in range(10)))
    assert await count(db, DelibBallot, DelibBallot.vote_id == vote.id) == 1
    assert results.count("ok") == 1 and set(results) <= {"ok", "same", "changed"}
    # Concurrent closing sweeps count once and publish once.
    closes = as_utc(vote.closes_at)

    async def sweep() -> int:
        return await jobs.deliberation(p.db, p.broker, config, closes)

    if database_url.startswith("sqlite"):
        sent = [await sweep(), await sweep()]
    else:
        sent = await asyncio.gather(sweep(), sweep(), return_exceptions=True)
        sent = [s if isinstance(s, int) else 0 for s in sent]
    assert sorted(sent)[0] == 0 and sum(sent) > 0
    await p.drain()
    assert await count(db, DelibEvent, DelibEvent.kind == "vote_closed") == 1
    async with db.sessions() as session:
        keys = list(await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like("%result%"))))
    assert len(keys) == len(set(keys)) and keys


async def test_overdue_actions_are_flagged_to_staff_once(hood, db, config):
    p = hood
    topic = await accepted_topic(p, db)
    await p.feed(p.updates.press(B, "dlc:0"))
    await open_vote(p, topic.id, quorum=1)
    vote = await one(db, DelibVote)
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:0"))
    await jobs.deliberation(p.db, p.broker, config, as_utc(vote.closes_at))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:act:{topic.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, f"楼顶防水 / 城市供水集团 / {local_day(2)}"))
    await p.drain()
    later = utcnow() + timedelta(days=4)
    n = len(p.telegram.sent(STAFF_CHAT_ZJZ))
    assert await jobs.deliberation(p.db, p.broker, config, utcnow()) == 0
    assert await jobs.deliberation(p.db, p.broker, config, later) == 1
    assert await jobs.deliberation(p.db, p.broker, config, later + timedelta(hours=1)) == 0
    await p.drain()
    assert "已超过期限" in texts(p, STAFF_CHAT_ZJZ, n)


async def test_a_compound_topic_voted_by_the_whole_community(hood, db, config):
    p = hood
    topic = await accepted_topic(p, db)
    await open_vote(p, topic.id, quorum=1, voters="community")
    vote = await one(db, DelibVote)
    assert vote.compound is None
    assert any("【投票】" in m.text for m in p.telegram.sent(NO_COMPOUND))   # every resident of 中街子 is asked
    assert not any("【投票】" in m.text for m in p.telegram.sent(OUTSIDER))
    await p.feed(p.updates.press(NO_COMPOUND, f"dlv:{vote.id}:1"))
    assert "已投票" in p.telegram.sent(NO_COMPOUND)[-1].text
    await p.feed(p.updates.press(OUTSIDER, f"dlv:{vote.id}:1"))
    assert await count(db, DelibBallot) == 1
    # Supporting the topic itself still needs the compound.
    await p.feed(p.updates.press(NO_COMPOUND, f"dl:sup:{topic.id}"))
    assert buttons(p.telegram.sent(NO_COMPOUND)[-1]) == ["dlc:0"]


async def test_an_action_handled_as_a_request_for_a_team(hood, db, config):
    p = hood
    topic = await accepted_topic(p, db)
    await p.feed(p.updates.press(B, "dlc:0"))
    await open_vote(p, topic.id, quorum=1)
    vote = await one(db, DelibVote)
    await p.feed(p.updates.press(B, f"dlv:{vote.id}:0"))
    await jobs.deliberation(p.db, p.broker, config, as_utc(vote.closes_at))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:act:{topic.id}"))
    await p.feed(p.updates.message(ZJZ_STAFF, f"更换上下水管网 / 物业维修组 / {local_day(10)}"))
    await p.drain()
    action = await one(db, DelibAction)
    await p.feed(p.updates.press(ZJZ_STAFF, f"dl:view:{topic.id}"))
    assert f"dla:req:{action.id}" in buttons(p.telegram.sent(ZJZ_STAFF)[-1])
    await p.feed(p.updates.press(ZJZ_STAFF, f"dla:req:{action.id}"))
    assert f"dlx:{action.id}:repair" in buttons(p.telegram.sent(ZJZ_STAFF)[-1])
    await p.feed(p.updates.press(B, f"dlx:{action.id}:repair"))             # a resident: refused
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlx:{action.id}:fridge"))     # not a team's label
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlx:{action.id}:nonsense"))
    assert await count(db, Request) == 0
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlx:{action.id}:repair"))
    await p.feed(p.updates.press(ZJZ_STAFF, f"dlx:{action.id}:repair"))     # once
    await p.drain()
    assert await count(db, Request) == 1
    request = await one(db, Request)
    assert (request.category, request.status, request.user_id) == ("repair", "routed", topic.proposer_id)
    assert (await one(db, DelibAction)).request_id == request.id
    assert request.number in texts(p, PROPOSER)                             # the proposer follows it
    assert "action_request" in await kinds(db, topic.id)


async def test_mydata_shows_and_forgetme_erases_what_a_resident_said(hood, db):
    p = hood
    topic = await accepted_topic(p, db)
    await declare_and_support(p, PROPOSER, topic.id)
    await p.feed(p.updates.press(PROPOSER, f"dl:com:{topic.id}"))
    await p.feed(p.updates.message(PROPOSER, "我家在3单元502 水压一直很低"))
    await p.drain()
    await p.feed(p.updates.message(PROPOSER, "/mydata"))
    mine = texts(p, PROPOSER)
    assert "3单元502" in mine and "井儿街" in mine and "topics_supported" in mine
    await p.feed(p.updates.message(PROPOSER, "/forgetme"))
    await p.feed(p.updates.press(PROPOSER, "fm:yes"))
    async with db.sessions() as session:
        comment = (await session.scalars(select(DelibComment))).one()
        kept = await session.get(DelibTopic, topic.id)
        assert "502" not in comment.text and kept.proposer_id is None and kept.title
        assert await session.scalar(select(func.count()).select_from(DelibResidence)) == 0
        assert await session.scalar(select(func.count()).select_from(DelibSupport)) == 1   # the count stays
