"""The volunteer's claim as the bot runs it (shared.flows → shared.volunteering → shared.repo.tasks),
on SQLite and PostgreSQL: one winner under a crowd, permission checked by the same statement,
forged and repeated presses change nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from shared.clock import utcnow
from shared.db.models import OutboxMessage, Task, Volunteer
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_action
from shared.repo import tasks as task_repo
from shared.repo.users import get_or_create_user, give_consent, grant_role
from shared.volunteering import create_task

CLAIMERS = 200


async def _person(session, external_id: str, community: str, status: str | None) -> int:
    """A consented user of `community`; a volunteer registration in `status` unless None."""
    user = await get_or_create_user(session, "telegram", external_id)
    give_consent(user)
    user.community_code = community
    if status == "approved":
        grant_role(user, "volunteer")
    await session.flush()
    if status is not None:
        session.add(Volunteer(user_id=user.id, name=f"v{external_id}", community_code=community,
                              skills=["errands"], days=[], parts=[], status=status))
    return user.id


async def _task(db, config, community: str = "zjy") -> int:
    async with db.sessions() as session:
        task, _ = await create_task(session, config, community=community, skill="errands", title="代买药品",
                                    details="3 号楼 502", place=None, window_start=utcnow(),
                                    window_end=utcnow() + timedelta(hours=2))
        await session.commit()
        return task.id


async def _press(db, config, external_id: str, data: str):
    async def enqueue(_contract, _payload) -> None:
        return None

    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", external_id)
        ctx = FlowContext(session=session, config=config, user=user, enqueue=enqueue)
        return await handle_action(ctx, data)


def _won(replies) -> bool:
    # The winner gets the task card with its start / done / release buttons.
    return any(b.action.startswith("tk:start:") for r in replies for row in r.buttons for b in row)


async def _stored(db, task_id: int) -> Task:
    async with db.sessions() as session:
        return await session.get(Task, task_id)


async def test_a_crowd_of_claimers_has_one_winner_and_outsiders_are_refused(db, config):
    async with db.sessions() as session:
        approved = [await _person(session, f"c{i}", "zjy", "approved") for i in range(CLAIMERS - 20)]
        await _person(session, "x-other-community", "cjx", "approved")
        for i in range(9):
            await _person(session, f"x-pending{i}", "zjy", "pending")
        for i in range(5):
            await _person(session, f"x-declined{i}", "zjy", "declined")
        for i in range(5):
            await _person(session, f"x-resident{i}", "zjy", None)
        await session.commit()
    task_id = await _task(db, config)
    names = [f"c{i}" for i in range(CLAIMERS - 20)] + ["x-other-community"] + \
        [f"x-pending{i}" for i in range(9)] + [f"x-declined{i}" for i in range(5)] + [f"x-resident{i}" for i in range(5)]
    assert len(names) == CLAIMERS

    results = await asyncio.gather(*(_press(db, config, name, f"tk:claim:{task_id}") for name in names))

    outcome = dict(zip(names, results, strict=True))
    winners = [name for name, replies in outcome.items() if _won(replies)]
    assert len(winners) == 1 and winners[0].startswith("c")
    for name, replies in outcome.items():
        if name.startswith("x-"):
            assert "只有本社区审核通过的志愿者" in replies[0].text
        elif name != winners[0]:
            assert "已经有人认领" in replies[0].text and "代买药品" in replies[0].text
    stored = await _stored(db, task_id)
    assert stored.status == "claimed" and stored.claimer_id == approved[int(winners[0][1:])]
    assert stored.claimed_at is not None and stored.reminder_stage == 0


async def test_refusals_and_repeats_change_nothing(db, config):
    async with db.sessions() as session:
        await _person(session, "helper", "zjy", "approved")
        await _person(session, "helper2", "zjy", "approved")
        await _person(session, "cjx-helper", "cjx", "approved")
        await _person(session, "pending", "zjy", "pending")
        await session.commit()
    task_id = await _task(db, config)
    cjx_task = await _task(db, config, community="cjx")

    async def outbox_rows() -> int:
        async with db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(OutboxMessage)))

    before = await outbox_rows()
    for who, data, expected in [
        ("cjx-helper", f"tk:claim:{task_id}", "只有本社区"),       # another community's volunteer
        ("pending", f"tk:claim:{task_id}", "只有本社区"),          # not approved yet
        ("helper", f"tk:claim:{cjx_task}", "只有本社区"),          # a task of another community
        ("helper", "tk:claim:999999", "按钮已经失效"),              # no such task
        ("helper", "tk:claim:abc", "按钮已经失效"),                 # malformed
        ("helper", "tk:claim:-1", "按钮已经失效"),
        ("helper", "tk:claim:" + "9" * 30, "按钮已经失效"),          # past any id
    ]:
        replies = await _press(db, config, who, data)
        assert expected in replies[0].text, (who, data, replies[0].text)
    assert (await _stored(db, task_id)).status == "open" and (await _stored(db, cjx_task)).status == "open"
    assert await outbox_rows() == before

    assert _won(await _press(db, config, "helper", f"tk:claim:{task_id}"))
    after_win = await outbox_rows()
    first = await _stored(db, task_id)
    for who in ("helper", "helper2", "helper"):   # the winner pressing again, and a latecomer
        replies = await _press(db, config, who, f"tk:claim:{task_id}")
        assert "已经有人认领" in replies[0].text
    again = await _stored(db, task_id)
    assert (again.status, again.claimer_id, again.claimed_at) == (first.status, first.claimer_id, first.claimed_at)
    assert await outbox_rows() == after_win


async def test_claim_as_volunteer_reports_what_it_found(db, config):
    async with db.sessions() as session:
        helper = await _person(session, "helper", "zjy", "approved")
        volunteer = await session.get(Volunteer, helper)
        volunteer.phone, volunteer.share_phone = "13800001111", True
        outsider = await _person(session, "outsider", "cjx", "approved")
        await session.commit()
    task_id = await _task(db, config)
    async with db.sessions() as session:
        assert await task_repo.claim_as_volunteer(session, 424242, helper) == task_repo.ClaimAttempt(None)
        refused = await task_repo.claim_as_volunteer(session, task_id, outsider)
        assert (refused.title, refused.allowed, refused.task) == ("代买药品", False, None)
        won = await task_repo.claim_as_volunteer(session, task_id, helper)
        assert (won.title, won.volunteer_name, won.volunteer_phone) == ("代买药品", "vhelper", "13800001111")
        assert (won.task.id, won.task.status, won.task.claimer_id) == (task_id, "claimed", helper)
        await session.commit()
    async with db.sessions() as session:
        late = await task_repo.claim_as_volunteer(session, task_id, helper)
        assert (late.title, late.allowed, late.task) == ("代买药品", True, None)
