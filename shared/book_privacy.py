"""The book house's part of /mydata and /forgetme.

Export: the books a person listed, their holds, every ledger row, their wishes and seedling exchanges.
Forget: wishes erased, photos dropped, books they keep at home withdrawn (nobody can collect them any
more; whoever queued is told), their own holds given up (the next in each queue gets the book).
Ledger rows, handed-over books and exchanges stay, tied to the anonymised account, for the statistics.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import book_index, notify
from shared.books import OutboxIds, active, release_books
from shared.config import CommunitiesConfig
from shared.db.models import Book, BookHold, BookPoint, BookSeedling, BookSeedlingSwap, BookWish, User
from shared.domain.books import SEARCHABLE, BookStatus, HoldStatus
from shared.flows.reply import Reply
from shared.i18n import t
from shared.privacy import ERASED


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def export(session: AsyncSession, user: User) -> dict[str, Any]:
    listed = await session.scalars(select(Book).where(Book.owner_id == user.id).order_by(Book.id))
    holds = (await session.execute(select(BookHold, Book.title).join(Book, Book.id == BookHold.book_id)
                                   .where(BookHold.requester_id == user.id).order_by(BookHold.id))).all()
    points = await session.scalars(select(BookPoint).where(BookPoint.user_id == user.id).order_by(BookPoint.id))
    wishes = await session.scalars(select(BookWish).where(BookWish.user_id == user.id).order_by(BookWish.id))
    swaps = (await session.execute(select(BookSeedlingSwap, BookSeedling.name)
                                   .join(BookSeedling, BookSeedling.id == BookSeedlingSwap.seedling_id)
                                   .where(BookSeedlingSwap.user_id == user.id).order_by(BookSeedlingSwap.id))).all()
    return {
        "listed": [{"title": b.title, "author": b.author, "isbn": b.isbn, "condition": b.condition,
                    "kept": b.location, "photo": b.photo_file_id is not None, "status": b.status,
                    "listed_at": _iso(b.created_at), "given_at": _iso(b.given_at)} for b in listed],
        "holds": [{"title": title, "status": h.status, "requested_at": _iso(h.queued_at),
                   "kept_until": _iso(h.expires_at), "handover_on": _iso(h.handover_on),
                   "handed_at": _iso(h.handed_at)} for h, title in holds],
        "points": [{"delta": p.delta, "reason": p.reason, "at": _iso(p.created_at)} for p in points],
        "wishes": [{"query": w.query, "active": w.active} for w in wishes],
        "seedlings": [{"seedling": name, "quantity": s.quantity, "points": s.points, "swap_day": _iso(s.swap_day)}
                      for s, name in swaps],
    }


async def forget(session: AsyncSession, config: CommunitiesConfig, user: User, now: datetime) -> OutboxIds:
    await session.execute(update(BookWish).where(BookWish.user_id == user.id)
                          .values(query=ERASED, search_key="", active=False))
    await session.execute(update(Book).where(Book.owner_id == user.id).values(photo_file_id=None))
    outbox: OutboxIds = []
    # Their own holds and places in queues are given up; books they held go to the next in line.
    was_holding = list(await session.scalars(select(BookHold.book_id).where(
        BookHold.requester_id == user.id, BookHold.status == HoldStatus.HELD)))
    await session.execute(update(BookHold).where(BookHold.requester_id == user.id, active(BookHold.status))
                          .values(status=HoldStatus.CANCELLED))
    # Books they keep at home can no longer be collected: withdrawn, and whoever waits is told.
    at_home = list(await session.scalars(select(Book).where(
        Book.owner_id == user.id, Book.location == "owner", Book.status.in_([str(s) for s in SEARCHABLE]))))
    for book in at_home:
        waiting = list(await session.scalars(select(BookHold).where(BookHold.book_id == book.id,
                                                                    active(BookHold.status))))
        await session.execute(update(BookHold).where(BookHold.book_id == book.id, active(BookHold.status))
                              .values(status=HoldStatus.CANCELLED))
        book.status = BookStatus.WITHDRAWN
        await book_index.unindex(session, book.house_code, [(book.id, book.search_key)])
        for hold in waiting:
            person = await session.get(User, hold.requester_id)
            if person is None:
                continue
            note = Reply(t(person.locale or "zh", "books.gone_note", title=book.title))
            outbox.append(await notify.to_user(session, person, f"bk_gone:{book.id}", note))
    home_ids = {b.id for b in at_home}
    outbox += await release_books(session, config, [b for b in was_holding if b not in home_ids], now)
    return [i for i in outbox if i]
