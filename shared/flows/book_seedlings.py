"""以书换绿 in chat: residents exchange points for seedlings on swap days; staff set the stock.

Resident: 🌱 (bk:green) → the stock, and on a swap day one button per seedling and quantity
(bkg:<seedling id>:<quantity>). Staff: /seedlings or 🌱 in the stock view → type `name count [points]`.
"""

from __future__ import annotations

from shared import book_seedlings as seedlings
from shared import books
from shared.clock import utcnow
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

AWAIT_STOCK = "seedling_stock"


def _house(ctx: FlowContext) -> books.House | None:
    return books.house_for(ctx.config, ctx.user.community_code)


def _swap_name(ctx: FlowContext, house: books.House) -> str:
    names = house.config.swap_day or {}
    return names.get(ctx.locale) or names.get("zh") or t(ctx.locale, "books.swap_default")


def _lines(ctx: FlowContext, stock: list) -> str:
    return "\n".join(t(ctx.locale, "book_seedlings.stock_line", name=s.name, cost=s.cost, stock=s.stock)
                     for s in stock) or t(ctx.locale, "book_seedlings.none")


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


async def menu(ctx: FlowContext) -> list[Reply]:
    house = _house(ctx)
    if house is None:
        return [Reply(t(ctx.locale, "books.no_house"))]
    now = utcnow()
    stock = await seedlings.stock(ctx.session, house.code)
    if not seedlings.is_swap_day(ctx.config, house, now):
        upcoming = books.next_swap_day(house, books.local_date(ctx.config, now))
        return [Reply(t(ctx.locale, "book_seedlings.not_today", name=_swap_name(ctx, house), lines=_lines(ctx, stock),
                        next=books.day_label(ctx.locale, upcoming) if upcoming else t(ctx.locale, "book_seedlings.no_next")))]
    balance = await books.balance(ctx.session, ctx.user.id)
    usable = balance - await books.pending_takes(ctx.session, ctx.user.id) - house.config.points_floor
    buttons = [Button(t(ctx.locale, "book_seedlings.option", name=s.name, qty=qty, points=s.cost * qty),
                      actions.make("bkg", s.id, qty))
               for s in stock if s.stock > 0
               for qty in range(1, min(house.config.seedling_limit, s.stock) + 1) if s.cost * qty <= usable]
    return [Reply(t(ctx.locale, "book_seedlings.today", name=_swap_name(ctx, house), balance=balance,
                    usable=max(usable, 0), limit=house.config.seedling_limit, lines=_lines(ctx, stock)),
                  rows(*buttons, per_row=3))]


async def exchange(ctx: FlowContext, seedling_id: str, quantity: str) -> list[Reply]:
    house, sid, qty = _house(ctx), _id(seedling_id), _id(quantity)
    if house is None or sid is None or qty is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    outcome = await seedlings.exchange(ctx.session, ctx.config, house, ctx.user, sid, qty, utcnow())
    if outcome.result == "ok":
        await commit_and_deliver(ctx, [])
        return [Reply(t(ctx.locale, "book_seedlings.ok", name=outcome.seedling.name, qty=outcome.quantity,
                        points=outcome.points, balance=await books.balance(ctx.session, ctx.user.id)))]
    if outcome.result == "no_points":
        usable = (await books.balance(ctx.session, ctx.user.id) - await books.pending_takes(ctx.session, ctx.user.id)
                  - house.config.points_floor)
        return [Reply(t(ctx.locale, "book_seedlings.no_points", name=outcome.seedling.name, qty=outcome.quantity,
                        points=outcome.points, usable=max(usable, 0), floor=house.config.points_floor))]
    if outcome.result == "no_stock":
        await ctx.session.commit()   # the refused exchange left nothing behind; keep the session clean
        return [Reply(t(ctx.locale, "book_seedlings.no_stock", name=outcome.seedling.name, qty=outcome.quantity))]
    if outcome.result == "bad_quantity":
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    return [Reply(t(ctx.locale, f"book_seedlings.{outcome.result}"))]


# --- staff ------------------------------------------------------------------------------------------

async def staff_stock(ctx: FlowContext) -> list[Reply]:
    house = _house(ctx)
    if house is None or not is_staff_for(ctx, house.community):
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    ctx.state.clear()
    ctx.state["await"] = AWAIT_STOCK
    stock = await seedlings.stock(ctx.session, house.code)
    return [Reply(t(ctx.locale, "book_seedlings.staff_ask", house=house.config.name.get(ctx.locale) or house.config.name["zh"],
                    lines=_lines(ctx, stock)))]


async def on_stock_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    house = _house(ctx)
    if house is None or not is_staff_for(ctx, house.community):   # a role removed meanwhile
        ctx.state.pop("await", None)
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    line = seedlings.parse_stock_line(text)
    if line is None:
        return [Reply(t(ctx.locale, "book_seedlings.staff_bad"))]
    ctx.state.pop("await", None)
    seedling = await seedlings.set_stock(ctx.session, house, ctx.user, line)
    await commit_and_deliver(ctx, [])
    return [Reply(t(ctx.locale, "book_seedlings.staff_set", name=seedling.name, stock=seedling.stock, cost=seedling.cost),
                  rows(Button(t(ctx.locale, "books.seedling_stock"), actions.make("bk", "seed"))))]
