"""Monthly reports (CSV) and the weekly figures behind the dashboard charts.

Used by the dashboard and by `linju export requests|hours --month 2026-11`. The request
export carries no message text, names or contact details: it is for counting, and goes
into spreadsheets that travel. The hours export names volunteers (that is its purpose).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import as_utc
from shared.db.models import Request, Task, Volunteer
from shared.domain.tasks import TaskStatus
from shared.stats import CategoryStats, summarise

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

REQUEST_COLUMNS = ("number", "community", "category", "status", "urgent", "source", "team", "created_at",
                   "first_response_at", "due_at", "resolved_at", "closed_at", "sla_met", "rating")
WORKED = (TaskStatus.DONE, TaskStatus.CONFIRMED)
HOURS_COLUMNS = ("community", "volunteer", "tasks", "hours_reported", "hours_confirmed")


def parse_month(text: str | None) -> tuple[int, int] | None:
    match = _MONTH.match((text or "").strip())
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return (year, month) if 2000 <= year <= 2100 and 1 <= month <= 12 else None


def month_bounds(year: int, month: int, tz: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of next month) in the communities' time zone, as UTC.

    UTC because SQLite keeps timestamps as UTC text without an offset: bounds must be UTC to compare.
    """
    zone = ZoneInfo(tz)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _iso(value: datetime | None, tz: str) -> str:
    return as_utc(value).astimezone(ZoneInfo(tz)).isoformat(timespec="minutes") if value else ""


def _sla_met(r: Request) -> str:
    if r.due_at is None or r.resolved_at is None:
        return ""
    return "yes" if as_utc(r.resolved_at) <= as_utc(r.due_at) else "no"


def _where_community(stmt, column, communities: frozenset[str] | None):  # type: ignore[no-untyped-def]
    return stmt if communities is None else stmt.where(column.in_(sorted(communities)))


async def write_requests_csv(session: AsyncSession, out: IO[str], *, year: int, month: int, tz: str,
                             communities: frozenset[str] | None) -> int:
    """Requests created in the month, one row each; returns the number of rows."""
    since, until = month_bounds(year, month, tz)
    stmt = _where_community(select(Request).where(Request.created_at >= since, Request.created_at < until),
                            Request.community_code, communities).order_by(Request.created_at, Request.id)
    writer = csv.writer(out)
    writer.writerow(REQUEST_COLUMNS)
    count = 0
    for r in await session.scalars(stmt):
        writer.writerow((r.number, r.community_code, r.category or "", r.status, "yes" if r.urgent else "no", r.source,
                         r.team or "", _iso(r.created_at, tz), _iso(r.first_response_at, tz), _iso(r.due_at, tz),
                         _iso(r.resolved_at, tz), _iso(r.closed_at, tz), _sla_met(r),
                         "" if r.rating is None else r.rating))
        count += 1
    return count


@dataclass(frozen=True)
class HoursRow:
    community: str
    volunteer: str
    tasks: int
    hours_reported: float
    hours_confirmed: float


async def volunteer_hours(session: AsyncSession, *, since: datetime, until: datetime,
                          communities: frozenset[str] | None) -> list[HoursRow]:
    """Service hours per volunteer for tasks done in [since, until): reported and confirmed by staff."""
    stmt = (select(Task.community_code, Volunteer.name, func.count(Task.id), func.coalesce(func.sum(Task.hours), 0.0),
                   func.coalesce(func.sum(Task.confirmed_hours), 0.0))
            .join(Volunteer, Volunteer.user_id == Task.claimer_id)
            .where(Task.status.in_(WORKED), Task.done_at >= since, Task.done_at < until)
            .group_by(Task.community_code, Volunteer.user_id, Volunteer.name)
            .order_by(Task.community_code, func.coalesce(func.sum(Task.confirmed_hours), 0.0).desc(), Volunteer.name))
    stmt = _where_community(stmt, Task.community_code, communities)
    return [HoursRow(c, n, int(k), round(float(h), 2), round(float(ch), 2)) for c, n, k, h, ch in await session.execute(stmt)]


async def write_hours_csv(session: AsyncSession, out: IO[str], *, year: int, month: int, tz: str,
                          communities: frozenset[str] | None) -> int:
    since, until = month_bounds(year, month, tz)
    writer = csv.writer(out)
    writer.writerow(HOURS_COLUMNS)
    rows = await volunteer_hours(session, since=since, until=until, communities=communities)
    for row in rows:
        writer.writerow((row.community, row.volunteer, row.tasks, row.hours_reported, row.hours_confirmed))
    return len(rows)


# --- weekly series for the charts ----------------------------------------------------------------

@dataclass(frozen=True)
class Week:
    start: date
    per_category: dict[str, int]
    totals: CategoryStats
    volunteer_hours: float


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def weekly(session: AsyncSession, *, today: date, weeks: int, tz: str,
                 communities: frozenset[str] | None) -> list[Week]:
    """The last `weeks` calendar weeks (Monday first), oldest first, ending with the current one."""
    zone = ZoneInfo(tz)
    first = week_start(today) - timedelta(weeks=weeks - 1)
    since = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    stmt = _where_community(select(Request).where(Request.created_at >= since, Request.team.is_not(None)),
                            Request.community_code, communities)
    buckets: dict[date, list[Request]] = {first + timedelta(weeks=i): [] for i in range(weeks)}
    for r in await session.scalars(stmt):
        start = week_start(as_utc(r.created_at).astimezone(zone).date())
        if start in buckets:
            buckets[start].append(r)
    hours: dict[date, float] = dict.fromkeys(buckets, 0.0)
    task_stmt = _where_community(select(Task.done_at, Task.confirmed_hours, Task.hours)
                                 .where(Task.status.in_(WORKED), Task.done_at >= since), Task.community_code, communities)
    for done_at, confirmed, reported in await session.execute(task_stmt):
        start = week_start(as_utc(done_at).astimezone(zone).date())
        if start in hours:
            hours[start] += float(confirmed if confirmed is not None else reported or 0.0)
    result = []
    for start, items in buckets.items():
        per_category: dict[str, int] = {}
        for r in items:
            per_category[r.category or "other"] = per_category.get(r.category or "other", 0) + 1
        result.append(Week(start, per_category, summarise(items), round(hours[start], 1)))
    return result
