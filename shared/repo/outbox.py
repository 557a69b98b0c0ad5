"""The outbox: every outgoing notification is a row with a unique key.

Producers insert rows in the same transaction as the change that caused them,
then enqueue delivery after commit; the scheduler re-enqueues rows whose
enqueue was lost. The delivery worker claims a row with a conditional UPDATE,
so two workers never send the same row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import OutboxMessage
from shared.db.upsert import dialect_of, insert_of

# A row claimed longer ago than this by a worker that never finished is offered again.
SENDING_LEASE = timedelta(minutes=2)


async def queue_notification(
    session: AsyncSession,
    *,
    key: str,
    chat_id: str | int,
    text: str,
    options: list[list[dict[str, str]]] | None = None,
    request_id: int | None = None,
    platform: str = "telegram",
    batch: str | None = None,
    edit_message_id: str | None = None,
) -> int | None:
    """Insert a notification; returns its id, or None when `key` was already queued."""
    params = {"key": key, "platform": platform, "chat_id": str(chat_id), "text": text, "options": options or [],
              "request_id": request_id, "batch": batch, "edit_message_id": edit_message_id}
    return (await session.execute(_insert_statement(dialect_of(session)), params)).scalar_one_or_none()


@cache
def _insert_statement(dialect: str) -> Any:
    # Built once per dialect: every notification of every flow goes through here.
    columns = OutboxMessage.__table__.c
    values = {name: bindparam(name, type_=columns[name].type)
              for name in ("key", "platform", "chat_id", "text", "options", "request_id", "batch", "edit_message_id")}
    # On the table, not the mapped class: a Core INSERT skips the ORM's bulk-insert machinery.
    table = OutboxMessage.__table__
    return (insert_of(dialect, table).values(**values, status="pending", attempts=0)
            .on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id))


async def claim(session: AsyncSession, outbox_id: int, *, now: datetime | None = None) -> OutboxMessage | None:
    """Take a row for sending, exactly once: the database decides, not Python."""
    now = now or datetime.now(UTC)
    stmt = (
        update(OutboxMessage)
        .where(
            OutboxMessage.id == outbox_id,
            or_(
                OutboxMessage.status == "pending",
                (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < now - SENDING_LEASE),
            ),
        )
        .values(status="sending", claimed_at=now, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_sent(session: AsyncSession, outbox_id: int, message_id: Any) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(status="sent", sent_at=datetime.now(UTC), sent_message_id=str(message_id), last_error=None)
    )


async def release(session: AsyncSession, outbox_id: int, error: str, *, tried: bool = True,
                  not_before: datetime | None = None) -> None:
    """Give a claimed row back (temporary failure); it will be sent again.

    `attempts` counts the times a worker took the row and acted on it. A row handed back untried
    (our own rate limiter said later, or a copy holding its reserved slot is on its way) does not
    count: its claim is undone. `not_before`: the row was postponed until then, and a delayed
    message will bring it back; the scheduler does not offer it again meanwhile."""
    values: dict[str, Any] = {"status": "pending", "claimed_at": None, "last_error": error[:300],
                              "attempts": OutboxMessage.attempts - (0 if tried else 1)}
    if not_before is not None:
        values["not_before"] = not_before
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == outbox_id, OutboxMessage.status == "sending").values(values)
    )


async def mark_failed(session: AsyncSession, outbox_id: int, error: str) -> None:
    """Permanent failure (user blocked the bot, chat gone): never retried."""
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(status="failed", last_error=error[:300])
    )


async def stale_ids(session: AsyncSession, *, older_than: timedelta, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Rows that should have been sent by now: pending too long (or too long past the time they were
    postponed to), or claimed by a dead worker."""
    now = now or datetime.now(UTC)
    stmt = (
        select(OutboxMessage.id)
        .where(
            or_(
                (OutboxMessage.status == "pending") & (OutboxMessage.created_at < now - older_than)
                & or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before < now - older_than),
                (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < now - SENDING_LEASE),
            )
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
