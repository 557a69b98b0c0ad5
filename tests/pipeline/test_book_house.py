"""The book house beyond single books: 以书换绿 seedlings, batched notes of the hold sweep, volunteer
shifts, the monthly summary, and /mydata and /forgetme over the book tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.bot.app import create_dispatcher
from services.scheduler import jobs
from shared import book_house, books
from shared.clock import utcnow
from shared.db.models import (
    Book, BookHold, BookPoint, BookSeedling, BookSeedlingSwap, BookShift, BookWish, OutboxMessage, Task, User,
)
from shared.privacy import ERASED
from tests.pipeline.test_books import READER, THIRD, all_books, give_points, list_book, readers, user_id  # noqa: F401
from tests.pipeline.test_request_handling import CJX_STAFF, STAFF, buttons, people, texts  # noqa: F401 - fixture
from tests.pipeline.test_resident_request import RESIDENT

VOLUNTEER_CHAT_ZJY = -1001000000202


def swap_day_today(config):  # type: ignore[no-untyped-def]
    """The same configuration with today (local) as a swap day of the zjy book house."""
    data = config.model_dump()
    for community in data["communities"]:
        if community["code"] == "zjy":
            house = community["book_house"]
            house["swap_days"] = sorted({*house["swap_days"], books.local_date(config, utcnow())})
    return type(config).model_validate(data)


def use(p, db, config) -> None:  # type: ignore[no-untyped-def]
    p.dispatcher = create_dispatcher(config=config, sessions=db.sessions, broker=p.broker)


async def ledger(db, telegram_id: int) -> list[tuple[int, str]]:
    uid = await user_id(db, telegram_id)
    async with db.sessions() as session:
        return [(r.delta, r.reason) for r in await session.scalars(
            select(BookPoint).where(BookPoint.user_id == uid).order_by(BookPoint.id))]


async def seedling(db, name: str) -> BookSeedling:
    async with db.sessions() as session:
        return await session.scalar(select(BookSeedling).where(BookSeedling.name == name))


def stale(text: str) -> bool:
    return "过期" in text or "失效" in text


async def test_staff_set_the_seedling_stock(people, db):
    p = people
    for outsider in (RESIDENT, CJX_STAFF):                       # a resident; staff of another community
        await p.feed(p.updates.message(outsider, "/seedlings"))
        assert "只有本社区" in p.telegram.sent(outsider)[-1].text
        await p.feed(p.updates.message(outsider, "绿萝 12 2"))   # not taken as a stock line
    await p.feed(p.updates.press(RESIDENT, "bk:seed"))
    assert "只有本社区" in p.telegram.sent(RESIDENT)[-1].text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(BookSeedling)) == 0

    await p.feed(p.updates.message(STAFF, "/seedlings"))
    assert "还没有绿植库存" in p.telegram.sent(STAFF)[-1].text
    for bad in ("随便写写", "绿萝 -3", "绿萝 12 0", "绿萝 12 99", "12 绿萝", "绿萝 123456", "🌱" * 30 + " 3"):
        await p.feed(p.updates.message(STAFF, bad))
        assert "没看懂" in p.telegram.sent(STAFF)[-1].text, bad
    await p.feed(p.updates.message(STAFF, "绿萝 12 2"))
    assert "绿萝：库存 12 棵，每棵 2 分" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "绿萝 12 2"))          # the same line again: nothing more
    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "多肉 5"))              # price defaults to 1 point
    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "多肉 0"))              # off the list, price kept
    async with db.sessions() as session:
        stock = [(s.name, s.stock, s.cost) for s in await session.scalars(select(BookSeedling).order_by(BookSeedling.name))]
    assert sorted(stock) == sorted([("绿萝", 12, 2), ("多肉", 0, 1)])


async def test_points_buy_seedlings_on_a_swap_day_once(readers, db, config):
    p = readers
    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "绿萝 2 2"))
    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "多肉 5 1"))
    green, succulent = await seedling(db, "绿萝"), await seedling(db, "多肉")

    # Not a swap day: the stock is shown, an old or forged button changes nothing.
    await p.feed(p.updates.press(READER, "bk:green"))
    assert "下一次" in p.telegram.sent(READER)[-1].text and "绿萝" in p.telegram.sent(READER)[-1].text
    await give_points(db, READER, 5)
    await p.feed(p.updates.press(READER, f"bkg:{green.id}:1"))
    assert "不是以书换绿活动日" in p.telegram.sent(READER)[-1].text

    use(p, db, swap_day_today(config))
    await p.feed(p.updates.press(THIRD, "bk:green"))              # no points: nothing to press
    assert "今天是以书换绿活动日" in p.telegram.sent(THIRD)[-1].text
    assert not [b for b in buttons(p.telegram.sent(THIRD)[-1]) if b.startswith("bkg:")]
    await p.feed(p.updates.press(THIRD, f"bkg:{succulent.id}:1"))
    assert "积分不够" in p.telegram.sent(THIRD)[-1].text

    await p.feed(p.updates.press(READER, "bk:green"))
    offered = [b for b in buttons(p.telegram.sent(READER)[-1]) if b.startswith("bkg:")]
    assert f"bkg:{green.id}:2" in offered and f"bkg:{succulent.id}:3" in offered and f"bkg:{green.id}:3" not in offered
    for forged in (f"bkg:{green.id}:9", f"bkg:{green.id}:0", "bkg:abc:1", f"bkg:{green.id}:x"):
        await p.feed(p.updates.press(READER, forged))
        assert stale(p.telegram.sent(READER)[-1].text), forged
    await p.feed(p.updates.press(READER, "bkg:99999999:1"))
    assert "已经没有了" in p.telegram.sent(READER)[-1].text
    async with db.sessions() as session:                         # another house's seedling
        elsewhere = BookSeedling(house_code="elsewhere", name="兰花", cost=1, stock=9)
        session.add(elsewhere)
        await session.commit()
        elsewhere_id = elsewhere.id
    await p.feed(p.updates.press(READER, f"bkg:{elsewhere_id}:1"))
    assert "已经没有了" in p.telegram.sent(READER)[-1].text
    assert await ledger(db, READER) == [(5, "adjust")]

    await p.feed(p.updates.press(READER, f"bkg:{green.id}:2"))
    assert "已换到 绿萝 ×2，用去 4 分，现在有 1 分" in p.telegram.sent(READER)[-1].text
    await p.feed(p.updates.press(READER, f"bkg:{green.id}:2"))    # the same press again
    await p.feed(p.updates.press(READER, f"bkg:{succulent.id}:1"))  # one exchange per swap day
    assert "已经换过" in p.telegram.sent(READER)[-1].text
    assert await ledger(db, READER) == [(5, "adjust"), (-4, "seedling")]

    await give_points(db, THIRD, 10)
    await p.feed(p.updates.press(THIRD, f"bkg:{green.id}:1"))     # none left
    assert "换完了" in p.telegram.sent(THIRD)[-1].text
    await p.feed(p.updates.press(THIRD, f"bkg:{succulent.id}:3"))
    assert "现在有 7 分" in p.telegram.sent(THIRD)[-1].text
    async with db.sessions() as session:
        assert {s.name: s.stock for s in await session.scalars(select(BookSeedling))} == {"绿萝": 0, "多肉": 2, "兰花": 9}
        assert await session.scalar(select(func.count()).select_from(BookSeedlingSwap)) == 2
    await p.feed(p.updates.message(READER, "/points"))
    assert "-4 换绿植" in p.telegram.sent(READER)[-1].text


async def test_seedlings_keep_points_promised_to_held_books(readers, db, config):
    """A balance never goes below the floor (0), counting the point a held book will cost."""
    p = readers
    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "多肉 5 1"))
    succulent = await seedling(db, "多肉")
    await list_book(p, RESIDENT, "《活着》余华")
    book = (await all_books(db))[0]
    await give_points(db, READER, 1)
    await p.feed(p.updates.press(READER, f"bkr:{book.id}"))       # held: its point is promised
    use(p, db, swap_day_today(config))
    await p.feed(p.updates.press(READER, f"bkg:{succulent.id}:1"))
    assert "积分不够" in p.telegram.sent(READER)[-1].text and "可用 0 分" in p.telegram.sent(READER)[-1].text
    assert await ledger(db, READER) == [(1, "adjust")]


async def test_many_lapsed_holds_make_one_note_each(readers, db, config):
    p = readers
    for title in ("《活着》余华", "《围城》钱钟书", "《边城》沈从文"):
        await list_book(p, RESIDENT, title)
    listed = await all_books(db)
    await give_points(db, READER, 3)
    await give_points(db, THIRD, 3)
    for reader in (READER, THIRD):
        for book in listed:
            await p.feed(p.updates.press(reader, f"bkr:{book.id}"))
    later = utcnow() + timedelta(days=config.community("zjy").book_house.hold_days, hours=1)
    assert await jobs.book_holds(p.db, p.broker, config, later) == 2     # one note to each, not six
    assert await jobs.book_holds(p.db, p.broker, config, later) == 0
    await p.drain()
    lost, turn = p.telegram.sent(READER)[-1], p.telegram.sent(THIRD)[-1]
    assert "3 本书已过保留期" in lost.text and "《围城》" in lost.text
    assert "下面 3 本书现在为您保留到" in turn.text
    opens = [b for b in buttons(turn) if b.startswith("bko:")]
    assert len(opens) == 3 and "bk:mine" in buttons(turn)
    await p.feed(p.updates.press(THIRD, opens[0]))                     # the book: days to pick
    days = [b for b in buttons(p.telegram.sent(THIRD)[-1]) if b.startswith("bkt:")]
    assert days and "为您保留到" in p.telegram.sent(THIRD)[-1].text
    await p.feed(p.updates.press(READER, days[0]))                     # not their hold
    assert "没有权限" in p.telegram.sent(READER)[-1].text
    await p.feed(p.updates.press(THIRD, days[0]))
    assert "约在" in p.telegram.sent(THIRD)[-1].text
    async with db.sessions() as session:
        held = dict((await session.execute(select(BookHold.requester_id, func.count()).where(BookHold.status == "held")
                                           .group_by(BookHold.requester_id))).all())
        assert held == {await user_id(db, THIRD): 3}
        assert {b.status for b in await session.scalars(select(Book))} == {"held"}


async def test_book_house_shifts_are_planned_once_as_volunteer_tasks(db, config):
    monday = datetime(2026, 4, 6, 0, 0, tzinfo=UTC)                 # 08:00 in Lanzhou; Saturday the 11th is a swap day
    async with db.sessions() as session:
        first = await book_house.plan_shifts(session, config, monday)
        await session.commit()
        again = await book_house.plan_shifts(session, config, monday + timedelta(hours=1))
        await session.commit()
        shifts = list(await session.scalars(select(BookShift).order_by(BookShift.starts_at)))
        tasks = list(await session.scalars(select(Task).order_by(Task.window_start)))
        offers = list(await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like("g:offer:%"))))
    assert again == [] and len(shifts) == len(tasks) == 9                # Tue–Fri two shifts a day, the swap day one
    assert [s.kind for s in shifts].count("swap") == 1 and all(s.task_id for s in shifts)
    assert {t.skill for t in tasks} == {"book_duty"} and {t.source for t in tasks} == {"books"}
    assert "以书换绿" in tasks[-1].title and tasks[-1].est_hours == 3
    assert len(first) == len(offers) == 9                                 # each offered to the volunteer group


async def test_monthly_summary_reaches_staff_once(db, config):
    house = books.house_for(config, "zjy")
    november = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)
    async with db.sessions() as session:
        book = await books.add_book(session, house, None, title="活着", author="余华", isbn=None, condition="good",
                                    location="house", photo=None)
        book.created_at, book.status, book.given_at = november, "given", november
        await session.commit()
        before = await book_house.monthly_summary(session, config, datetime(2026, 12, 1, 0, 30, tzinfo=UTC))   # 08:30 local
        sent = await book_house.monthly_summary(session, config, datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
        again = await book_house.monthly_summary(session, config, datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
        await session.commit()
        note = await session.get(OutboxMessage, sent[0])
    assert before == [] and len(sent) == 1 and again == []
    assert "2026年11月小结" in note.text and "新登记 1 本，送出 1 本" in note.text
    assert note.chat_id == str(config.community("zjy").staff_chat_id)


async def test_mydata_and_forgetme_cover_the_book_house(readers, db, config):
    p = readers
    await list_book(p, RESIDENT, "三体 / 刘慈欣", location="owner")     # kept at home
    await list_book(p, READER, "《围城》钱钟书")                       # at the house
    home, house_book = await all_books(db)
    await give_points(db, RESIDENT, 2)
    await give_points(db, READER, 2)
    await give_points(db, THIRD, 2)
    await p.feed(p.updates.press(READER, f"bkr:{home.id}"))             # READER holds the book RESIDENT keeps
    await p.feed(p.updates.press(RESIDENT, f"bkr:{house_book.id}"))     # RESIDENT holds 围城, THIRD queues
    await p.feed(p.updates.press(THIRD, f"bkr:{house_book.id}"))
    await p.feed(p.updates.press(RESIDENT, "bk:search"))
    await p.feed(p.updates.message(RESIDENT, "小王子"))
    await p.feed(p.updates.press(RESIDENT, "bkw:save"))

    await p.feed(p.updates.message(RESIDENT, "/mydata"))
    dump = texts(p, RESIDENT, -4)
    assert '"三体"' in dump and '"围城"' in dump and '"小王子"' in dump and '"reason": "adjust"' in dump

    await p.feed(p.updates.message(RESIDENT, "/forgetme"))
    await p.feed(p.updates.press(RESIDENT, "fm:yes"))
    await p.drain()
    assert "已经送给了别人" in texts(p, READER)                       # the book kept at home has gone
    assert "轮到您了" in p.telegram.sent(THIRD)[-1].text               # 围城 went to the next in line
    async with db.sessions() as session:
        assert (await session.get(Book, home.id)).status == "withdrawn"
        assert (await session.get(Book, house_book.id)).status == "held"
        wish = await session.scalar(select(BookWish))
        assert wish.query == ERASED and not wish.active
        statuses = dict((await session.execute(select(BookHold.requester_id, BookHold.status)
                                                .where(BookHold.book_id == house_book.id))).all())
        assert statuses == {await user_id(db, THIRD): "held",
                            (await session.scalar(select(User.id).where(User.external_id.like("forgotten:%")))): "cancelled"}
        notes = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert (await books.search(session, "fenghe", "三体")).total == 0
    await p.feed(p.updates.press(RESIDENT, "fm:yes"))                   # pressed again: nothing more
    await p.drain()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == notes



FOURTH = 501004


async def test_queue_is_served_in_order_and_repeated_updates_count_once(readers, db, config):
    from tests.pipeline.test_request_handling import STAFF_CHAT_ZJY
    from tests.pipeline.test_resident_request import onboard

    p = readers
    await onboard(p, FOURTH)
    await list_book(p, RESIDENT, "《活着》余华")
    book = (await all_books(db))[0]
    for reader in (READER, THIRD, FOURTH):
        await give_points(db, reader, 1)
        await p.feed(p.updates.press(reader, f"bkr:{book.id}"))
    assert "第 2 位" in p.telegram.sent(FOURTH)[-1].text
    hold_days = config.community("zjy").book_house.hold_days
    holders = []
    for lapse in (1, 2):
        await jobs.book_holds(p.db, p.broker, config, utcnow() + timedelta(days=hold_days * lapse, hours=lapse))
        async with db.sessions() as session:
            holders.append(await session.scalar(select(BookHold.requester_id).where(BookHold.status == "held")))
    assert holders == [await user_id(db, THIRD), await user_id(db, FOURTH)]      # first come, first served

    await p.drain()
    days = [b for b in buttons(p.telegram.sent(FOURTH)[-1]) if b.startswith("bkt:")]
    await p.feed(p.updates.press(FOURTH, days[0]))
    hold_id = int(days[0].split(":")[1])
    handover = p.updates.press(STAFF, f"bkh:ok:{hold_id}", chat_id=STAFF_CHAT_ZJY)
    await p.feed(handover)
    await p.feed(handover)                                                        # Telegram delivers it again
    assert await ledger(db, FOURTH) == [(1, "adjust"), (-1, "taken")]
    assert await ledger(db, RESIDENT) == [(1, "given")]

    await p.feed(p.updates.press(STAFF, "bk:seed"))
    await p.feed(p.updates.message(STAFF, "多肉 5 1"))
    use(p, db, swap_day_today(config))
    await give_points(db, THIRD, 3)
    press = p.updates.press(THIRD, f"bkg:{(await seedling(db, '多肉')).id}:2")
    await p.feed(press)
    await p.feed(press)
    assert await ledger(db, THIRD) == [(1, "adjust"), (3, "adjust"), (-2, "seedling")]
    assert (await seedling(db, "多肉")).stock == 3
