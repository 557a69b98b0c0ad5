"""Data access for requests and their timeline."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db.models import Request, RequestCounter, RequestEvent, User
from shared.db.upsert import insert_for
from shared.domain.requests import RequestStatus, allowed_sources, format_number


async def next_sequence(session: AsyncSession, community_code: str, year: int) -> int:
    """Allocate the next request number atomically (one UPSERT … RETURNING)."""
    stmt = insert_for(session, RequestCounter).values(community_code=community_code, year=year, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_code", "year"], set_={"last": RequestCounter.last + 1}
    ).returning(RequestCounter.last)
    return (await session.execute(stmt)).scalar_one()


async def find_by_key(session: AsyncSession, idempotency_key: str) -> Request | None:
    result = await session.execute(select(Request).where(Request.idempotency_key == idempotency_key))
    return result.scalar_one_or_none()


async def get_request(session: AsyncSession, request_id: int) -> Request | None:
    return await session.get(Request, request_id)


async def get_request_and_resident(session: AsyncSession, request_id: int) -> Request | None:
    """The request, with its resident loaded into the session in the same round trip (so
    `session.get(User, request.user_id)` afterwards is answered without another query)."""
    row = (await session.execute(_request_and_resident(), {"request_id": request_id})).first()
    return None if row is None else row[0]


@cache
def _request_and_resident() -> Any:
    return (select(Request, User).outerjoin(User, User.id == Request.user_id)
            .where(Request.id == bindparam("request_id", type_=Request.__table__.c.id.type)))


async def create_request(
    session: AsyncSession,
    *,
    community_code: str,
    user_id: int | None,
    text: str,
    idempotency_key: str,
    source: str = "telegram",
    attachments: list[dict[str, Any]] | None = None,
    on_behalf_name: str | None = None,
) -> tuple[Request, bool]:
    """Store a new request, or return the one already stored under `idempotency_key`.

    Returns `(request, created)`. Commits, because the number must be durable
    before the resident is told it.
    """
    existing = await find_by_key(session, idempotency_key)
    if existing is not None:
        return existing, False
    now = utcnow()
    try:
        sequence = await next_sequence(session, community_code, now.year)
        request = Request(
            number=format_number(community_code, now.year, sequence),
            community_code=community_code,
            user_id=user_id,
            text=text,
            attachments=attachments or [],
            status=RequestStatus.RECEIVED,
            source=source,
            idempotency_key=idempotency_key,
            on_behalf_name=on_behalf_name,
            urgent=False,
            created_at=now,
            updated_at=now,
        )
        session.add(request)
        await session.flush()
        session.add(RequestEvent(request_id=request.id, kind="received", actor=f"user:{user_id}", data={"source": source, "on_behalf": bool(on_behalf_name)}))
        await session.commit()
        return request, True
    except IntegrityError:
        # Another delivery of the same message won the race.
        await session.rollback()
        existing = await find_by_key(session, idempotency_key)
        if existing is None:
            raise
        return existing, False


async def add_event(session: AsyncSession, request_id: int, kind: str, *, actor: str = "system", **data: Any) -> None:
    session.add(RequestEvent(request_id=request_id, kind=kind, actor=actor, data=data))


async def transition(
    session: AsyncSession, request_id: int, target: str, *, only_from: Iterable[str] | None = None, **values: Any
) -> Request | None:
    """Move a request to `target` if its current status allows it; the database decides.

    Returns the updated row, or None when another worker got there first or the
    lifecycle forbids the change (so repeated messages change nothing).
    """
    sources = frozenset(only_from) if only_from is not None else frozenset(str(s) for s in allowed_sources(target))
    bound = {name: value for name, value in values.items() if not isinstance(value, ClauseElement)}
    stmt = _transition_statement(sources, tuple(sorted(bound)))
    if len(bound) < len(values):  # SQL expressions (`closed_at=func.now()`) are part of the statement
        stmt = stmt.values(**{name: value for name, value in values.items() if name not in bound})
    params = {"request_id": request_id, "target": target, "updated_at": utcnow(),
              **{f"v_{name}": value for name, value in bound.items()}}
    return (await session.execute(stmt, params)).scalar_one_or_none()


@lru_cache(maxsize=256)
def _transition_statement(sources: frozenset[str], names: tuple[str, ...]) -> Any:
    # Built once per (allowed sources, columns set): intake and staff move requests all day.
    columns = Request.__table__.c
    return (
        update(Request)
        .where(Request.id == bindparam("request_id", type_=columns["id"].type), Request.status.in_(sorted(sources)))
        .values(status=bindparam("target", type_=columns["status"].type),
                updated_at=bindparam("updated_at", type_=columns["updated_at"].type),
                **{name: bindparam(f"v_{name}", type_=columns[name].type) for name in names})
        .returning(Request)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


async def stuck_received(session: AsyncSession, *, older_than_seconds: float, limit: int = 500) -> list[int]:
    """Requests stored by the bot whose intake never ran (the enqueue was lost)."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    stmt = (
        select(Request.id)
        .where(Request.status == RequestStatus.RECEIVED, Request.created_at < cutoff)
        .order_by(Request.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def recent_for_user(session: AsyncSession, user_id: int, limit: int = 5) -> list[Request]:
    stmt = select(Request).where(Request.user_id == user_id).order_by(Request.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def requests_in_last_hour(session: AsyncSession, user_id: int) -> int:
    from datetime import timedelta

    from sqlalchemy import func

    stmt = select(func.count()).select_from(Request).where(Request.user_id == user_id,
                                                           Request.created_at > utcnow() - timedelta(hours=1))
    return int(await session.scalar(stmt) or 0)
