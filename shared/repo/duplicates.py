"""Finding an open request that says the same as a new one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db.models import Request
from shared.domain.requests import RequestStatus
from shared.domain.similarity import bigrams, dice

WINDOW = timedelta(days=30)
CANDIDATES = 200


async def find_duplicate(session: AsyncSession, request: Request, *, threshold: float) -> Request | None:
    """The most similar open request of the same community and category from someone else, if any.

    Only the candidates' ids and texts are read; the one that matches is then loaded whole."""
    stmt = (
        select(Request.id, Request.text)
        .where(Request.community_code == request.community_code, Request.category == request.category,
               Request.id != request.id, Request.status.in_([RequestStatus.ROUTED, RequestStatus.IN_PROGRESS]),
               Request.created_at > utcnow() - WINDOW, Request.duplicate_of_id.is_(None))
        .order_by(Request.id.desc())
        .limit(CANDIDATES)
    )
    if request.user_id is not None:
        stmt = stmt.where(or_(Request.user_id.is_(None), Request.user_id != request.user_id))
    mine = bigrams(request.text)
    best, best_score = None, threshold
    for candidate_id, text in await session.execute(stmt):
        score = dice(bigrams(text), mine)
        if score >= best_score:
            best, best_score = candidate_id, score
    return None if best is None else await session.get(Request, best)
