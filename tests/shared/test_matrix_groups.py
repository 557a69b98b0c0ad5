"""A community's groups: its Telegram group, its Matrix room, or both; every producer posts into each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from shared import activities, deliberation, mediation
from shared.clock import utcnow
from shared.config import Community
from shared.db.models import OutboxMessage
from shared.notify import Group, group_rows, groups_of, to_group
from shared.repo.requests import create_request
from tests.people import person

STAFF_ROOM = "!staff:linju.test"
VOLUNTEER_ROOM = "!vol:linju.test"


def with_rooms(config, code: str = "zjy", **rooms):  # type: ignore[no-untyped-def]
    communities = [c.model_copy(update=rooms) if c.code == code else c for c in config.communities]
    return config.model_copy(update={"communities": communities})


def matrix_only(config, code: str):  # type: ignore[no-untyped-def]
    """A centre on its own homeserver: Matrix rooms, no Telegram groups."""
    return with_rooms(config, code, staff_chat_id=None, volunteer_chat_id=None, matrix_staff_room=STAFF_ROOM,
                      matrix_volunteer_room=VOLUNTEER_ROOM)


def test_telegram_matrix_or_both(config):
    zjy = config.community("zjy")
    assert groups_of(config, "zjy", "staff") == [Group("telegram", zjy.staff_chat_id)]
    assert groups_of(config, "zjy", "volunteer") == [Group("telegram", zjy.volunteer_chat_id)]
    both = with_rooms(config, matrix_staff_room=STAFF_ROOM, matrix_volunteer_room=VOLUNTEER_ROOM)
    assert groups_of(both, "zjy", "staff") == [Group("telegram", zjy.staff_chat_id), Group("matrix", STAFF_ROOM)]
    assert groups_of(both, "zjy", "volunteer") == [Group("telegram", zjy.volunteer_chat_id),
                                                   Group("matrix", VOLUNTEER_ROOM)]
    assert groups_of(matrix_only(config, "zjy"), "zjy", "staff") == [Group("matrix", STAFF_ROOM)]
    none = with_rooms(config, staff_chat_id=None, volunteer_chat_id=None)
    assert groups_of(none, "zjy", "staff") == [] and groups_of(none, "zjy", "volunteer") == []
    # One row per group, each with its own key: the Telegram group's key is the one it always had.
    rows = group_rows(both, "zjy", "staff", "g:x:1", text="…")
    assert [(r["key"], r["platform"], r["chat_id"]) for r in rows] == [
        ("g:x:1", "telegram", str(zjy.staff_chat_id)), ("g:x:1:mx", "matrix", STAFF_ROOM)]


def test_a_room_id_must_look_like_one(config):
    data = config.community("zjy").model_dump()
    for bad in ("#alias:linju.test", "staff", "!nocolon"):
        with pytest.raises(ValidationError):
            Community.model_validate({**data, "matrix_staff_room": bad})


async def group_rows_in_outbox(db, like: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like(like)).order_by(OutboxMessage.id))
        return [(r.key, r.platform, r.chat_id) for r in rows]


async def test_both_groups_get_the_card_once_each(db, config):
    both = with_rooms(config, matrix_staff_room=STAFF_ROOM)
    chat_id = str(config.community("zjy").staff_chat_id)
    async with db.sessions() as session:
        first = await to_group(session, both, "zjy", "staff", "g:test:1", "卡片", options=[[{"text": "1", "action": "a"}]])
        again = await to_group(session, both, "zjy", "staff", "g:test:1", "卡片")   # the same event told twice
        await session.commit()
    assert len(first) == 2 and again == []
    assert await group_rows_in_outbox(db, "g:test:%") == [("g:test:1", "telegram", chat_id),
                                                           ("g:test:1:mx", "matrix", STAFF_ROOM)]
    async with db.sessions() as session:
        assert await to_group(session, with_rooms(config, staff_chat_id=None), "zjy", "staff", "g:test:2", "卡片") == []


async def test_mediation_reaches_a_matrix_only_staff_room(db, config):
    cfg = matrix_only(config, "cjx")
    async with db.sessions() as session:
        staff = await person(session, "9101", "cjx", staff=True)
        reporter = await person(session, "9102", "cjx")
        request, _ = await create_request(session, community_code="cjx", user_id=reporter.id, text="楼上漏水",
                                          idempotency_key="mx-groups:1")
        request.category, request.status, request.team = "mediation", "routed", "mediation"
        await session.commit()
        opened = await mediation.open_case(session, cfg, request, staff, utcnow())
        await session.commit()
    assert opened.result == "opened"
    rows = await group_rows_in_outbox(db, "g:md:%")
    assert rows == [(f"g:md:opened:{opened.case.id}:mx", "matrix", STAFF_ROOM)]
    async with db.sessions() as session:
        card = (await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("g:md:%")))).one()
    assert opened.case.number in card.text and card.options, "the card keeps its 'open the case' option"
    assert card.id in opened.outbox_ids


async def test_deliberation_reaches_a_matrix_only_staff_room(db, config):
    cfg = matrix_only(config, "zjz")
    async with db.sessions() as session:
        resident = await person(session, "9201", "zjz")
        outcome = await deliberation.propose(session, cfg, resident, title="加装电梯", description="老楼没有电梯",
                                             photos=[], compound=None)
        await session.commit()
    assert outcome.result == "ok"
    assert await group_rows_in_outbox(db, "g:dl:%") == [(f"g:dl:new:{outcome.topic.id}:mx", "matrix", STAFF_ROOM)]
    async with db.sessions() as session:
        card = (await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("g:dl:%")))).one()
    assert "加装电梯" in card.text and card.options and outcome.ids == [card.id]


async def test_activities_reach_a_matrix_only_staff_room(db, config):
    cfg = matrix_only(config, "cjx")
    start = utcnow() + timedelta(days=1)
    async with db.sessions() as session:
        organiser = await person(session, "9301", "cjx", staff=True)
        parent = await person(session, "9302", "cjx", name="王芳")
        activity = await activities.create_activity(session, community="cjx", title="四点半课堂", audience="everyone",
                                                    place="活动室", capacity=5, spans=[(start, start + timedelta(hours=2))],
                                                    age_min=None, age_max=None, organiser_id=organiser.id, opens=None,
                                                    closes=None, keywords=[])
        child = await activities.add_child(session, parent, name="小明", age=8, school_class="三年级二班",
                                           pickup=["妈妈 王芳"], now=utcnow())
        await session.commit()
        enrolled = await activities.enrol(session, cfg, activity.id, parent, child.id, utcnow())
        await session.commit()
        (meeting,) = await activities.upcoming(session, activity.id, utcnow())
        # Someone not on the guardian's list collects the child: staff hear at once.
        result, ids = await activities.record_pickup(session, cfg, meeting.id, enrolled.enrolment.id, organiser,
                                                     "张三", start)
        await session.commit()
    assert result == "flagged"
    rows = await group_rows_in_outbox(db, "g:ac_pickup:%")
    assert [(platform, chat) for _key, platform, chat in rows] == [("matrix", STAFF_ROOM)]
    assert rows[0][0].endswith(":mx")
    async with db.sessions() as session:
        card = (await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("g:ac_pickup:%")))).one()
    assert "张三" in card.text and card.id in ids
