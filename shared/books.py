"""The book exchange (凤翮筑梦书屋, 以书换绿): listings, search, holds, handovers, points, wish lists.

Each rule once, here; flows and the scheduler call these. Operations return outbox ids to deliver
after the caller commits (see shared.flows.deliver). State changes are conditional UPDATEs and
ledger rows have a unique (user, reason, ref), so a repeated press, message or sweep changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, and_, any_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import as_utc
from shared.config import BookHouse, CommunitiesConfig
from shared import book_index
from shared.book_index import SearchResult, search  # noqa: F401 - the search flows call books.search
from shared.db.models import Book, BookHold, BookPoint, BookWish, OutboxMessage, User, Volunteer
from shared.db.upsert import insert_for
from shared.domain import books as rules
from shared.domain.books import ACTIVE_HOLDS, SEARCHABLE, BookStatus, HoldStatus
from shared.domain.permissions import is_staff_of
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

OutboxIds = list[int]
CHUNK = 1000
ID_CHUNK = 5000      # ids per IN (...) list in the sweeps
LIST_TITLES = 8      # a batched note names at most this many books


def is_(column: Any, status: str) -> Any:
    """`column = 'status'` with the value written into the SQL, so the planner can use the partial
    hold indexes (a bound parameter hides which index predicate the query implies)."""
    return column == literal(str(status), literal_execute=True)


def active(column: Any) -> Any:
    """`column IN ('queued', 'held')`, literal like `is_`."""
    return column.in_(bindparam("active_holds", [str(s) for s in ACTIVE_HOLDS], expanding=True,
                                literal_execute=True, unique=True))


def _ids(*ids: int | None) -> OutboxIds:
    return [i for i in ids if i]


# --- where the books are ------------------------------------------------------------------

@dataclass(frozen=True)
class House:
    community: str
    config: BookHouse

    @property
    def code(self) -> str:
        return self.config.code


def house_for(config: CommunitiesConfig, community_code: str | None) -> House | None:
    """The community's own book house, else the first one configured (residents of every community may use it)."""
    fallback = None
    for community in config.communities:
        if community.book_house is None:
            continue
        if community.code == community_code:
            return House(community.code, community.book_house)
        fallback = fallback or House(community.code, community.book_house)
    return fallback


def house_by_code(config: CommunitiesConfig, code: str) -> House | None:
    return next((House(c.code, c.book_house) for c in config.communities
                 if c.book_house is not None and c.book_house.code == code), None)


def local_date(config: CommunitiesConfig, when: datetime) -> date:
    return as_utc(when).astimezone(ZoneInfo(config.defaults.timezone)).date()


def day_label(locale: str, day: date) -> str:
    return t(locale, "books.day", month=day.month, day=day.day, weekday=t(locale, f"books.wd_{day.weekday()}"))


def hours_text(house: House) -> str:
    return "; ".join(f"{days} {hours}" for days, hours in house.config.open_hours.items())


# --- listing --------------------------------------------------------------------------------

async def known_isbn(session: AsyncSession, isbn13: str) -> tuple[str, str | None] | None:
    """Title and author from an earlier listing of the same ISBN (no network look-up)."""
    row = (await session.execute(select(Book.title, Book.author).where(Book.isbn == isbn13)
                                 .order_by(Book.id.desc()).limit(1))).first()
    return (row[0], row[1]) if row else None


async def add_book(session: AsyncSession, house: House, owner: User | None, *, title: str, author: str | None,
                   isbn: str | None, condition: str, location: str, photo: str | None) -> Book:
    key = rules.normalize(f"{title} {author or ''}")
    book = Book(house_code=house.code, community_code=house.community, owner_id=owner.id if owner else None,
                title=title[:200], author=(author or None) and author[:120], isbn=isbn, condition=condition,
                location=location, photo_file_id=photo, status=BookStatus.AVAILABLE, search_key=key, wish_stage=0)
    session.add(book)
    await session.flush()
    await book_index.index(session, house.code, [(book.id, key)])
    return book


# --- points ----------------------------------------------------------------------------------

async def balance(session: AsyncSession, user_id: int) -> int:
    return int(await session.scalar(select(func.coalesce(func.sum(BookPoint.delta), 0))
                                     .where(BookPoint.user_id == user_id)) or 0)


async def pending_takes(session: AsyncSession, user_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(BookHold).where(
        BookHold.requester_id == user_id, active(BookHold.status))) or 0)


async def _lock_users(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """Serialise point changes per person (PostgreSQL row locks; SQLite has one writer anyway)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(User.id).where(User.id.in_(sorted(set(user_ids)))).order_by(User.id)
                              .with_for_update())


async def book_points(session: AsyncSession, user_id: int, delta: int, reason: str, ref: str,
                      floor: int | None = None) -> bool | None:
    """Add a ledger row once. True: added; None: already there; False: would go below `floor`."""
    exists = await session.scalar(select(BookPoint.id).where(BookPoint.user_id == user_id, BookPoint.reason == reason,
                                                             BookPoint.ref == ref))
    if exists is not None:
        return None
    if floor is not None and await balance(session, user_id) + delta < floor:
        return False
    inserted = await session.execute(insert_for(session, BookPoint)
                                     .values(user_id=user_id, delta=delta, reason=reason, ref=ref)
                                     .on_conflict_do_nothing(index_elements=["user_id", "reason", "ref"])
                                     .returning(BookPoint.id))
    return True if inserted.scalar_one_or_none() is not None else None


# --- requests and holds ----------------------------------------------------------------------

@dataclass
class RequestOutcome:
    result: str                 # held | queued | already | own | gone | no_points
    hold: BookHold | None = None
    position: int = 0
    outbox_ids: OutboxIds | None = None


async def queue_position(session: AsyncSession, hold: BookHold) -> int:
    ahead = await session.scalar(select(func.count()).select_from(BookHold).where(
        BookHold.book_id == hold.book_id, is_(BookHold.status, HoldStatus.QUEUED),
        (BookHold.queued_at < hold.queued_at) | ((BookHold.queued_at == hold.queued_at) & (BookHold.id < hold.id))))
    return int(ahead or 0) + 1


async def request_book(session: AsyncSession, config: CommunitiesConfig, book_id: int, user: User,
                       now: datetime) -> RequestOutcome:
    book = await session.get(Book, book_id)
    house = house_by_code(config, book.house_code) if book else None
    if book is None or house is None or book.status not in SEARCHABLE:
        return RequestOutcome("gone")
    if book.owner_id == user.id:
        return RequestOutcome("own")
    existing = await session.scalar(select(BookHold).where(BookHold.book_id == book.id, BookHold.requester_id == user.id))
    if existing is not None and existing.status in ACTIVE_HOLDS:
        return RequestOutcome("already", existing, await queue_position(session, existing)
                              if existing.status == HoldStatus.QUEUED else 0)
    await _lock_users(session, [user.id])
    if not rules.can_take(await balance(session, user.id), await pending_takes(session, user.id),
                          house.config.points_floor):
        return RequestOutcome("no_points")
    if existing is None:
        hold_id = (await session.execute(insert_for(session, BookHold).values(
            book_id=book.id, requester_id=user.id, status=HoldStatus.QUEUED, queued_at=now, round=1)
            .on_conflict_do_nothing(index_elements=["book_id", "requester_id"]).returning(BookHold.id))).scalar_one_or_none()
        if hold_id is None:   # the same press, processed twice at once
            return RequestOutcome("already")
    else:
        again = await session.execute(update(BookHold).where(
            BookHold.id == existing.id, BookHold.status.in_([HoldStatus.EXPIRED, HoldStatus.CANCELLED]))
            .values(status=HoldStatus.QUEUED, queued_at=now, round=BookHold.round + 1, expires_at=None,
                    handover_on=None))
        if again.rowcount != 1:
            return RequestOutcome("gone")
        hold_id = existing.id
    taken = await session.execute(update(Book).where(Book.id == book.id, Book.status == BookStatus.AVAILABLE)
                                  .values(status=BookStatus.HELD))
    hold = await session.get(BookHold, hold_id, populate_existing=True)
    if taken.rowcount == 1:
        await session.execute(update(BookHold).where(BookHold.id == hold.id, BookHold.status == HoldStatus.QUEUED)
                              .values(status=HoldStatus.HELD, expires_at=rules.hold_expiry(now, house.config.hold_days),
                                      handover_on=None))
        await session.refresh(hold)
        return RequestOutcome("held", hold, 0, [])
    return RequestOutcome("queued", hold, await queue_position(session, hold), [])


def hold_card(config: CommunitiesConfig, locale: str, hold: BookHold, book: Book, now: datetime, *,
              lead: str = "books.held_for_you") -> Reply:
    """`{title}` is kept for you until …: pick a day to collect it (open days, or the next swap day).

    `hold` needs id and expires_at; `book` title, house_code and location (rows or ORM objects)."""
    house = house_by_code(config, book.house_code)
    until = local_date(config, hold.expires_at)
    days = _offered_days(config, house, local_date(config, now), until) if house else []
    swap = next_swap_day(house, local_date(config, now)) if house else None
    where = t(locale, "books.where_house", house=house.config.name.get(locale) or house.config.name["zh"],
              place=house.config.place.get(locale) or house.config.place["zh"]) \
        if book.location == "house" and house else t(locale, "books.where_owner")
    text = t(locale, lead, title=book.title, until=day_label(locale, until), where=where)
    buttons = [Button(day_label(locale, d) + (" 🌱" if d == swap else ""), actions.make("bkt", hold.id, d.strftime("%Y%m%d")))
               for d in days]
    buttons.append(Button(t(locale, "books.cancel_hold"), actions.make("bkx", hold.id)))
    return Reply(text, rows(*buttons, per_row=3))


def _offered_days(config: CommunitiesConfig, house: House, today: date, until: date) -> list[date]:
    """Open days up to the end of the hold, plus the next swap day when it is within two weeks."""
    days = rules.handover_days(house.config.open_hours, today, until)
    swap = next_swap_day(house, today)
    if swap is not None and swap not in days and swap <= today + timedelta(days=14):
        days.append(swap)
    return days


def next_swap_day(house: House, today: date) -> date | None:
    return next((d for d in sorted(house.config.swap_days) if d >= today), None)


async def _users(session: AsyncSession, ids: Iterable[int]) -> dict[int, Any]:
    """id → (id, platform, external_id, locale): what a batch of notes needs, without loading whole users."""
    found: dict[int, Any] = {}
    for in_chunk in _id_lists(session, User.id, sorted(set(ids))):
        for user in (await session.execute(select(User.id, User.platform, User.external_id, User.locale)
                                           .where(in_chunk))).all():
            found[user.id] = user
    return found


def _row(user: User, key: str, reply: Reply) -> dict:
    return {"key": f"u{user.id}:{key}", "platform": user.platform, "chat_id": str(user.external_id),
            "text": reply.text, "options": reply.options_json(), "status": "pending", "attempts": 0}


async def queue_many(session: AsyncSession, rows_: list[dict]) -> OutboxIds:
    """Many outbox rows in few statements; a key already queued is skipped (as queue_notification does)."""
    if not rows_:
        return []
    # executemany with one cached statement (SQLAlchemy batches it as "insertmanyvalues");
    # a literal multi-row VALUES would be compiled afresh for every chunk.
    table = OutboxMessage.__table__
    stmt = insert_for(session, table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)
    result = await session.execute(stmt, rows_)
    return [row[0] for row in result.all()]


def _chunks(ids: list[int], size: int = ID_CHUNK) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _id_lists(session: AsyncSession, column: Any, ids: list[int]) -> list[Any]:
    """`column IN ids` as few conditions as the database allows: one array parameter on PostgreSQL
    (`= ANY($1)`, nothing to expand), IN lists of 5,000 on SQLite."""
    if session.bind.dialect.name == "postgresql":
        return [column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))] if ids else []
    return [column.in_(chunk) for chunk in _chunks(ids)]


async def _book_rows(session: AsyncSession, ids: Iterable[int]) -> dict[int, Any]:
    """id → (id, title, house_code, location) for the books a batch of notes names."""
    found: dict[int, Any] = {}
    for in_chunk in _id_lists(session, Book.id, sorted(set(ids))):
        for row in (await session.execute(select(Book.id, Book.title, Book.house_code, Book.location)
                                          .where(in_chunk))).all():
            found[row.id] = row
    return found


async def _promote(session: AsyncSession, config: CommunitiesConfig, book_ids: list[int] | None,
                   now: datetime) -> list[Any]:
    """The first in each queue holds the book now, if nobody does: one UPDATE per hold period (and id chunk).

    book_ids None: every queue (the sweep; cost follows the number of queued holds, not of lapsed ones)."""
    ahead, holder = aliased(BookHold), aliased(BookHold)
    by_days: dict[int, list[str]] = {}
    for community in config.communities:
        if community.book_house is not None:
            by_days.setdefault(community.book_house.hold_days, []).append(community.book_house.code)
    promoted: list[Any] = []
    for in_chunk in ([BookHold.book_id.is_not(None)] if book_ids is None else _id_lists(session, BookHold.book_id, book_ids)):
        for days, codes in by_days.items():
            first = (select(BookHold.id).join(Book, Book.id == BookHold.book_id).where(
                in_chunk, is_(BookHold.status, HoldStatus.QUEUED),
                Book.house_code.in_(codes), Book.status.in_([str(s) for s in SEARCHABLE]),
                ~select(ahead.id).where(ahead.book_id == BookHold.book_id, is_(ahead.status, HoldStatus.QUEUED), or_(
                    ahead.queued_at < BookHold.queued_at,
                    and_(ahead.queued_at == BookHold.queued_at, ahead.id < BookHold.id))).exists(),
                ~select(holder.id).where(holder.book_id == BookHold.book_id, is_(holder.status, HoldStatus.HELD)).exists()))
            promoted += (await session.execute(
                update(BookHold).where(BookHold.id.in_(first), BookHold.status == HoldStatus.QUEUED)
                .values(status=HoldStatus.HELD, expires_at=rules.hold_expiry(now, days), handover_on=None)
                .returning(BookHold.id, BookHold.book_id, BookHold.requester_id, BookHold.round, BookHold.expires_at)
                .execution_options(synchronize_session=False))).all()
    return promoted


async def release_books(session: AsyncSession, config: CommunitiesConfig, book_ids: list[int], now: datetime, *,
                        every_queue: bool = False) -> OutboxIds:
    """Books whose hold ended: the next in each queue gets the book, the rest go back on the shelf.

    Set-based: per chunk of 5,000 books one UPDATE promotes the first in every queue and one puts
    the books nobody holds back on the shelf; the people whose turn it is get one note each."""
    if not book_ids and not every_queue:
        return []
    book_ids = sorted(set(book_ids))
    promoted = await _promote(session, config, None if every_queue else book_ids, now)
    no_holder = ~select(BookHold.id).where(BookHold.book_id == Book.id, is_(BookHold.status, HoldStatus.HELD)).exists()
    for in_chunk in _id_lists(session, Book.id, book_ids):
        await session.execute(update(Book).where(in_chunk, Book.status == BookStatus.HELD, no_holder)
                              .values(status=BookStatus.AVAILABLE).execution_options(synchronize_session=False))
    for in_chunk in _id_lists(session, Book.id, sorted({r.book_id for r in promoted})):
        await session.execute(update(Book).where(in_chunk, Book.status == BookStatus.AVAILABLE)
                              .values(status=BookStatus.HELD).execution_options(synchronize_session=False))
    return await _turn_notes(session, config, promoted, now)


async def _turn_notes(session: AsyncSession, config: CommunitiesConfig, promoted: list[Any], now: datetime) -> OutboxIds:
    """"Your turn": one hold → its card with the days to pick; several → one note listing them."""
    if not promoted:
        return []
    users = await _users(session, [r.requester_id for r in promoted])
    by_user: dict[int, list[Any]] = {}
    for r in promoted:
        by_user.setdefault(r.requester_id, []).append(r)
    named = await _book_rows(session, [r.book_id for held in by_user.values() for r in sorted(held, key=lambda x: x.id)[:LIST_TITLES]])
    rows_ = []
    for user_id, held in by_user.items():
        user = users.get(user_id)
        if user is None:
            continue
        locale = user.locale or "zh"
        held.sort(key=lambda r: r.id)
        first = held[0]
        if len(held) == 1:
            card = hold_card(config, locale, first, named[first.book_id], now, lead="books.your_turn")
            rows_.append(_row(user, f"bk_turn:{first.id}:{first.round}:{as_utc(first.expires_at):%Y%m%d%H%M}", card))
            continue
        shown = held[:LIST_TITLES]
        text = t(locale, "books.your_turns", count=len(held), until=day_label(locale, local_date(config, first.expires_at)),
                 titles="\n".join(f"《{named[r.book_id].title}》" for r in shown)
                 + ("\n" + t(locale, "books.and_more", count=len(held) - len(shown)) if len(held) > len(shown) else ""))
        buttons = [Button(named[r.book_id].title[:24], actions.make("bko", r.book_id)) for r in shown]
        buttons.append(Button(t(locale, "books.mine"), actions.make("bk", "mine")))
        rows_.append(_row(user, f"bk_turns:{first.id}:{first.round}:{as_utc(first.expires_at):%Y%m%d%H%M}",
                          Reply(text, rows(*buttons, per_row=1))))
    return await queue_many(session, rows_)


async def cancel_hold(session: AsyncSession, config: CommunitiesConfig, hold_id: int, user: User,
                      now: datetime) -> OutboxIds | None:
    hold = await session.get(BookHold, hold_id)
    if hold is None or hold.requester_id != user.id:
        return None
    was = hold.status
    result = await session.execute(update(BookHold).where(BookHold.id == hold.id, BookHold.status == was,
                                                          BookHold.status.in_([str(s) for s in ACTIVE_HOLDS]))
                                   .values(status=HoldStatus.CANCELLED))
    if result.rowcount != 1:
        return None
    return await release_books(session, config, [hold.book_id], now) if was == HoldStatus.HELD else []


# --- handover --------------------------------------------------------------------------------

def may_hand_over(config: CommunitiesConfig, book: Book, user: User, volunteer: Volunteer | None) -> bool:
    """The owner hands over what they keep; book-house staff or its approved volunteers what the house keeps."""
    if book.location == "owner":
        return book.owner_id == user.id or is_staff_of(user.roles, user.community_code, book.community_code)
    if is_staff_of(user.roles, user.community_code, book.community_code):
        return True
    return volunteer is not None and volunteer.status == "approved" and volunteer.community_code == book.community_code


async def pick_day(session: AsyncSession, config: CommunitiesConfig, hold_id: int, user: User, day: date,
                   now: datetime) -> tuple[str, OutboxIds]:
    """The requester chooses when to collect; the holder is asked to confirm the handover then."""
    hold = await session.get(BookHold, hold_id)
    if hold is None or hold.requester_id != user.id:
        return "not_allowed", []
    book = await session.get(Book, hold.book_id)
    house = house_by_code(config, book.house_code)
    today = local_date(config, now)
    if hold.status != HoldStatus.HELD or house is None:
        return "stale", []
    allowed = set(rules.handover_days(house.config.open_hours, today, local_date(config, hold.expires_at)))
    swap = next_swap_day(house, today)
    if swap is not None and swap <= today + timedelta(days=14):
        allowed.add(swap)
    if day not in allowed:
        return "stale", []
    values: dict = {"handover_on": day}
    end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo(config.defaults.timezone))
    if as_utc(hold.expires_at) < end_of_day:   # collecting on the swap day keeps the hold until then
        values["expires_at"] = end_of_day
    changed = await session.execute(update(BookHold).where(BookHold.id == hold.id, BookHold.status == HoldStatus.HELD)
                                    .values(**values))
    if changed.rowcount != 1:
        return "stale", []
    name = user.display_name or "-"
    text = t("zh", "books.handover_card", title=book.title, name=name, day=day_label("zh", day),
             where=t("zh", "books.where_house_short") if book.location == "house" else t("zh", "books.where_owner_short"))
    buttons = rows(Button(t("zh", "books.confirm_handover"), actions.make("bkh", "ok", hold.id)))
    key = f"bk_handover:{hold.id}:{hold.round}:{day:%Y%m%d}"
    outbox: list[int | None] = []
    if book.location == "owner":
        owner = await session.get(User, book.owner_id) if book.owner_id else None
        if owner is not None:
            locale = owner.locale or "zh"
            text = t(locale, "books.handover_card", title=book.title, name=name, day=day_label(locale, day),
                     where=t(locale, "books.where_owner_short"))
            outbox.append(await notify.to_user(session, owner, key, Reply(text, rows(
                Button(t(locale, "books.confirm_handover"), actions.make("bkh", "ok", hold.id))))))
    else:
        for prefix, kind in (("g", "staff"), ("v", "volunteer")):
            outbox += await notify.to_group(session, config, book.community_code, kind, f"{prefix}:{key}", text,
                                            options=Reply(text, buttons).options_json())
    return "ok", _ids(*outbox)


async def confirm_handover(session: AsyncSession, config: CommunitiesConfig, hold_id: int, user: User,
                           now: datetime) -> tuple[str, BookHold | None, OutboxIds]:
    """Hand the book over once: the hold, the book and both ledger rows change together or not at all."""
    hold = await session.get(BookHold, hold_id)
    book = await session.get(Book, hold.book_id) if hold else None
    if hold is None or book is None:
        return "not_allowed", None, []
    if not may_hand_over(config, book, user, await session.get(Volunteer, user.id)):
        return "not_allowed", hold, []
    house = house_by_code(config, book.house_code)
    floor = house.config.points_floor if house else 0
    await _lock_users(session, [hold.requester_id, *([book.owner_id] if book.owner_id else [])])
    if hold.status == HoldStatus.HELD and await balance(session, hold.requester_id) - 1 < floor:
        return "no_points", hold, []
    done = await session.execute(update(BookHold).where(BookHold.id == hold.id, BookHold.status == HoldStatus.HELD)
                                 .values(status=HoldStatus.HANDED, handed_at=now, handed_by=user.id))
    if done.rowcount != 1:
        return "already", hold, []
    await book_points(session, hold.requester_id, -1, "taken", f"book:{book.id}")
    if book.owner_id and book.owner_id != hold.requester_id:
        await book_points(session, book.owner_id, +1, "given", f"book:{book.id}")
    await session.execute(update(Book).where(Book.id == book.id, Book.status == BookStatus.HELD)
                          .values(status=BookStatus.GIVEN, given_at=now))
    await book_index.unindex(session, book.house_code, [(book.id, book.search_key)])
    # Whoever still queues for it is told it has gone.
    queued = list(await session.scalars(select(BookHold).where(BookHold.book_id == book.id,
                                                               is_(BookHold.status, HoldStatus.QUEUED))))
    await session.execute(update(BookHold).where(BookHold.book_id == book.id, is_(BookHold.status, HoldStatus.QUEUED))
                          .values(status=HoldStatus.CANCELLED))
    outbox: list[int | None] = []
    taker = await session.get(User, hold.requester_id)
    locale = (taker.locale if taker else None) or "zh"
    outbox.append(await notify.to_user(session, taker, f"bk_taken:{book.id}", Reply(t(
        locale, "books.taken_note", title=book.title, points=await balance(session, hold.requester_id)))))
    if book.owner_id and book.owner_id != hold.requester_id:
        owner = await session.get(User, book.owner_id)
        locale = (owner.locale if owner else None) or "zh"
        outbox.append(await notify.to_user(session, owner, f"bk_given:{book.id}", Reply(t(
            locale, "books.given_note", title=book.title, points=await balance(session, book.owner_id)))))
    for other in queued:
        person = await session.get(User, other.requester_id)
        outbox.append(await notify.to_user(session, person, f"bk_gone:{book.id}",
                                           Reply(t((person.locale if person else None) or "zh", "books.gone_note",
                                                   title=book.title))))
    return "ok", hold, _ids(*outbox)


# --- the sweeps (scheduler, explicit now) ------------------------------------------------------

async def hold_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """Lapsed holds are released; each book goes to the next in its queue, or back on the shelf.

    Set-based: one UPDATE … RETURNING claims the lapsed holds (so a second run, or a second worker,
    finds nothing), then a few statements per 5,000 books (release_books). People hear once per run:
    one note listing the books they lost, one for the books whose turn came (a single one with its
    day buttons). Running it twice changes nothing the second time.
    """
    lapsed = (await session.execute(update(BookHold).where(is_(BookHold.status, HoldStatus.HELD), BookHold.expires_at < now)
                                    .values(status=HoldStatus.EXPIRED)
                                    .returning(BookHold.id, BookHold.book_id, BookHold.requester_id, BookHold.round)
                                    .execution_options(synchronize_session=False))).all()
    outbox = await _lapse_notes(session, lapsed)
    # Every queue without a holder moves on: those of the lapsed holds, and any book left on the
    # shelf with people queueing (a release that raced a new request).
    outbox += await release_books(session, config, [r.book_id for r in lapsed], now, every_queue=True)
    return outbox


async def _lapse_notes(session: AsyncSession, lapsed: list[Any]) -> OutboxIds:
    if not lapsed:
        return []
    by_user: dict[int, list[Any]] = {}
    for r in lapsed:
        by_user.setdefault(r.requester_id, []).append(r)
    users = await _users(session, by_user)
    named = await _book_rows(session, [r.book_id for held in by_user.values()
                                       for r in sorted(held, key=lambda x: x.id)[:LIST_TITLES]])
    notes = []
    for user_id, held in by_user.items():
        user = users.get(user_id)
        if user is None:
            continue
        locale = user.locale or "zh"
        held.sort(key=lambda r: r.id)
        first, shown = held[0], held[:LIST_TITLES]
        if len(held) == 1:
            text = t(locale, "books.lapsed", title=named[first.book_id].title)
        else:
            text = t(locale, "books.lapsed_many", count=len(held),
                     titles="、".join(f"《{named[r.book_id].title}》" for r in shown)
                     + (t(locale, "books.and_more", count=len(held) - len(shown)) if len(held) > len(shown) else ""))
        notes.append(_row(user, f"bk_lapsed:{first.id}:{first.round}", Reply(text)))
    return await queue_many(session, notes)


async def wish_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """New listings against saved searches: each wish's owner is told once per matching book."""
    fresh = list(await session.scalars(select(Book).where(Book.wish_stage == 0).order_by(Book.id).limit(2000)))
    if not fresh:
        return []
    wishes = list(await session.scalars(select(BookWish).where(BookWish.active.is_(True))))
    rows_ = []
    users = await _users(session, [w.user_id for w in wishes])
    for book in fresh:
        if book.status not in SEARCHABLE:
            continue
        for wish in wishes:
            user = users.get(wish.user_id)
            if (user is None or wish.house_code != book.house_code or wish.user_id == book.owner_id
                    or not rules.matches(wish.search_key, book.search_key)):
                continue
            locale = user.locale or "zh"
            reply = Reply(t(locale, "books.wish_match", query=wish.query, title=book.title, author=book.author or "-"),
                          rows(Button(t(locale, "books.open"), actions.make("bko", book.id))))
            rows_.append(_row(user, f"bk_wish:{wish.id}:{book.id}", reply))
    await session.execute(update(Book).where(Book.id.in_([b.id for b in fresh]), Book.wish_stage == 0)
                          .values(wish_stage=1).execution_options(synchronize_session=False))
    return await queue_many(session, rows_)


async def swap_day_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """以书换绿 swap days announced a week before and the day before, to everyone who uses the exchange
    and to the community's staff and volunteer groups (keys carry the date and the stage: told once)."""
    today = local_date(config, now)
    outbox: OutboxIds = []
    for community in config.communities:
        house = community.book_house
        if house is None:
            continue
        for day in house.swap_days:
            stage = {7: "week", 1: "eve"}.get((day - today).days)
            if stage is None:
                continue
            people = set(await session.scalars(select(BookPoint.user_id).distinct()))
            people |= set(await session.scalars(select(BookWish.user_id).where(BookWish.active.is_(True)).distinct()))
            people |= set(await session.scalars(select(Book.owner_id).where(Book.house_code == house.code,
                                                                            Book.owner_id.is_not(None)).distinct()))
            users = await _users(session, people)
            rows_ = []
            for user in users.values():
                locale = user.locale or "zh"
                rows_.append(_row(user, f"bk_swap:{house.code}:{day:%Y%m%d}:{stage}",
                                  Reply(swap_text(locale, house, day, stage))))
            outbox += await queue_many(session, rows_)
            for prefix, kind in (("g", "staff"), ("v", "volunteer")):
                outbox += await notify.to_group(session, config, community.code, kind,
                                                f"{prefix}:bk_swap:{house.code}:{day:%Y%m%d}:{stage}",
                                                swap_text("zh", house, day, stage))
    return outbox


def swap_text(locale: str, house: BookHouse, day: date, stage: str) -> str:
    name = (house.swap_day or {}).get(locale) or (house.swap_day or {}).get("zh") or t(locale, "books.swap_default")
    return t(locale, f"books.swap_{stage}", name=name, day=day_label(locale, day), hours=house.swap_hours,
             place=house.place.get(locale) or house.place["zh"])


# --- staff -------------------------------------------------------------------------------------

async def stock_summary(session: AsyncSession, config: CommunitiesConfig, house: House, locale: str, now: datetime) -> str:
    counts = dict((await session.execute(select(Book.status, func.count()).where(Book.house_code == house.code)
                                         .group_by(Book.status))).all())
    pending = list((await session.execute(
        select(BookHold, Book.title).join(Book, Book.id == BookHold.book_id)
        .where(Book.house_code == house.code, is_(BookHold.status, HoldStatus.HELD))
        .order_by(BookHold.handover_on.is_(None), BookHold.handover_on, BookHold.expires_at).limit(10))).all())
    local = as_utc(now).astimezone(ZoneInfo(config.defaults.timezone))
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    given_month = await session.scalar(select(func.count()).select_from(Book).where(
        Book.house_code == house.code, Book.status == BookStatus.GIVEN, Book.given_at >= month_start))
    listed_month = await session.scalar(select(func.count()).select_from(Book).where(
        Book.house_code == house.code, Book.created_at >= month_start))
    lines = [t(locale, "books.pending_line", title=title, day=day_label(locale, hold.handover_on) if hold.handover_on
               else t(locale, "books.no_day"), until=day_label(locale, local_date(config, hold.expires_at)))
             for hold, title in pending]
    return t(locale, "books.stock", house=house.config.name.get(locale) or house.config.name["zh"],
             available=counts.get("available", 0), held=counts.get("held", 0), given=counts.get("given", 0),
             listed_month=listed_month or 0, given_month=given_month or 0,
             pending="\n".join(lines) or t(locale, "books.none_pending"))
