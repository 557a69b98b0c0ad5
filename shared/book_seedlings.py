"""以书换绿: points buy seedlings on swap days, from a stock the staff set.

One exchange per person per swap day (the swap row's unique key, and its ledger row's ref), so a
repeated press or a message processed twice changes nothing twice. The stock only goes down by a
conditional UPDATE (stock >= quantity) and a balance never goes below the house's floor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.books import House, _lock_users, balance, book_points, local_date, pending_takes
from shared.clock import utcnow
from shared.config import CommunitiesConfig
from shared.db.models import BookSeedling, BookSeedlingSwap, User
from shared.db.upsert import insert_for
from shared.domain.text import clean_text

NAME_LIMIT = 20
STOCK_LIMIT = 9999
COST_LIMIT = 50
_STOCK_LINE = re.compile(r"^(?P<name>[^\s\d][^\s]{0,19})\s+(?P<stock>\d{1,4})(?:\s+(?P<cost>\d{1,2}))?$")


@dataclass(frozen=True)
class StockLine:
    name: str
    stock: int
    cost: int | None


def parse_stock_line(text: str | None) -> StockLine | None:
    """Staff type `绿萝 12` (name, how many) or `绿萝 12 2` (… and the points each costs)."""
    match = _STOCK_LINE.match(clean_text(text) or "")
    if match is None:
        return None
    cost = int(match["cost"]) if match["cost"] else None
    if cost is not None and not 1 <= cost <= COST_LIMIT:
        return None
    return StockLine(match["name"], int(match["stock"]), cost)


def is_swap_day(config: CommunitiesConfig, house: House, now: datetime) -> bool:
    return local_date(config, now) in house.config.swap_days


async def stock(session: AsyncSession, house_code: str) -> list[BookSeedling]:
    return list(await session.scalars(select(BookSeedling).where(BookSeedling.house_code == house_code)
                                      .order_by(BookSeedling.name)))


async def set_stock(session: AsyncSession, house: House, staff: User, line: StockLine) -> BookSeedling:
    """Create the kind or set its stock (and price); setting the same figures twice changes nothing more."""
    await session.execute(insert_for(session, BookSeedling).values(
        house_code=house.code, name=line.name, cost=line.cost or 1, stock=line.stock, updated_by=staff.id,
        updated_at=utcnow()).on_conflict_do_nothing(index_elements=["house_code", "name"]))
    values = {"stock": line.stock, "updated_by": staff.id, "updated_at": utcnow()}
    if line.cost is not None:
        values["cost"] = line.cost
    await session.execute(update(BookSeedling).where(BookSeedling.house_code == house.code, BookSeedling.name == line.name)
                          .values(**values))
    return await session.scalar(select(BookSeedling).where(BookSeedling.house_code == house.code,
                                                           BookSeedling.name == line.name)
                                .execution_options(populate_existing=True))


@dataclass(frozen=True)
class Exchange:
    result: str        # ok | not_swap_day | gone | bad_quantity | already | no_stock | no_points
    seedling: BookSeedling | None = None
    quantity: int = 0
    points: int = 0


async def exchange(session: AsyncSession, config: CommunitiesConfig, house: House, user: User, seedling_id: int,
                   quantity: int, now: datetime) -> Exchange:
    day: date = local_date(config, now)
    if day not in house.config.swap_days:
        return Exchange("not_swap_day")
    seedling = await session.get(BookSeedling, seedling_id)
    if seedling is None or seedling.house_code != house.code:
        return Exchange("gone")
    if not 1 <= quantity <= house.config.seedling_limit:
        return Exchange("bad_quantity", seedling)
    await _lock_users(session, [user.id])
    if await session.scalar(select(BookSeedlingSwap.id).where(
            BookSeedlingSwap.user_id == user.id, BookSeedlingSwap.house_code == house.code,
            BookSeedlingSwap.swap_day == day)) is not None:
        return Exchange("already", seedling)
    points = seedling.cost * quantity
    # Points promised to books already held for this person stay promised.
    if await balance(session, user.id) - await pending_takes(session, user.id) - points < house.config.points_floor:
        return Exchange("no_points", seedling, quantity, points)
    swap_id = (await session.execute(insert_for(session, BookSeedlingSwap).values(
        house_code=house.code, swap_day=day, user_id=user.id, seedling_id=seedling.id, quantity=quantity,
        points=points, created_at=now).on_conflict_do_nothing(
        index_elements=["user_id", "house_code", "swap_day"]).returning(BookSeedlingSwap.id))).scalar_one_or_none()
    if swap_id is None:    # the same press, processed twice at once
        return Exchange("already", seedling)
    taken = await session.execute(update(BookSeedling).where(BookSeedling.id == seedling.id,
                                                             BookSeedling.stock >= quantity)
                                  .values(stock=BookSeedling.stock - quantity))
    if taken.rowcount != 1:
        await session.execute(delete(BookSeedlingSwap).where(BookSeedlingSwap.id == swap_id))
        return Exchange("no_stock", seedling, quantity, points)
    added = await book_points(session, user.id, -points, "seedling", f"seedling:{house.code}:{day:%Y%m%d}",
                              floor=house.config.points_floor)
    if added is not True:   # cannot happen under the lock above; refuse rather than double-book
        raise RuntimeError("seedling ledger row not written")
    await session.refresh(seedling)
    return Exchange("ok", seedling, quantity, points)
