"""The claim lane (shared/claim_lane.py) on PostgreSQL, with the real full flow behind it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared import volunteering
from shared.claim_lane import ClaimLane, asyncpg_dsn, claimed_task_id
from shared.clock import utcnow
from shared.db.models import OutboxMessage, Task, Volunteer
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_action
from shared.i18n import t
from shared.repo.users import get_or_create_user, give_consent, grant_role
from shared.runtime import Database
from shared.settings import Settings
from sqlalchemy import func, select
from tests.conftest import truncate


@pytest.fixture
async def pg(postgres_url, config):  # type: ignore[no-untyped-def]
    from shared.repo.communities import sync_communities

    database = Database.connect(Settings(database_url=postgres_url, _env_file=None), pool_size=20)
    await truncate(database)
    async with database.sessions() as session:
        await sync_communities(session, config)
        await session.commit()
    lane = ClaimLane(asyncpg_dsn(postgres_url))
    yield database, lane
    await lane.close()
    await database.close()


async def person(database: Database, telegram_id: int, community: str | None, *, volunteer: str | None = "approved",
                 onboarded: bool = True) -> int:
    async with database.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(telegram_id), locale="en" if telegram_id % 2 else "zh")
        if onboarded:
            give_consent(user)
            user.community_code = community
        if volunteer:
            grant_role(user, "volunteer")
            await session.flush()
            session.add(Volunteer(user_id=user.id, name=f"v{telegram_id}", community_code=community,
                                  skills=["errands"], days=[], parts=[], status=volunteer))
        await session.commit()
        return user.id


async def open_task(database: Database, config, community: str = "zjy") -> int:  # type: ignore[no-untyped-def]
    async with database.sessions() as session:
        task, _ = await volunteering.create_task(session, config, community=community, skill="errands", title="买菜",
                                                 details="x", place=None, window_start=utcnow(),
                                                 window_end=utcnow() + timedelta(hours=2))
        await session.commit()
        return task.id


class FullFlow:
    """What the bot runs behind the lane: the person, the flow, the commit (counted)."""

    def __init__(self, database: Database, config):  # type: ignore[no-untyped-def]
        self.database, self.config, self.runs = database, config, 0

    def __call__(self, telegram_id: int, data: str):  # type: ignore[no-untyped-def]
        async def run() -> list:
            self.runs += 1
            async with self.database.sessions() as session:
                user = await get_or_create_user(session, "telegram", str(telegram_id))

                async def enqueue(_contract, _payload) -> None:  # type: ignore[no-untyped-def]
                    return None

                return await handle_action(FlowContext(session=session, config=self.config, user=user,
                                                       enqueue=enqueue), data)
        return run


async def stored(database: Database, task_id: int) -> Task:
    async with database.sessions() as session:
        return await session.get(Task, task_id)


def test_only_well_formed_claim_data_takes_the_lane():
    assert claimed_task_id("tk:claim:42") == 42
    for data in (None, "", "tk:claim:", "tk:claim:4x", "tk:claim:-1", "tk:claim:42:1", "tk:done:42", " tk:claim:42",
                 "tk:claim:" + "9" * 18, "tk:claim:４２"):
        assert claimed_task_id(data) is None, data


def test_no_lane_without_postgresql():
    assert asyncpg_dsn("sqlite+aiosqlite:///var/x.db") is None
    assert asyncpg_dsn("postgresql+asyncpg://u:p@h:5433/d") == "postgresql://u:p@h:5433/d"


async def test_a_crowd_gets_one_winner_and_only_presses_that_can_win_run_the_flow(pg, config):
    database, lane = pg
    crowd = [600000 + i for i in range(200)]
    for telegram_id in crowd:
        await person(database, telegram_id, "zjy")
    task_id = await open_task(database, config)
    full = FullFlow(database, config)
    replies = await asyncio.gather(*(lane.press("telegram", str(v), task_id, full(v, f"tk:claim:{task_id}"))
                                     for v in crowd))
    won = [v for v, r in zip(crowd, replies, strict=True) if r[0].buttons]
    assert len(won) == 1
    for v, r in zip(crowd, replies, strict=True):
        if v != won[0]:
            locale = "en" if v % 2 else "zh"
            assert r == [r[0]] and r[0].text == t(locale, "tasks.already_taken", title="买菜")  # in their language
    assert full.runs < 20  # the rest were answered by the lane's read
    task = await stored(database, task_id)
    async with database.sessions() as session:
        winner = await get_or_create_user(session, "telegram", str(won[0]))
    assert (task.status, task.claimer_id) == ("claimed", winner.id)


async def test_refusals_are_answered_by_the_lane_and_change_nothing(pg, config):
    database, lane = pg
    await person(database, 610001, "cjx")                       # approved, but in another community
    await person(database, 610002, "zjy", volunteer="pending")  # not approved yet
    await person(database, 610004, "zjy", volunteer=None)       # a resident
    task_id = await open_task(database, config)
    full = FullFlow(database, config)
    for telegram_id in (610001, 610002, 610004):
        locale = "en" if telegram_id % 2 else "zh"
        replies = await lane.press("telegram", str(telegram_id), task_id, full(telegram_id, f"tk:claim:{task_id}"))
        assert [r.text for r in replies] == [t(locale, "tasks.not_volunteer")]
    gone = await lane.press("telegram", "610001", task_id + 1000, full(610001, f"tk:claim:{task_id + 1000}"))
    assert [r.text for r in gone] == [t("en", "errors.stale_button")]
    assert full.runs == 0
    task = await stored(database, task_id)
    assert (task.status, task.claimer_id) == ("open", None)
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.key.like("edit:%"))) == 0


async def test_presses_the_lane_cannot_judge_go_to_the_full_flow(pg, config):
    database, lane = pg
    await person(database, 620002, "zjy", volunteer=None, onboarded=False)  # has not finished onboarding
    task_id = await open_task(database, config)
    full = FullFlow(database, config)
    # Unknown to us: the full flow creates them and asks for consent; it does not claim.
    first = await lane.press("telegram", "620000", task_id, full(620000, f"tk:claim:{task_id}"))
    assert full.runs == 1 and first[0].buttons[0][0].action == "consent:yes"
    second = await lane.press("telegram", "620002", task_id, full(620002, f"tk:claim:{task_id}"))
    assert full.runs == 2 and second[0].buttons[0][0].action == "consent:yes"
    assert (await stored(database, task_id)).status == "open"
    # The database cannot be read by the lane: the full flow answers (and decides).
    await person(database, 620004, "zjy")
    broken = ClaimLane("postgresql://postgres@127.0.0.1:1/nowhere")
    won = await broken.press("telegram", "620004", task_id, full(620004, f"tk:claim:{task_id}"))
    await broken.close()
    assert full.runs == 3 and won[0].buttons
    assert (await stored(database, task_id)).status == "claimed"


async def test_a_press_repeated_after_winning_is_told_taken_and_changes_nothing(pg, config):
    database, lane = pg
    user_id = await person(database, 630000, "zjy")
    task_id = await open_task(database, config)
    full = FullFlow(database, config)
    first = await lane.press("telegram", "630000", task_id, full(630000, f"tk:claim:{task_id}"))
    again = await lane.press("telegram", "630000", task_id, full(630000, f"tk:claim:{task_id}"))
    assert first[0].buttons and again[0].text == t("zh", "tasks.already_taken", title="买菜")
    assert full.runs == 1
    task = await stored(database, task_id)
    assert (task.status, task.claimer_id) == ("claimed", user_id)


async def test_a_released_task_can_be_claimed_again_through_the_lane(pg, config):
    database, lane = pg
    first_id = await person(database, 640000, "zjy")
    second_id = await person(database, 640002, "zjy")
    task_id = await open_task(database, config)
    full = FullFlow(database, config)
    await lane.press("telegram", "640000", task_id, full(640000, f"tk:claim:{task_id}"))
    async with database.sessions() as session:
        task = await session.get(Task, task_id)
        user = await get_or_create_user(session, "telegram", "640000")
        assert await volunteering.release(session, config, task, user) is not None
        await session.commit()
    assert (await stored(database, task_id)).claimer_id is None
    replies = await lane.press("telegram", "640002", task_id, full(640002, f"tk:claim:{task_id}"))
    assert replies[0].buttons
    assert (await stored(database, task_id)).claimer_id == second_id != first_id
