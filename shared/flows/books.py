"""The book exchange in chat: list a book, search, request and collect, points, wish list, staff stock.

Listing: title and author (or an ISBN) → condition → photo or skip → where it is.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from shared import books
from shared.clock import utcnow
from shared.db.models import Book, BookHold, BookPoint, BookWish
from shared.domain import books as rules
from shared.domain.books import ACTIVE_HOLDS, CONDITIONS, LOCATIONS, HoldStatus
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

PAGE = 5
WISH_LIMIT = 10


def _house(ctx: FlowContext) -> books.House | None:
    return books.house_for(ctx.config, ctx.user.community_code)


def _name(ctx: FlowContext, house: books.House) -> str:
    return house.config.name.get(ctx.locale) or house.config.name["zh"]


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _stale(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "errors.stale_button"))]


def _book_line(ctx: FlowContext, book: Book) -> str:
    status = t(ctx.locale, f"books.status_{book.status}")
    return t(ctx.locale, "books.line", title=book.title, author=book.author or t(ctx.locale, "books.unknown_author"),
             condition=t(ctx.locale, f"books.cond_{book.condition}"), status=status)


# --- entry -------------------------------------------------------------------------------------

async def menu(ctx: FlowContext) -> list[Reply]:
    house = _house(ctx)
    if house is None:
        return [Reply(t(ctx.locale, "books.no_house"))]
    ctx.state.pop("await", None)
    place = house.config.place.get(ctx.locale) or house.config.place["zh"]
    buttons = [Button(t(ctx.locale, "books.give"), actions.make("bk", "list")),
               Button(t(ctx.locale, "books.find"), actions.make("bk", "search")),
               Button(t(ctx.locale, "books.mine"), actions.make("bk", "mine")),
               Button(t(ctx.locale, "books.points"), actions.make("bk", "points")),
               Button(t(ctx.locale, "books.wishes"), actions.make("bk", "wishes")),
               Button(t(ctx.locale, "books.green"), actions.make("bk", "green"))]
    if is_staff_for(ctx, house.community):
        buttons.append(Button(t(ctx.locale, "books.stock_button"), actions.make("bk", "stock")))
        buttons.append(Button(t(ctx.locale, "books.seedling_stock"), actions.make("bk", "seed")))
    return [Reply(t(ctx.locale, "books.menu", house=_name(ctx, house), place=place, hours=books.hours_text(house),
                    balance=await books.balance(ctx.session, ctx.user.id)), rows(*buttons))]


async def on_menu(ctx: FlowContext, choice: str) -> list[Reply]:
    from shared.flows import book_seedlings

    handlers = {"menu": menu, "list": start_listing, "search": ask_query, "mine": mine, "points": points,
                "wishes": wishes, "stock": stock, "green": book_seedlings.menu, "seed": book_seedlings.staff_stock}
    handler = handlers.get(choice)
    return await handler(ctx) if handler else _stale(ctx)


# --- listing -------------------------------------------------------------------------------------

async def start_listing(ctx: FlowContext) -> list[Reply]:
    if _house(ctx) is None:
        return [Reply(t(ctx.locale, "books.no_house"))]
    ctx.state.clear()
    ctx.state["book"] = {}
    ctx.state["await"] = "book_title"
    return [Reply(t(ctx.locale, "books.ask_title"))]


def _condition_prompt(ctx: FlowContext) -> Reply:
    form = ctx.state["book"]
    return Reply(t(ctx.locale, "books.ask_condition", title=form["title"],
                   author=form.get("author") or t(ctx.locale, "books.unknown_author")),
                 rows(*(Button(t(ctx.locale, f"books.cond_{c}"), actions.make("bkc", c)) for c in CONDITIONS)))


async def on_title(ctx: FlowContext, text: str | None) -> list[Reply]:
    form = ctx.state.get("book")
    if form is None:
        ctx.state.pop("await", None)
        return _stale(ctx)
    cleaned = clean_text(text)
    if not cleaned or not has_words(cleaned) or len(cleaned) > 300:
        return [Reply(t(ctx.locale, "books.title_invalid", limit=rules.TITLE_LIMIT))]
    if rules.looks_like_isbn(cleaned) and "isbn" not in form:
        check = rules.check_isbn(cleaned)
        if not check.ok:
            if check.error == "checksum":
                return [Reply(t(ctx.locale, "books.isbn_checksum", given=check.given, expected=check.expected))]
            return [Reply(t(ctx.locale, f"books.isbn_{check.error}"))]
        form["isbn"] = check.isbn13
        known = await books.known_isbn(ctx.session, check.isbn13)
        if known is None:
            return [Reply(t(ctx.locale, "books.isbn_ok_ask_title", isbn=check.isbn13))]
        form["title"], form["author"] = known
        ctx.state.pop("await", None)
        return [_condition_prompt(ctx)]
    title, author = rules.parse_title_author(cleaned)
    if not title or not has_words(title) or len(title) > rules.TITLE_LIMIT or len(author or "") > rules.AUTHOR_LIMIT:
        return [Reply(t(ctx.locale, "books.title_invalid", limit=rules.TITLE_LIMIT))]
    form["title"], form["author"] = title, author
    ctx.state.pop("await", None)
    return [_condition_prompt(ctx)]


async def on_condition(ctx: FlowContext, code: str) -> list[Reply]:
    form = ctx.state.get("book")
    if form is None or "title" not in form or code not in CONDITIONS:
        return _stale(ctx)
    form["condition"] = code
    ctx.state["await"] = "book_photo"
    return [Reply(t(ctx.locale, "books.ask_photo"),
                  rows(Button(t(ctx.locale, "books.skip_photo"), actions.make("bkph", "skip"))))]


def _location_prompt(ctx: FlowContext) -> Reply:
    house = _house(ctx)
    return Reply(t(ctx.locale, "books.ask_location"),
                 rows(Button(t(ctx.locale, "books.loc_house", house=_name(ctx, house)), actions.make("bkl", "house")),
                      Button(t(ctx.locale, "books.loc_owner"), actions.make("bkl", "owner")), per_row=1))


async def on_photo(ctx: FlowContext, text: str | None, attachments: list | None) -> list[Reply]:
    form = ctx.state.get("book")
    photo = next((a.get("file_id") for a in attachments or [] if a.get("type") == "photo"), None)
    if form is None or "condition" not in form:
        ctx.state.pop("await", None)
        return _stale(ctx)
    if not photo or len(str(photo)) > 200:
        return [Reply(t(ctx.locale, "books.photo_expected"),
                      rows(Button(t(ctx.locale, "books.skip_photo"), actions.make("bkph", "skip"))))]
    form["photo"] = str(photo)
    ctx.state.pop("await", None)
    return [_location_prompt(ctx)]


async def skip_photo(ctx: FlowContext, op: str = "skip") -> list[Reply]:
    form = ctx.state.get("book")
    if op != "skip" or form is None or "condition" not in form or ctx.state.get("await") != "book_photo":
        return _stale(ctx)
    form["photo"] = None
    ctx.state.pop("await", None)
    return [_location_prompt(ctx)]


async def on_location(ctx: FlowContext, code: str) -> list[Reply]:
    form = ctx.state.get("book")
    house = _house(ctx)
    if form is None or "condition" not in form or "photo" not in form or code not in LOCATIONS or house is None:
        return _stale(ctx)
    ctx.state.clear()
    book = await books.add_book(ctx.session, house, ctx.user, title=form["title"], author=form.get("author"),
                                isbn=form.get("isbn"), condition=form["condition"], location=code, photo=form["photo"])
    await commit_and_deliver(ctx, [])
    where = t(ctx.locale, "books.listed_house", house=_name(ctx, house)) if code == "house" \
        else t(ctx.locale, "books.listed_owner")
    return [Reply(t(ctx.locale, "books.listed", title=book.title, where=where),
                  rows(Button(t(ctx.locale, "books.give_another"), actions.make("bk", "list")),
                       Button(t(ctx.locale, "books.back"), actions.make("bk", "menu"))))]


# --- search ------------------------------------------------------------------------------------

async def ask_query(ctx: FlowContext) -> list[Reply]:
    if _house(ctx) is None:
        return [Reply(t(ctx.locale, "books.no_house"))]
    ctx.state.pop("book", None)
    ctx.state["await"] = "book_query"
    return [Reply(t(ctx.locale, "books.ask_query"))]


async def on_query(ctx: FlowContext, text: str | None) -> list[Reply]:
    query = clean_text(text)
    if len(rules.normalize(query)) < rules.MIN_QUERY or len(query) > 100:
        return [Reply(t(ctx.locale, "books.query_invalid"))]
    ctx.state.pop("await", None)
    ctx.state["book_q"] = query
    return await page(ctx, "0")


async def page(ctx: FlowContext, number: str) -> list[Reply]:
    query, house = ctx.state.get("book_q"), _house(ctx)
    n = _id(number)
    if not query or n is None or house is None or n > 100:
        return _stale(ctx)
    result = await books.search(ctx.session, house.code, query, offset=n * PAGE, limit=PAGE)
    if result is None:
        return _stale(ctx)
    save = Button(t(ctx.locale, "books.save_wish"), actions.make("bkw", "save"))
    if not result.books:
        return [Reply(t(ctx.locale, "books.no_results", query=query), rows(save))]
    lines = [f"{n * PAGE + i}. {_book_line(ctx, b)}" for i, b in enumerate(result.books, start=1)]
    pages = (result.total + PAGE - 1) // PAGE
    opens = [Button(f"{n * PAGE + i}. {b.title[:20]}", actions.make("bko", b.id)) for i, b in enumerate(result.books, 1)]
    nav = []
    if n > 0:
        nav.append(Button(t(ctx.locale, "books.prev"), actions.make("bkp", n - 1)))
    if n + 1 < pages:
        nav.append(Button(t(ctx.locale, "books.next"), actions.make("bkp", n + 1)))
    text = t(ctx.locale, "books.results", query=query, total=result.total, page=n + 1, pages=pages) + "\n" + "\n".join(lines)
    return [Reply(text, (*rows(*opens, per_row=1), tuple(nav), (save,)) if nav else (*rows(*opens, per_row=1), (save,)),
                  replace=n > 0)]


async def open_book(ctx: FlowContext, book_id: str) -> list[Reply]:
    bid = _id(book_id)
    book = await ctx.session.get(Book, bid) if bid else None
    if book is None or book.status not in rules.SEARCHABLE:
        return [Reply(t(ctx.locale, "books.gone"))]
    hold = await ctx.session.scalar(select(BookHold).where(BookHold.book_id == book.id,
                                                           BookHold.requester_id == ctx.user.id))
    text = _book_line(ctx, book)
    if book.isbn:
        text += "\nISBN " + book.isbn
    text += "\n" + (t(ctx.locale, "books.kept_house") if book.location == "house" else t(ctx.locale, "books.kept_owner"))
    if hold is not None and hold.status == HoldStatus.HELD:   # theirs now: the days to collect it
        return [books.hold_card(ctx.config, ctx.locale, hold, book, utcnow())]
    if hold is not None and hold.status in ACTIVE_HOLDS:
        buttons = rows(Button(t(ctx.locale, "books.cancel_hold"), actions.make("bkx", hold.id)))
    elif book.owner_id == ctx.user.id:
        buttons = ()
    else:
        buttons = rows(Button(t(ctx.locale, "books.request"), actions.make("bkr", book.id)))
    return [Reply(text, buttons)]


# --- request, collect, cancel -------------------------------------------------------------------

async def request(ctx: FlowContext, book_id: str) -> list[Reply]:
    bid = _id(book_id)
    if bid is None:
        return _stale(ctx)
    now = utcnow()
    outcome = await books.request_book(ctx.session, ctx.config, bid, ctx.user, now)
    if outcome.result == "held":
        book = await ctx.session.get(Book, bid)
        card = books.hold_card(ctx.config, ctx.locale, outcome.hold, book, now)
        await commit_and_deliver(ctx, outcome.outbox_ids or [])
        return [card]
    if outcome.result == "queued":
        await commit_and_deliver(ctx, [])
        return [Reply(t(ctx.locale, "books.queued", position=outcome.position),
                      rows(Button(t(ctx.locale, "books.cancel_hold"), actions.make("bkx", outcome.hold.id))))]
    if outcome.result == "already":
        return [Reply(t(ctx.locale, "books.already_requested"))]
    if outcome.result == "no_points":
        house = _house(ctx)
        return [Reply(t(ctx.locale, "books.no_points", floor=house.config.points_floor if house else 0),
                      rows(Button(t(ctx.locale, "books.give"), actions.make("bk", "list"))))]
    return [Reply(t(ctx.locale, "books.own" if outcome.result == "own" else "books.gone"))]


async def pick_day(ctx: FlowContext, hold_id: str, day: str) -> list[Reply]:
    hid = _id(hold_id)
    try:
        when = date(int(day[:4]), int(day[4:6]), int(day[6:8])) if len(day) == 8 and day.isdigit() else None
    except ValueError:
        when = None
    if hid is None or when is None:
        return _stale(ctx)
    result, ids = await books.pick_day(ctx.session, ctx.config, hid, ctx.user, when, utcnow())
    if result == "not_allowed":
        return [Reply(t(ctx.locale, "errors.not_allowed"))]
    if result != "ok":
        return _stale(ctx)
    hold = await ctx.session.get(BookHold, hid)
    book = await ctx.session.get(Book, hold.book_id)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "books.day_chosen", title=book.title, day=books.day_label(ctx.locale, when)),
                  rows(Button(t(ctx.locale, "books.cancel_hold"), actions.make("bkx", hid))))]


async def cancel(ctx: FlowContext, hold_id: str) -> list[Reply]:
    hid = _id(hold_id)
    ids = await books.cancel_hold(ctx.session, ctx.config, hid, ctx.user, utcnow()) if hid else None
    if ids is None:
        return _stale(ctx)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "books.cancelled"))]


async def handover(ctx: FlowContext, op: str, hold_id: str) -> list[Reply]:
    hid = _id(hold_id)
    if hid is None or op != "ok":
        return _stale(ctx)
    result, hold, ids = await books.confirm_handover(ctx.session, ctx.config, hid, ctx.user, utcnow())
    if result == "not_allowed":
        return [Reply(t(ctx.locale, "books.not_holder"))]
    if result == "already":
        return [Reply(t(ctx.locale, "books.already_handed"))]
    if result == "no_points":
        return [Reply(t(ctx.locale, "books.taker_no_points"))]
    book = await ctx.session.get(Book, hold.book_id)
    title = book.title
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "books.handed", title=title))]


# --- mine, points, wishes, stock ------------------------------------------------------------------

async def mine(ctx: FlowContext) -> list[Reply]:
    holds = list((await ctx.session.execute(
        select(BookHold, Book).join(Book, Book.id == BookHold.book_id)
        .where(BookHold.requester_id == ctx.user.id, books.active(BookHold.status))
        .order_by(BookHold.id.desc()).limit(10))).all())
    listed = list(await ctx.session.scalars(select(Book).where(Book.owner_id == ctx.user.id,
                                                               Book.status.in_([str(s) for s in rules.SEARCHABLE]))
                                            .order_by(Book.id.desc()).limit(10)))
    if not holds and not listed:
        return [Reply(t(ctx.locale, "books.nothing_yet"))]
    replies = []
    now = utcnow()
    for hold, book in holds:
        if hold.status == HoldStatus.HELD:
            replies.append(books.hold_card(ctx.config, ctx.locale, hold, book, now))
        else:
            replies.append(Reply(t(ctx.locale, "books.queued_line", title=book.title,
                                   position=await books.queue_position(ctx.session, hold)),
                                 rows(Button(t(ctx.locale, "books.cancel_hold"), actions.make("bkx", hold.id)))))
    if listed:
        replies.append(Reply(t(ctx.locale, "books.my_listed") + "\n" + "\n".join(_book_line(ctx, b) for b in listed)))
    return replies


async def points(ctx: FlowContext) -> list[Reply]:
    total = await books.balance(ctx.session, ctx.user.id)
    recent = list(await ctx.session.scalars(select(BookPoint).where(BookPoint.user_id == ctx.user.id)
                                            .order_by(BookPoint.id.desc()).limit(5)))
    lines = "\n".join(t(ctx.locale, f"books.point_{p.reason}" if p.reason in ("given", "taken", "seedling") else "books.point_other",
                        delta=f"{p.delta:+d}") for p in recent)
    return [Reply(t(ctx.locale, "books.points_summary", balance=total) + ("\n" + lines if lines else ""))]


async def save_wish(ctx: FlowContext) -> list[Reply]:
    query, house = ctx.state.get("book_q"), _house(ctx)
    if not query or house is None:
        return _stale(ctx)
    key = rules.normalize(query)[:120]
    existing = list(await ctx.session.scalars(select(BookWish).where(BookWish.user_id == ctx.user.id,
                                                                     BookWish.active.is_(True))))
    if any(w.search_key == key for w in existing):
        return [Reply(t(ctx.locale, "books.wish_exists", query=query))]
    if len(existing) >= WISH_LIMIT:
        return [Reply(t(ctx.locale, "books.wish_full", limit=WISH_LIMIT))]
    ctx.session.add(BookWish(user_id=ctx.user.id, house_code=house.code, query=query[:120], search_key=key, active=True))
    await commit_and_deliver(ctx, [])
    return [Reply(t(ctx.locale, "books.wish_saved", query=query))]


async def wishes(ctx: FlowContext) -> list[Reply]:
    saved = list(await ctx.session.scalars(select(BookWish).where(BookWish.user_id == ctx.user.id,
                                                                  BookWish.active.is_(True)).order_by(BookWish.id)))
    if not saved:
        return [Reply(t(ctx.locale, "books.no_wishes"))]
    buttons = [Button(t(ctx.locale, "books.wish_remove", query=w.query[:20]), actions.make("bkwd", w.id)) for w in saved]
    return [Reply(t(ctx.locale, "books.wish_list"), rows(*buttons, per_row=1))]


async def remove_wish(ctx: FlowContext, wish_id: str) -> list[Reply]:
    wid = _id(wish_id)
    wish = await ctx.session.get(BookWish, wid) if wid else None
    if wish is None or wish.user_id != ctx.user.id or not wish.active:
        return _stale(ctx)
    wish.active = False
    await commit_and_deliver(ctx, [])
    return [Reply(t(ctx.locale, "books.wish_removed", query=wish.query))]


async def on_wish(ctx: FlowContext, op: str) -> list[Reply]:
    return await save_wish(ctx) if op == "save" else _stale(ctx)


async def stock(ctx: FlowContext) -> list[Reply]:
    house = _house(ctx)
    if house is None or not is_staff_for(ctx, house.community):
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    return [Reply(await books.stock_summary(ctx.session, ctx.config, house, ctx.locale, utcnow()))]
