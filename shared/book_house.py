"""Running the book house, by the scheduler with an explicit `now`:

- plan_shifts: book_duty volunteer shifts for the next 7 local days (open days, and swap days with
  their own longer-staffed shift), each one volunteer task offered like any other; the unique
  (house, start) row makes a second or concurrent run create nothing.
- monthly_summary: from the 1st of a month, the past month's figures to the staff group, once
  (the outbox key carries the month).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify, volunteering
from shared.books import House, is_
from shared.clock import as_utc
from shared.config import CommunitiesConfig
from shared.db.models import Book, BookHold, BookPoint, BookSeedlingSwap, BookShift, BookWish, OutboxMessage, Task
from shared.db.upsert import insert_for
from shared.domain import fridge as clock_rules
from shared.domain.books import BookStatus, HoldStatus
from shared.domain.tasks import TaskStatus
from shared.i18n import t

PLAN_DAYS = 7
SHIFT_SKILL = "book_duty"
COVERED = (TaskStatus.CLAIMED, TaskStatus.STARTED, TaskStatus.DONE, TaskStatus.CONFIRMED)


def _houses(config: CommunitiesConfig) -> list[House]:
    return [House(c.code, c.book_house) for c in config.communities if c.book_house is not None]


def shift_plan(config: CommunitiesConfig, house: House, now: datetime) -> list[tuple[str, datetime, datetime]]:
    """(kind, start, end) of the shifts for the next PLAN_DAYS local days that have not ended yet."""
    tz = config.defaults.timezone
    spans = house.config.shifts
    out: list[tuple[str, datetime, datetime]] = []
    today = clock_rules.local_today(now, tz)
    for offset in range(PLAN_DAYS):
        day = today + timedelta(days=offset)
        if day in house.config.swap_days:
            start, end = clock_rules.parse_span(house.config.swap_hours)
            out.append(("swap", clock_rules.at_local(day, start, tz), clock_rules.at_local(day, end, tz)))
            continue
        hours = clock_rules.hours_on(house.config.open_hours, day)
        if hours is None:
            continue
        for span in spans or [f"{hours[0]:%H:%M}-{hours[1]:%H:%M}"]:
            start, end = clock_rules.parse_span(span)
            out.append(("open", clock_rules.at_local(day, start, tz), clock_rules.at_local(day, end, tz)))
    return [(kind, start, end) for kind, start, end in out if end > now]


async def plan_shifts(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    wanted = [{"house_code": house.code, "community_code": house.community, "kind": kind, "starts_at": start,
               "ends_at": end}
              for house in _houses(config) for kind, start, end in shift_plan(config, house, now)]
    if not wanted:
        return []
    created = list(await session.execute(
        insert_for(session, BookShift).values(wanted).on_conflict_do_nothing(index_elements=["house_code", "starts_at"])
        .returning(BookShift.id, BookShift.house_code, BookShift.community_code, BookShift.kind, BookShift.starts_at,
                   BookShift.ends_at)))
    if not created:
        return []
    houses = {h.code: h for h in _houses(config)}
    tz = config.defaults.timezone
    task_rows = []
    for _id, house_code, community_code, kind, starts_at, ends_at in created:
        house = houses[house_code]
        start, end = as_utc(starts_at), as_utc(ends_at)
        name = house.config.name["zh"]
        task_rows.append({
            "community_code": community_code, "source": "books", "skill": SHIFT_SKILL,
            "title": t("zh", f"book_house.shift_title_{kind}", house=name,
                       when=clock_rules.local(start, tz).strftime("%m-%d %H:%M")),
            "details": t("zh", f"book_house.shift_details_{kind}"), "place": house.config.place["zh"],
            "window_start": start, "window_end": end,
            "est_hours": round(max((end - start).total_seconds() / 3600, 0.25), 2), "status": TaskStatus.OPEN,
            "offer_round": 1, "reminder_stage": 0,
        })
    task_ids = list(await session.scalars(insert(Task).returning(Task.id, sort_by_parameter_order=True), task_rows))
    await session.execute(update(BookShift), [{"id": row[0], "task_id": task_id}
                                              for row, task_id in zip(created, task_ids, strict=True)])
    outbox: list[int] = []
    for task in await session.scalars(select(Task).where(Task.id.in_(task_ids)).order_by(Task.id)):
        outbox += await volunteering.offer(session, config, task)
    return outbox


# --- the monthly summary -------------------------------------------------------------------------

def previous_month(day: date) -> tuple[date, date]:
    """The month before `day`'s: (its first day, the first day of `day`'s month)."""
    first = day.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1), first


async def month_figures(session: AsyncSession, config: CommunitiesConfig, house: House, first: date,
                        after: date) -> dict[str, int]:
    tz = config.defaults.timezone
    start, end = clock_rules.at_local(first, time(0, 0), tz), clock_rules.at_local(after, time(0, 0), tz)

    async def count(stmt) -> int:  # type: ignore[no-untyped-def]
        return int(await session.scalar(stmt) or 0)

    books = select(func.count()).select_from(Book).where(Book.house_code == house.code)
    holds = (select(func.count()).select_from(BookHold).join(Book, Book.id == BookHold.book_id)
             .where(Book.house_code == house.code))
    points = select(func.coalesce(func.sum(BookPoint.delta), 0)).where(
        BookPoint.created_at >= start, BookPoint.created_at < end)
    swaps = select(BookSeedlingSwap).where(BookSeedlingSwap.house_code == house.code,
                                           BookSeedlingSwap.swap_day >= first, BookSeedlingSwap.swap_day < after)
    shifts = select(func.count()).select_from(BookShift).where(
        BookShift.house_code == house.code, BookShift.starts_at >= start, BookShift.starts_at < end)
    return {
        "listed": await count(books.where(Book.created_at >= start, Book.created_at < end)),
        "given": await count(books.where(Book.given_at >= start, Book.given_at < end)),
        "requested": await count(holds.where(BookHold.created_at >= start, BookHold.created_at < end)),
        "lapsed": await count(holds.where(BookHold.status == HoldStatus.EXPIRED, BookHold.expires_at >= start,
                                          BookHold.expires_at < end)),
        "earned": await count(points.where(BookPoint.reason == "given")),
        "spent_books": -await count(points.where(BookPoint.reason == "taken")),
        "spent_seedlings": -await count(points.where(BookPoint.reason == "seedling")),
        "exchanges": await count(select(func.count()).select_from(swaps.subquery())),
        "seedlings": await count(select(func.coalesce(func.sum(BookSeedlingSwap.quantity), 0)).where(
            BookSeedlingSwap.house_code == house.code, BookSeedlingSwap.swap_day >= first,
            BookSeedlingSwap.swap_day < after)),
        "shifts": await count(shifts),
        "covered": await count(shifts.join(Task, Task.id == BookShift.task_id)
                               .where(Task.status.in_([str(s) for s in COVERED]))),
        "available": await count(books.where(Book.status == BookStatus.AVAILABLE)),
        "held": await count(select(func.count()).select_from(BookHold).join(Book, Book.id == BookHold.book_id)
                            .where(Book.house_code == house.code, is_(BookHold.status, HoldStatus.HELD))),
        "wishes": await count(select(func.count()).select_from(BookWish).where(BookWish.house_code == house.code,
                                                                               BookWish.active.is_(True))),
    }


async def monthly_summary(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """From the 1st of a month at summary_at, the past month's figures to the staff group, once."""
    outbox: list[int | None] = []
    local_now = clock_rules.local(now, config.defaults.timezone)
    for house in _houses(config):
        groups = notify.groups_of(config, house.community, "staff")
        if not groups or (local_now.day == 1 and local_now.strftime("%H:%M") < house.config.summary_at):
            continue
        first, after = previous_month(local_now.date())
        key = f"g:bk_month:{house.code}:{first:%Y-%m}"
        if await session.scalar(select(func.count()).select_from(Book).where(Book.house_code == house.code)) == 0:
            continue   # a house nobody has used yet has nothing to report
        keys = [group.key(key) for group in groups]
        if await session.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.key.in_(keys))) == len(keys):
            continue
        figures = await month_figures(session, config, house, first, after)
        text = t(notify.STAFF_LOCALE, "book_house.month_summary", house=house.config.name["zh"],
                 year=first.year, month=first.month, **figures)
        outbox += await notify.to_group(session, config, house.community, "staff", key, text)
    return [i for i in outbox if i]
