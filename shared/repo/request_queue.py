"""The staff request queue with filters (dashboard), always narrowed to what the viewer may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db.models import Request
from shared.domain.requests import OPEN_STATUSES, RequestStatus, parse_number

PAGE_SIZE = 50
OVERDUE_STATUSES = (RequestStatus.ROUTED, RequestStatus.IN_PROGRESS)


@dataclass(frozen=True)
class QueueFilter:
    """Validated filter values; None means "any". `communities` None means every community (admins)."""

    communities: frozenset[str] | None
    community: str | None = None
    category: str | None = None
    status: str | None = None          # a RequestStatus value, or "open"
    overdue: bool = False
    urgent: bool = False
    since: date | None = None          # local calendar dates, inclusive
    until: date | None = None
    number: str | None = None          # full number or a fragment of one
    page: int = 1


def _local_start(day: date, tz: str) -> datetime:
    """Midnight of a local day, as UTC (SQLite compares timestamps as UTC text)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def build_query(f: QueueFilter, tz: str, now: datetime | None = None) -> Select:
    now = now or utcnow()
    stmt = select(Request)
    if f.communities is not None:
        stmt = stmt.where(Request.community_code.in_(sorted(f.communities)))
    if f.community:
        stmt = stmt.where(Request.community_code == f.community)
    if f.category:
        stmt = stmt.where(Request.category == f.category)
    if f.status == "open":
        stmt = stmt.where(Request.status.in_(sorted(OPEN_STATUSES)))
    elif f.status:
        stmt = stmt.where(Request.status == f.status)
    if f.overdue:
        stmt = stmt.where(Request.status.in_(OVERDUE_STATUSES), Request.due_at.is_not(None), Request.due_at < now)
    if f.urgent:
        stmt = stmt.where(Request.urgent.is_(True))
    if f.since:
        stmt = stmt.where(Request.created_at >= _local_start(f.since, tz))
    if f.until:
        stmt = stmt.where(Request.created_at < _local_start(f.until + timedelta(days=1), tz))
    if f.number:
        wanted = f.number.strip().upper()
        if parse_number(wanted) is not None:
            stmt = stmt.where(Request.number == wanted)
        else:
            escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Request.number.like(f"%{escaped}%", escape="\\"))
    return stmt


async def find(session: AsyncSession, f: QueueFilter, tz: str, now: datetime | None = None) -> tuple[list[Request], int]:
    """One page of matching requests (urgent first, then oldest due) and the total count."""
    stmt = build_query(f, tz, now)
    total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    page = max(1, f.page)
    rows = await session.scalars(stmt.order_by(Request.urgent.desc(), Request.created_at.desc(), Request.id.desc())
                                 .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows), total
