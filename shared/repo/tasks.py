"""Data access for tasks: the exactly-once claim and conditional status changes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.clock import utcnow
from shared.db.models import BigId, Task, Volunteer
from shared.domain.tasks import TaskStatus, sources_of


async def claim(session: AsyncSession, task_id: int, user_id: int) -> Task | None:
    """Exactly one claimer wins, decided by the database: UPDATE … WHERE status='open' RETURNING.

    Every other concurrent claimer gets None. Works the same on SQLite and PostgreSQL.
    No permission check: callers acting for a person use `claim_as_volunteer`.
    """
    stmt = (
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.OPEN)
        .values(status=TaskStatus.CLAIMED, claimer_id=user_id, claimed_at=utcnow(), reminder_stage=0)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class ClaimAttempt:
    """What one press of Claim found. `title` is None when there is no such task."""

    title: str | None
    volunteer_name: str | None = None     # set only for an approved volunteer of the task's community
    volunteer_phone: str | None = None    # only when the volunteer agreed to share it
    task: Task | None = None              # set only for the one claimer who won

    @property
    def allowed(self) -> bool:
        return self.volunteer_name is not None


def _approved_in_community(user_id: Any, community: Any) -> Any:
    return and_(Volunteer.user_id == user_id, Volunteer.status == "approved", Volunteer.community_code == community)


def _claim_update() -> Any:
    """The conditional UPDATE: still open, and the claimer is an approved volunteer of the task's community."""
    user_id = bindparam("user_id", type_=BigId)
    return (
        update(Task)
        .where(Task.id == bindparam("task_id", type_=BigId), Task.status == TaskStatus.OPEN,
               exists().where(_approved_in_community(user_id, Task.community_code)))
        .values(status=TaskStatus.CLAIMED, claimer_id=user_id, claimed_at=bindparam("now", type_=Task.claimed_at.type),
                reminder_stage=0)
    )


@cache
def _postgres_statement() -> Any:
    # Built once: a crowd of claimers costs one round trip each and no per-press statement building.
    claimed = _claim_update().returning(*Task.__table__.c).cte("claimed")
    won = aliased(Task, claimed)
    target = select(Task.title, Task.community_code).where(Task.id == bindparam("task_id", type_=BigId)).cte("target")
    return (
        select(target.c.title, Volunteer.name, Volunteer.phone, Volunteer.share_phone, won)
        .select_from(target)
        .outerjoin(Volunteer, _approved_in_community(bindparam("user_id", type_=BigId), target.c.community_code))
        .outerjoin(claimed, true())
        .execution_options(populate_existing=True)
    )


@cache
def _portable_statements() -> tuple[Any, Any]:
    claim_stmt = (_claim_update().returning(Task)
                  .execution_options(synchronize_session=False, populate_existing=True))
    explain = (select(Task.title, Volunteer.name, Volunteer.phone, Volunteer.share_phone)
               .outerjoin(Volunteer, _approved_in_community(bindparam("user_id", type_=BigId), Task.community_code))
               .where(Task.id == bindparam("task_id", type_=BigId)))
    return claim_stmt, explain


async def claim_as_volunteer(session: AsyncSession, task_id: int, user_id: int) -> ClaimAttempt:
    """A volunteer's claim, checked and decided by the database in one statement where it can be.

    PostgreSQL: one statement — a CTE runs the conditional UPDATE … RETURNING and, beside it, reads
    the task's title and the claimer's approval in the task's community (to say why a press lost).
    Concurrent claimers queue on the row lock; once the winner commits, the others' UPDATE re-checks
    `status = 'open'` and matches nothing, so exactly one wins.
    SQLite (no data-modifying CTEs): the same conditional UPDATE … RETURNING, then one SELECT for the
    title and the volunteer. The writer lock serialises claimers, so the outcome is the same.
    """
    params = {"task_id": task_id, "user_id": user_id, "now": utcnow()}
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        row = (await session.execute(_postgres_statement(), params)).one_or_none()
        if row is None:
            return ClaimAttempt(None)
        title, name, phone, share, task = row
        return ClaimAttempt(title, name, phone if share else None, task)
    claim_stmt, explain = _portable_statements()
    task = (await session.execute(claim_stmt, params)).scalar_one_or_none()
    row = (await session.execute(explain, params)).one_or_none()
    if row is None:
        return ClaimAttempt(None)
    title, name, phone, share = row
    return ClaimAttempt(title, name, phone if share else None, task)


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
