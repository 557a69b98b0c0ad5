"""The deliberation service on SQLite and PostgreSQL: constraints, races, eligibility, idempotent sweeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared import deliberation as service
from shared.clock import utcnow
from shared.db.models import DelibBallot, DelibEvent, DelibSupport, DelibTopic, DelibVote, OutboxMessage, User
from shared.deliberation_sweeps import deliberation_sweep
from tests.people import person


async def voting_topic(db, config, *, compound: str | None = "井儿街", quorum: int = 2):  # type: ignore[no-untyped-def]
    """A topic of 中街子 with an open vote; returns (topic id, vote id, staff id, resident ids)."""
    async with db.sessions() as session:
        staff = await person(session, "900", "zjz", staff=True)
        residents = [await person(session, str(901 + i), "zjz") for i in range(3)]
        for r in residents:
            assert await service.declare_compound(session, config, r, "井儿街") == "ok"
        outcome = await service.propose(session, config, residents[0], title="加装电梯", description="老楼没有电梯",
                                        photos=[], compound=compound)
        topic_id = outcome.topic.id
        assert (await service.accept(session, config, topic_id, staff)).ok
        opened = await service.open_vote(session, config, topic_id, staff, options=["赞成", "反对"], secret=True,
                                         quorum=quorum, hours=24, now=utcnow(), compound=compound)
        assert opened.ok
        await session.commit()
        return topic_id, opened.extra["vote_id"], staff.id, [r.id for r in residents]


async def test_the_database_refuses_a_second_ballot_row(db, config):
    _topic, vote_id, _staff, residents = await voting_topic(db, config)
    async with db.sessions() as session:
        session.add(DelibBallot(vote_id=vote_id, user_id=residents[0], choice=0))
        await session.commit()
        session.add(DelibBallot(vote_id=vote_id, user_id=residents[0], choice=1))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_a_second_support_row_is_refused_too(db, config):
    topic_id, _vote, _staff, residents = await voting_topic(db, config)
    async with db.sessions() as session:
        session.add(DelibSupport(topic_id=topic_id, user_id=residents[1]))
        await session.commit()
        session.add(DelibSupport(topic_id=topic_id, user_id=residents[1]))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_ballots_race_with_the_closing_count(db, config, database_url):
    """Ballots pressed while the sweep closes the vote: each either counted or told "closed", never lost silently."""
    topic_id, vote_id, _staff, residents = await voting_topic(db, config, quorum=1)
    async with db.sessions() as session:
        closes = (await session.get(DelibVote, vote_id)).closes_at
    now = closes - timedelta(seconds=1)

    async def cast(uid: int) -> str:
        async with db.sessions() as session:
            outcome = await service.cast(session, vote_id, await session.get(User, uid), 0, now)
            await session.commit()
            return outcome.result

    async def close() -> None:
        async with db.sessions() as session:
            await service.close_vote(session, config, vote_id, now)
            await session.commit()

    if database_url.startswith("sqlite"):
        results = [await cast(residents[0]), None, await cast(residents[1])]
        await close()
        results[1] = await cast(residents[2])
    else:
        results = await asyncio.gather(cast(residents[0]), close(), cast(residents[1]), cast(residents[2]))
        results = [r for r in results if r is not None]
    async with db.sessions() as session:
        vote = await session.get(DelibVote, vote_id)
        ballots = await session.scalar(select(func.count()).select_from(DelibBallot).where(DelibBallot.vote_id == vote_id))
    assert vote.closed_at is not None
    assert vote.result["turnout"] == ballots == results.count("ok")     # counted == accepted
    assert set(results) <= {"ok", "closed"}


async def test_moving_community_voids_the_compound_and_other_communities_cannot_act(db, config):
    topic_id, vote_id, _staff, residents = await voting_topic(db, config)
    async with db.sessions() as session:
        mover = await session.get(User, residents[1])
        mover.community_code = "cjx"          # moved away: no vote in 中街子 any more
        outsider_staff = await person(session, "950", "cjx", staff=True)
        assert (await service.cast(session, vote_id, mover, 0, utcnow())).result == "other_community"
        mover.community_code = "zjz"          # back again: the compound declared for 中街子 applies again
        assert (await service.cast(session, vote_id, mover, 0, utcnow())).extra["ballot"] == "ok"
        assert (await service.accept(session, config, topic_id, outsider_staff)).result == "not_allowed"
        assert (await service.close_topic(session, config, topic_id, outsider_staff, "x")).result == "not_allowed"
        assert (await service.add_action(session, config, topic_id, outsider_staff, title="x", owner="y",
                                         due=utcnow().date())).result == "not_allowed"
        assert await service.declare_compound(session, config, outsider_staff, "井儿街") == "unknown"
        await session.commit()


async def test_the_sweep_twice_in_parallel_publishes_once(db, config, database_url):
    topic_id, vote_id, _staff, residents = await voting_topic(db, config, quorum=1)
    async with db.sessions() as session:
        for uid in residents:
            await service.cast(session, vote_id, await session.get(User, uid), 1, utcnow())
        await session.commit()
        closes = (await session.get(DelibVote, vote_id)).closes_at

    async def sweep() -> list[int]:
        async with db.sessions() as session:
            ids = await deliberation_sweep(session, config, closes + timedelta(minutes=1))
            await session.commit()
            return ids

    if database_url.startswith("sqlite"):
        runs = [await sweep(), await sweep()]
    else:
        runs = list(await asyncio.gather(sweep(), sweep()))
    assert sorted(len(r) for r in runs)[0] == 0
    async with db.sessions() as session:
        topic = await session.get(DelibTopic, topic_id)
        closed = await session.scalar(select(func.count()).select_from(DelibEvent)
                                      .where(DelibEvent.topic_id == topic_id, DelibEvent.kind == "vote_closed"))
        results = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                       .where(OutboxMessage.key.like(f"%dl:result:{vote_id}")))
    assert (topic.stage, closed) == ("decided", 1)
    assert results == 3 + 1          # three voters who took part + the staff group
