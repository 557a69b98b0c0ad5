"""The same repository tests against SQLite and PostgreSQL (see the `database_url` fixture)."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from shared.db.models import OutboxMessage, Request, RequestEvent
from shared.domain.requests import RequestStatus
from shared.repo import outbox
from shared.repo.requests import create_request, next_sequence, transition
from shared.repo.users import get_or_create_user


async def _resident(db):
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", "501", display_name="王阿姨")
        await session.commit()
        return user.id


async def test_users_are_unique_per_platform_and_id(db):
    async with db.sessions() as session:
        first = await get_or_create_user(session, "telegram", "42")
        again = await get_or_create_user(session, "telegram", "42")
        other = await get_or_create_user(session, "matrix", "42")
        await session.commit()
    assert first.id == again.id != other.id


async def test_request_numbers_count_per_community_and_year(db):
    user_id = await _resident(db)
    async with db.sessions() as session:
        a, _ = await create_request(session, community_code="zjy", user_id=user_id, text="灯坏了", idempotency_key="k1")
        b, _ = await create_request(session, community_code="zjy", user_id=user_id, text="水停了", idempotency_key="k2")
        c, _ = await create_request(session, community_code="cjx", user_id=user_id, text="吵架", idempotency_key="k3")
    year = a.created_at.year
    assert (a.number, b.number, c.number) == (f"ZJY-{year}-00001", f"ZJY-{year}-00002", f"CJX-{year}-00001")


async def test_the_same_message_stores_one_request(db):
    user_id = await _resident(db)
    async with db.sessions() as session:
        first, created = await create_request(session, community_code="zjy", user_id=user_id, text="x", idempotency_key="tg:1:1")
    async with db.sessions() as session:
        again, created_again = await create_request(session, community_code="zjy", user_id=user_id, text="x", idempotency_key="tg:1:1")
    assert created and not created_again and first.id == again.id
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 1
        assert await session.scalar(select(func.count()).select_from(RequestEvent)) == 1


async def test_concurrent_deliveries_of_one_message_store_one_request(db):
    user_id = await _resident(db)

    async def attempt():
        async with db.sessions() as session:
            request, created = await create_request(session, community_code="zjy", user_id=user_id, text="x", idempotency_key="tg:9:9")
            return request.id, created

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert len({rid for rid, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_concurrent_numbering_never_repeats(db):
    async def allocate():
        async with db.sessions() as session:
            value = await next_sequence(session, "yjy", 2026)
            await session.commit()
            return value

    values = await asyncio.gather(*(allocate() for _ in range(20)))
    assert sorted(values) == list(range(1, 21))


async def test_transition_is_conditional(db):
    user_id = await _resident(db)
    async with db.sessions() as session:
        request, _ = await create_request(session, community_code="zjy", user_id=user_id, text="x", idempotency_key="t")
    async with db.sessions() as session:
        moved = await transition(session, request.id, RequestStatus.ROUTED, only_from={RequestStatus.RECEIVED}, team="property")
        await session.commit()
        assert moved is not None and moved.status == "routed" and moved.team == "property"
    async with db.sessions() as session:
        assert await transition(session, request.id, RequestStatus.ROUTED, only_from={RequestStatus.RECEIVED}) is None
        # The lifecycle forbids it whatever the caller wants: routed → received / needs_category.
        assert await transition(session, request.id, RequestStatus.RECEIVED) is None
        assert await transition(session, request.id, RequestStatus.NEEDS_CATEGORY) is None
        assert (await session.get(Request, request.id)).status == "routed"


async def test_outbox_key_is_queued_once_and_claimed_once(db):
    async with db.sessions() as session:
        first = await outbox.queue_notification(session, key="ack:1", chat_id=5, text="hi")
        again = await outbox.queue_notification(session, key="ack:1", chat_id=5, text="hi")
        await session.commit()
    assert first is not None and again is None

    async def claim():
        async with db.sessions() as session:
            row = await outbox.claim(session, first)
            await session.commit()
            return row

    claims = await asyncio.gather(*(claim() for _ in range(6)))
    assert sum(row is not None for row in claims) == 1
    async with db.sessions() as session:
        await outbox.mark_sent(session, first, 77)
        await session.commit()
        row = await session.get(OutboxMessage, first)
        assert row.status == "sent" and row.sent_message_id == "77" and row.attempts == 1
        assert await outbox.claim(session, first) is None


async def test_a_row_handed_back_untried_is_not_counted_as_an_attempt(db):
    async with db.sessions() as session:
        row_id = await outbox.queue_notification(session, key="notice:1", chat_id=5, text="hi")
        await session.commit()

    async def take_and_give_back(tried: bool) -> int:
        async with db.sessions() as session:
            assert await outbox.claim(session, row_id) is not None
            await outbox.release(session, row_id, "later", tried=tried)
            await session.commit()
            row = await session.get(OutboxMessage, row_id)
            await session.refresh(row)
            assert row.status == "pending" and row.claimed_at is None
            return row.attempts

    assert await take_and_give_back(tried=False) == 0  # our limiter said later: not an attempt
    assert await take_and_give_back(tried=False) == 0
    assert await take_and_give_back(tried=True) == 1   # Telegram said later (429, 5xx): an attempt


async def test_the_scheduler_offers_again_only_rows_that_are_overdue(db):
    """`stale_ids`: a lost enqueue or a dead worker's claim, never a row postponed to a later time."""
    now = datetime.now(UTC)
    later = now + timedelta(minutes=10)  # the scheduler's view: every row is 10 minutes old by then
    async with db.sessions() as session:
        ids = {name: await outbox.queue_notification(session, key=f"stale:{name}", chat_id=5, text=name)
               for name in ("lost", "postponed", "postponed_long_ago", "dead_worker", "sending", "sent")}
        await session.commit()
    async with db.sessions() as session:
        for name in ("postponed", "postponed_long_ago", "dead_worker", "sending", "sent"):
            claimed_at = now if name == "sending" else now - timedelta(minutes=5)
            assert await outbox.claim(session, ids[name], now=claimed_at) is not None
        await outbox.release(session, ids["postponed"], "rate limited", tried=False,
                             not_before=later + timedelta(seconds=30))
        await outbox.release(session, ids["postponed_long_ago"], "rate limited", tried=False,
                             not_before=now)
        await outbox.mark_sent(session, ids["sent"], 1)
        await session.commit()
    async with db.sessions() as session:
        overdue = set(await outbox.stale_ids(session, older_than=timedelta(seconds=60), now=later))
        sending_overdue = set(await outbox.stale_ids(session, older_than=timedelta(seconds=60),
                                                     now=now + timedelta(minutes=1)))
    assert overdue == {ids["lost"], ids["postponed_long_ago"], ids["dead_worker"], ids["sending"]}
    # A minute on, only the claim taken 5 minutes earlier has outlived its lease.
    assert ids["dead_worker"] in sending_overdue and ids["sending"] not in sending_overdue
