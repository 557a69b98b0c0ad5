"""Mediation service on a real database: simultaneous answers and simultaneous sweeps change things once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared import mediation
from shared.clock import utcnow
from shared.db.models import MediationCase, MediationParty, OutboxMessage, Request
from shared.repo.requests import create_request
from shared.repo.users import get_or_create_user, give_consent, grant_role


async def _setup(db, config):  # type: ignore[no-untyped-def]
    """A cjx mediation request opened as a case, with two consenting parties."""
    now = utcnow()
    async with db.sessions() as session:
        staff = await get_or_create_user(session, "telegram", "9001", display_name="staff")
        give_consent(staff)
        staff.community_code = "cjx"
        grant_role(staff, "staff")
        reporter = await get_or_create_user(session, "telegram", "9002", display_name="陈大娘")
        neighbour = await get_or_create_user(session, "telegram", "9003", display_name="李建国")
        await session.commit()
        request, _ = await create_request(session, community_code="cjx", user_id=reporter.id, text="楼上漏水",
                                          idempotency_key="svc:1")
        request.category, request.status, request.team = "mediation", "routed", "mediation"
        await session.commit()
        opened = await mediation.open_case(session, config, request, staff, now)
        case = opened.case
        first = await mediation.party_of(session, case.id, reporter.id)
        assert (await mediation.consent(session, config, first, reporter, True, now)).result == "consented"
        second, code = await mediation.add_party(session, case, staff, "302室", offline=False, now=now)
        found = await mediation.find_invitation(session, code, now)
        assert found is not None and found.id == second.id
        assert await mediation.find_invitation(session, code, now + timedelta(days=8)) is None   # expired
        assert (await mediation.consent(session, config, second, neighbour, True, now)).result == "consented"
        assert await mediation.find_invitation(session, code, now) is None                      # used up
        agreement, _ = await mediation.propose_agreement(session, config, case, staff, "各退一步", now)
        await session.commit()
        return case.id, agreement.id, [first.id, second.id], [reporter.id, neighbour.id]


async def _answer(db, config, agreement_id: int, party_id: int, user_id: int, kind: str):  # type: ignore[no-untyped-def]
    from shared.db.models import MediationAgreement, User

    async with db.sessions() as session:
        agreement = await session.get(MediationAgreement, agreement_id)
        party = await session.get(MediationParty, party_id)
        user = await session.get(User, user_id)
        call = mediation.answer_agreement if kind == "accept" else mediation.answer_followup
        result = await call(session, config, agreement, party, True, user, utcnow())
        await session.commit()
        return result.result


async def test_simultaneous_acceptances_reach_the_agreement_once(db, config, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: simultaneous transactions are a PostgreSQL question")
    case_id, agreement_id, parties, users = await _setup(db, config)
    results = await asyncio.gather(*(_answer(db, config, agreement_id, p, u, "accept") for p, u in zip(parties, users)))
    assert sorted(results) == ["agreed", "recorded"]
    async with db.sessions() as session:
        case = await session.get(MediationCase, case_id)
        assert case.status == "agreed"
        due = case.followup_due
    # Two schedulers sweeping at once ask each party once.
    async def sweep():  # type: ignore[no-untyped-def]
        async with db.sessions() as session:
            ids = await mediation.mediation_sweep(session, config, due + timedelta(minutes=1))
            await session.commit()
            return ids
    first, second = await asyncio.gather(sweep(), sweep())
    assert len(first) + len(second) == 2
    results = await asyncio.gather(*(_answer(db, config, agreement_id, p, u, "followup") for p, u in zip(parties, users)))
    assert sorted(results) == ["held", "recorded"]
    async with db.sessions() as session:
        assert (await session.get(MediationCase, case_id)).status == "resolved"
        assert (await session.get(Request, (await session.get(MediationCase, case_id)).request_id)).solved is True


async def test_statistics_and_sequential_answers(db, config):
    case_id, agreement_id, parties, users = await _setup(db, config)
    assert await _answer(db, config, agreement_id, parties[0], users[0], "accept") == "recorded"
    assert await _answer(db, config, agreement_id, parties[0], users[0], "accept") == "already"
    assert await _answer(db, config, agreement_id, parties[1], users[1], "accept") == "agreed"
    now = utcnow()
    async with db.sessions() as session:
        stats = await mediation.community_stats(session, config, "cjx", now - timedelta(days=1), now + timedelta(days=1))
        nothing = await mediation.community_stats(session, config, "zjy", now - timedelta(days=1), now + timedelta(days=1))
        keys = list(await session.scalars(select(OutboxMessage.key)))
        parties_n = await session.scalar(select(func.count()).select_from(MediationParty))
    assert stats.opened == 1 and stats.open_now == 1
    level, first = stats.levels[0]
    assert level == "building_informant" and (first.handled, first.agreed, first.followed_up) == (1, 1, 0)
    assert nothing.opened == 0 and parties_n == 2 and len(keys) == len(set(keys))
