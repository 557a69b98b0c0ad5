"""Read-only pages for the programmes: volunteer tasks and hours, the fridges, the book houses."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from services.dashboard.context import dashboard, viewer
from services.dashboard.render import page
from shared import books, fridge
from shared.clock import as_utc, utcnow
from shared.db.models import Book, BookHold, BookPoint, FridgeShift, Task, User, Volunteer
from shared.domain.books import BookStatus, HoldStatus
from shared.domain.fridge import ItemStatus
from shared.domain.tasks import TaskStatus
from shared.reports import month_bounds, parse_month, volunteer_hours

LIST_LIMIT = 100


def _month(request: web.Request) -> tuple[int, int]:
    parsed = parse_month(request.query.get("month"))
    if parsed:
        return parsed
    local = utcnow().astimezone(ZoneInfo(dashboard(request).config.defaults.timezone))
    return local.year, local.month


async def tasks_page(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    year, month = _month(request)
    since, until = month_bounds(year, month, dash.config.defaults.timezone)
    claimer = aliased(Volunteer)

    def mine(stmt):  # type: ignore[no-untyped-def]
        return stmt if who.communities is None else stmt.where(Task.community_code.in_(sorted(who.communities)))

    async with dash.database.sessions() as session:
        open_tasks = list(await session.scalars(mine(
            select(Task).where(Task.status == TaskStatus.OPEN, Task.window_end >= utcnow())
            .order_by(Task.window_start).limit(LIST_LIMIT))))
        claimed = list((await session.execute(mine(
            select(Task, claimer.name).outerjoin(claimer, claimer.user_id == Task.claimer_id)
            .where(Task.status.in_([TaskStatus.CLAIMED, TaskStatus.STARTED, TaskStatus.DONE]))
            .order_by(Task.window_start).limit(LIST_LIMIT)))).all())
        hours = await volunteer_hours(session, since=since, until=until, communities=who.communities)
    return page(request, "tasks.html", {"open_tasks": open_tasks, "claimed": claimed, "hours": hours,
                                        "month": f"{year:04d}-{month:02d}"})


async def fridge_page(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    now = utcnow()
    fridges = []
    async with dash.database.sessions() as session:
        for community, fr in [(c, f) for c in dash.config.communities if who.may_see(c.code) for f in c.fridges]:
            items = await fridge.stock(session, fr.code, statuses=(ItemStatus.IN_FRIDGE, ItemStatus.TO_REMOVE))
            shifts = list((await session.execute(
                select(FridgeShift, Task.status).outerjoin(Task, Task.id == FridgeShift.task_id)
                .where(FridgeShift.fridge_code == fr.code, FridgeShift.starts_at >= now - timedelta(days=1),
                       FridgeShift.starts_at < now + timedelta(days=7))
                .order_by(FridgeShift.starts_at))).all())
            readings = list(await session.scalars(
                select(FridgeShift).where(FridgeShift.fridge_code == fr.code, FridgeShift.temperature.is_not(None))
                .order_by(FridgeShift.checked_at.desc()).limit(14)))
            covered = sum(1 for _, status in shifts if status not in (None, TaskStatus.OPEN, TaskStatus.EXPIRED,
                                                                      TaskStatus.CANCELLED))
            fridges.append({"community": community, "fridge": fr, "items": items, "shifts": shifts,
                            "covered": covered, "readings": readings})
    return page(request, "fridge.html", {"fridges": fridges, "today": now.date(),
                                         "covered_states": (TaskStatus.CLAIMED, TaskStatus.STARTED, TaskStatus.DONE,
                                                            TaskStatus.CONFIRMED)})


async def books_page(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    houses = []
    tz = ZoneInfo(dash.config.defaults.timezone)
    today = utcnow().astimezone(tz).date()
    async with dash.database.sessions() as session:
        for community in dash.config.communities:
            if community.book_house is None or not who.may_see(community.code):
                continue
            house = books.House(community.code, community.book_house)
            counts = dict((await session.execute(select(Book.status, func.count()).where(Book.house_code == house.code)
                                                 .group_by(Book.status))).all())
            holds = list((await session.execute(
                select(BookHold, Book.title).join(Book, Book.id == BookHold.book_id)
                .where(Book.house_code == house.code, BookHold.status.in_([HoldStatus.HELD, HoldStatus.QUEUED]))
                .order_by(BookHold.status, BookHold.expires_at).limit(LIST_LIMIT))).all())
            # Points residents of this community hold: what they could exchange for seedlings at a swap day.
            points = int(await session.scalar(select(func.coalesce(func.sum(BookPoint.delta), 0))
                                              .join(User, User.id == BookPoint.user_id)
                                              .where(User.community_code == community.code)) or 0)
            swap_days = [d for d in house.config.swap_days if d >= today]
            houses.append({"house": house, "community": community,
                           "available": counts.get(BookStatus.AVAILABLE, 0), "held": counts.get(BookStatus.HELD, 0),
                           "given": counts.get(BookStatus.GIVEN, 0), "holds": holds, "swap_days": swap_days,
                           "points": points})
    return page(request, "books.html", {"houses": houses, "as_utc": as_utc})


def routes() -> list[web.RouteDef]:
    return [web.get("/tasks", tasks_page), web.get("/fridge", fridge_page), web.get("/books", books_page)]
