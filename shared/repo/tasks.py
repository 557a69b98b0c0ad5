"""Data access for tasks: the exactly-once claim and conditional status changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.db.models import Task
from shared.domain.tasks import TaskStatus, sources_of


async def claim(session: AsyncSession, task_id: int, user_id: int) -> Task | None:
    """Exactly one claimer wins, decided by the database: UPDATE … WHERE status='open' RETURNING.

    Every other concurrent claimer gets None. Works the same on SQLite and PostgreSQL.
    """
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.OPEN)
        .values(status=TaskStatus.CLAIMED, claimer_id=user_id, claimed_at=utcnow(), reminder_stage=0)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def move(session: AsyncSession, task_id: int, target: str, *, claimer_id: int | None = None,
               only_from: set[str] | None = None, **values: Any) -> Task | None:
    """Change status along the task state machine; optionally only if `claimer_id` holds it."""
    sources = only_from if only_from is not None else {str(s) for s in sources_of(target)}
    stmt = update(Task).where(Task.id == task_id, Task.status.in_(sources))
    if claimer_id is not None:
        stmt = stmt.where(Task.claimer_id == claimer_id)
    stmt = (stmt.values(status=target, **values).returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()
