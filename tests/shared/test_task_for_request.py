"""`volunteering.task_for_request` (chat button and dashboard form alike) and the deliberation board query."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from shared import deliberation, volunteering
from shared.clock import as_utc, utcnow
from shared.db.models import DelibTopic, Request, RequestEvent, Task, User
from shared.domain.deliberation import Stage
from shared.domain.requests import RequestStatus
from shared.intake.outcome import route
from shared.repo.requests import create_request
from tests.people import person


async def open_request(db, config) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A routed zjy request and a zjy staff member: (request id, staff id)."""
    async with db.sessions() as session:
        staff = await person(session, "800", "zjy", staff=True)
        resident = await person(session, "801", "zjy")
        request, _ = await create_request(session, community_code="zjy", user_id=resident.id, text="想请人帮忙取药",
                                          idempotency_key="task-for-request")
        await route(session, config, request, "repair", urgent=False, confidence=0.9, actor="test",
                    only_from={RequestStatus.RECEIVED})
        await session.commit()
        return request.id, staff.id


async def make(db, config, request_id: int, staff_id: int, **kwargs) -> volunteering.RequestTask:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        request, staff = await session.get(Request, request_id), await session.get(User, staff_id)
        made = await volunteering.task_for_request(session, config, request, staff,
                                                   **{"skill": "errands", "details": request.text, **kwargs})
        await session.commit()
        return made


async def count(db, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_one_task_per_request_with_the_chats_defaults(db, config):
    request_id, staff_id = await open_request(db, config)
    made = await make(db, config, request_id, staff_id)
    assert made.result == "ok" and made.task is not None
    async with db.sessions() as session:
        request = await session.get(Request, request_id)
        task = await session.get(Task, made.task.id)
    assert task.title == volunteering.default_task_title(request) and request.number in task.title
    assert (task.source, task.request_id, task.created_by, task.details) == ("request", request_id, staff_id, "想请人帮忙取药")
    assert as_utc(task.window_start) > utcnow()
    assert (await make(db, config, request_id, staff_id)).result == "exists"
    assert await count(db, Task) == 1
    assert await count(db, RequestEvent, RequestEvent.kind == "task_created") == 1


async def test_refusals_make_nothing(db, config):
    request_id, staff_id = await open_request(db, config)
    past = (utcnow() - timedelta(hours=5), utcnow() - timedelta(hours=2))
    assert (await make(db, config, request_id, staff_id, skill="juggling")).result == "unknown_skill"
    assert (await make(db, config, request_id, staff_id, window=past)).result == "window_over"
    for hours in (0.0, -1.0, 24.5, float("nan"), float("inf")):
        assert (await make(db, config, request_id, staff_id, est_hours=hours)).result == "bad_hours", hours
    async with db.sessions() as session:
        await session.execute(update(Request).where(Request.id == request_id).values(status=RequestStatus.CLOSED))
        await session.commit()
    assert (await make(db, config, request_id, staff_id)).result == "not_open"
    assert await count(db, Task) == 0


async def test_concurrent_attempts_make_one_task(db, config, database_url):
    """Two staff members (or two tabs) at once: the request's row lock lets one through."""
    request_id, staff_id = await open_request(db, config)
    if database_url.startswith("sqlite"):
        results = [(await make(db, config, request_id, staff_id)).result for _ in range(2)]
    else:
        results = [m.result for m in await asyncio.gather(*(make(db, config, request_id, staff_id) for _ in range(4)))]
    assert sorted(results) == ["exists"] * (len(results) - 1) + ["ok"]
    assert await count(db, Task) == 1


async def test_board_by_step_with_closed_apart_and_for_every_community(db, config):
    async with db.sessions() as session:
        staff = {c: await person(session, f"7{i}0", c, staff=True) for i, c in enumerate(("zjy", "cjx"))}
        resident = {c: await person(session, f"7{i}1", c) for i, c in enumerate(("zjy", "cjx"))}
        ids: dict[tuple[str, str], int] = {}
        for community in ("zjy", "cjx"):
            for stage in (Stage.PROPOSED, Stage.DISCUSSING, Stage.CLOSED, Stage.ANSWERED):
                topic = (await deliberation.propose(session, config, resident[community], title=f"{community}{stage}",
                                                    description="说明", photos=[], compound=None)).topic
                ids[(community, stage)] = topic.id
                if stage != Stage.PROPOSED:
                    await session.execute(update(DelibTopic).where(DelibTopic.id == topic.id).values(stage=str(stage)))
        await session.commit()
        plain = await deliberation.board(session, "zjy")
        apart = await deliberation.board(session, "zjy", closed_apart=True)
        everyone = await deliberation.board(session, None, closed_apart=True)
    assert staff  # both communities have their staff; the board itself checks nobody (callers do)

    def shown(steps) -> dict[int, set[int]]:  # type: ignore[no-untyped-def]
        return {step: {t.id for t in found} for step, found in steps.items()}

    assert shown(plain) == {1: {ids[("zjy", Stage.PROPOSED)]}, 2: {ids[("zjy", Stage.DISCUSSING)]},
                            3: set(), 4: {ids[("zjy", Stage.CLOSED)]}}
    assert shown(apart) == {1: {ids[("zjy", Stage.PROPOSED)]}, 2: {ids[("zjy", Stage.DISCUSSING)]},
                            3: set(), 4: set(), deliberation.BOARD_CLOSED: {ids[("zjy", Stage.CLOSED)]}}
    assert shown(everyone)[deliberation.BOARD_CLOSED] == {ids[("zjy", Stage.CLOSED)], ids[("cjx", Stage.CLOSED)]}
    answered = {ids[("zjy", Stage.ANSWERED)], ids[("cjx", Stage.ANSWERED)]}
    assert not any(answered & ids_ for ids_ in shown(everyone).values())
