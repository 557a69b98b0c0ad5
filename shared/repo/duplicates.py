"""Finding an open request that says the same as a new one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db.models import Request
from shared.domain.requests import RequestStatus
from shared.domain.similarity import similarity

WINDOW = timedelta(days=30)
CANDIDATES = 200


async def find_duplicate(session: AsyncSession, request: Request, *, threshold: float) -> Request | None:
    """The most similar open request of the same community and category from someone else, if any."""
    stmt = (
        select(Request)
        .where(Request.community_code == request.community_code, Request.category == request.category,
               Request.id != request.id, Request.status.in_([RequestStatus.ROUTED, RequestStatus.IN_PROGRESS]),
               Request.created_at > utcnow() - WINDOW, Request.duplicate_of_id.is_(None))
        .order_by(Request.id.desc())
        .limit(CANDIDATES)
    )
    best, best_score = None, threshold
    for candidate in await session.scalars(stmt):
        if candidate.user_id is not None and candidate.user_id == request.user_id:
            continue
        score = similarity(candidate.text, request.text)
        if score >= best_score:
            best, best_score = candidate, score
    return best
