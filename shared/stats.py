"""Request statistics per category for a community and a period (chat /stats, later the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import median

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import as_utc
from shared.db.models import Request
from shared.domain.requests import RequestStatus

DONE = {RequestStatus.RESOLVED, RequestStatus.CLOSED}


@dataclass(frozen=True)
class CategoryStats:
    received: int
    resolved: int
    median_first_response_hours: float | None
    sla_met_pct: float | None
    satisfaction: float | None
    rated: int


def summarise(requests: list[Request]) -> CategoryStats:
    resolved = [r for r in requests if r.resolved_at is not None or (r.status in DONE and r.duplicate_of_id is None
                                                                      and r.team is not None)]
    responses = [(as_utc(r.first_response_at) - as_utc(r.created_at)).total_seconds() / 3600
                 for r in requests if r.first_response_at is not None]
    with_due = [r for r in resolved if r.due_at is not None and r.resolved_at is not None]
    met = [r for r in with_due if as_utc(r.resolved_at) <= as_utc(r.due_at)]
    ratings = [r.rating for r in requests if r.rating is not None]
    return CategoryStats(
        received=len(requests),
        resolved=len(resolved),
        median_first_response_hours=round(median(responses), 1) if responses else None,
        sla_met_pct=round(100 * len(met) / len(with_due)) if with_due else None,
        satisfaction=round(sum(ratings) / len(ratings), 1) if ratings else None,
        rated=len(ratings),
    )


async def category_stats(session: AsyncSession, community: str | None, since: datetime, until: datetime) -> dict[str, CategoryStats]:
    """Requests that opened a case (routed at some point) in [since, until), per category and in total ("*")."""
    stmt = select(Request).where(Request.created_at >= since, Request.created_at < until, Request.team.is_not(None))
    if community is not None:
        stmt = stmt.where(Request.community_code == community)
    requests = list(await session.scalars(stmt))
    by_label: dict[str, list[Request]] = {}
    for request in requests:
        by_label.setdefault(request.category or "other", []).append(request)
    result = {label: summarise(items) for label, items in sorted(by_label.items())}
    result["*"] = summarise(requests)
    return result
