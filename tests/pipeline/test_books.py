"""The book exchange through the real bot code: listing, search, holds and queue, handover, points, wishes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from aiogram.types import Update
from sqlalchemy import func, select

from services.scheduler import jobs
from shared import books
from shared.clock import utcnow
from shared.db.models import Book, BookHold, BookPoint, OutboxMessage, User
from shared.repo.users import get_or_create_user
from tests.pipeline.test_request_handling import (
    CJX_STAFF, STAFF, STAFF_CHAT_ZJY, buttons, people, report, texts,  # noqa: F401 - fixture
)
from tests.pipeline.test_resident_request import RESIDENT, onboard

READER, THIRD = 501002, 501003


def photo_update(p, user_id: int, file_id: str = "AgACAgQAAxkBAAIBk") -> Update:
    return Update.model_validate({
        "update_id": 900000 + user_id % 1000,
        "message": {"message_id": 77000, "date": int(datetime.now().timestamp()),
                    "chat": {"id": user_id, "type": "private"},
                    "from": {"id": user_id, "is_bot": False, "first_name": "王阿姨", "language_code": "zh"},
                    "photo": [{"file_id": file_id, "file_unique_id": "u1", "width": 90, "height": 90}]},
    })


async def user_id(db, telegram_id: int) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(User.id).where(User.external_id == str(telegram_id)))


async def give_points(db, telegram_id: int, points: int) -> None:
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(telegram_id))
        await books.book_points(session, user.id, points, "adjust", f"test:{points}")
        await session.commit()


async def list_book(p, telegram_id: int, text: str, *, condition: str = "good", location: str = "house") -> None:
    await p.feed(p.updates.press(telegram_id, "bk:list"))
    await p.feed(p.updates.message(telegram_id, text))
    await p.feed(p.updates.press(telegram_id, f"bkc:{condition}"))
    await p.feed(p.updates.press(telegram_id, "bkph:skip"))
    await p.feed(p.updates.press(telegram_id, f"bkl:{location}"))


async def all_books(db) -> list[Book]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Book).order_by(Book.id)))


@pytest.fixture
async def readers(people):
    await onboard(people, READER)
    await onboard(people, THIRD)
    return people


async def test_menu_and_intake_lead_to_the_book_house(people, db):
    p = people
    assert "bk:menu" in buttons(p.telegram.sent(RESIDENT)[-1])  # the main menu after onboarding
    await p.feed(p.updates.press(RESIDENT, "bk:menu"))
    menu = p.telegram.sent(RESIDENT)[-1]
    assert "凤翮筑梦书屋" in menu.text and "0 分" in menu.text
    assert {"bk:list", "bk:search", "bk:points"} <= set(buttons(menu)) and "bk:stock" not in buttons(menu)
    request = await report(p, db, "家里有一箱旧书 想捐给书屋")
    assert request.status == "closed" and request.category == "books"
    assert buttons(p.telegram.sent(RESIDENT)[-1]) == ["bk:menu"]


async def test_list_by_title_and_by_isbn_with_photo(people, db):
    p = people
    await p.feed(p.updates.press(RESIDENT, "bk:list"))
    await p.feed(p.updates.message(RESIDENT, "🙂🙂"))
    assert "没看懂书名" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "《红楼梦》曹雪芹"))
    assert "bkc:good" in buttons(p.telegram.sent(RESIDENT)[-1])
    await p.feed(p.updates.press(RESIDENT, "bkc:mint"))            # forged condition
    assert "过期" in p.telegram.sent(RESIDENT)[-1].text or "失效" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(RESIDENT, "bkc:good"))
    await p.feed(p.updates.message(RESIDENT, "这是照片"))
    assert "照片" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(photo_update(p, RESIDENT))
    assert "bkl:house" in buttons(p.telegram.sent(RESIDENT)[-1])
    await p.feed(p.updates.press(RESIDENT, "bkl:owner"))
    await p.feed(p.updates.press(RESIDENT, "bkl:owner"))           # a duplicate press lists nothing more
    assert "已登记《红楼梦》" in texts(p, RESIDENT)

    await p.feed(p.updates.press(RESIDENT, "bk:list"))
    await p.feed(p.updates.message(RESIDENT, "978-7-02-000220-8"))
    assert "应该是 7" in p.telegram.sent(RESIDENT)[-1].text and "8" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "97870200022"))
    assert "10 位或 13 位" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "0-306-40615-2"))
    assert "9780306406157 正确" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "Data Structures / Aho"))
    await p.feed(p.updates.press(RESIDENT, "bkc:worn"))
    await p.feed(p.updates.press(RESIDENT, "bkph:skip"))
    await p.feed(p.updates.press(RESIDENT, "bkl:house"))

    # The same ISBN again: title and author come from the earlier listing.
    await p.feed(p.updates.press(RESIDENT, "bk:list"))
    await p.feed(p.updates.message(RESIDENT, "9780306406157"))
    assert "Data Structures" in p.telegram.sent(RESIDENT)[-1].text
    listed = await all_books(db)
    assert [(b.title, b.author, b.condition, b.location, b.isbn, b.photo_file_id is not None) for b in listed] == [
        ("红楼梦", "曹雪芹", "good", "owner", None, True),
        ("Data Structures", "Aho", "worn", "house", "9780306406157", False)]
    assert all(b.status == "available" and b.community_code == "zjy" for b in listed)


async def test_search_partial_typo_author_traditional_and_pages(people, db, config):
    p = people
    house = books.house_for(config, "zjy")
    async with db.sessions() as session:
        for title, author in [("红楼梦", "曹雪芹"), ("西游记", "吴承恩"), ("平凡的世界", "路遥"), ("人生", "路遥"),
                              ("活着", "余华"), ("三国演义", "罗贯中")] + [(f"十万个为什么 第{i}册", "少儿社") for i in range(7)]:
            await books.add_book(session, house, None, title=title, author=author, isbn=None, condition="good",
                                 location="house", photo=None)
        await session.commit()

    async def search(query: str) -> str:
        await p.feed(p.updates.press(RESIDENT, "bk:search"))
        await p.feed(p.updates.message(RESIDENT, query))
        return p.telegram.sent(RESIDENT)[-1].text

    assert "《红楼梦》" in await search("红楼")            # partial
    assert "《红楼梦》" in await search("红搂梦")          # a wrong character
    assert "《红楼梦》" in await search("紅樓夢")          # traditional
    by_author = await search("路遥")
    assert "《平凡的世界》" in by_author and "《人生》" in by_author and "红楼梦" not in by_author
    assert "《西游记》" in await search("西游计")
    assert "没有" in await search("哈利波特")
    await p.feed(p.updates.press(RESIDENT, "bk:search"))
    await p.feed(p.updates.message(RESIDENT, "红"))
    assert "两个字" in p.telegram.sent(RESIDENT)[-1].text

    await p.feed(p.updates.message(RESIDENT, "十万个为什么"))
    first = p.telegram.sent(RESIDENT)[-1]
    assert "找到 7 本" in first.text and "第 1/2 页" in first.text
    assert "bkp:1" in buttons(first) and len([b for b in buttons(first) if b.startswith("bko:")]) == 5
    await p.feed(p.updates.press(RESIDENT, "bkp:1"))
    second = p.telegram.calls[-1]
    assert "第 2/2 页" in second.text and "bkp:0" in buttons(second)
    for forged in ("bkp:abc", "bkp:999999", "bko:0", "bko:99999999"):
        await p.feed(p.updates.press(RESIDENT, forged))
    assert all(("过期" in m.text or "失效" in m.text or "不在了" in m.text) for m in p.telegram.sent(RESIDENT)[-4:])


async def test_hold_queue_handover_and_points(readers, db, config):
    p = readers
    await list_book(p, RESIDENT, "《活着》余华")                   # kept at the book house
    book = (await all_books(db))[0]
    await p.feed(p.updates.press(READER, f"bkr:{book.id}"))
    assert "送出一本书得 1 分" in p.telegram.sent(READER)[-1].text   # a newcomer has no points yet
    await give_points(db, READER, 1)
    await give_points(db, THIRD, 1)
    await p.feed(p.updates.press(RESIDENT, f"bkr:{book.id}"))
    assert "自己送的" in p.telegram.sent(RESIDENT)[-1].text

    await p.feed(p.updates.press(READER, f"bkr:{book.id}"))
    held = p.telegram.sent(READER)[-1]
    assert "为您保留到" in held.text
    days = [b for b in buttons(held) if b.startswith("bkt:")]
    assert days and all(int(b.split(":")[2]) >= int(utcnow().strftime("%Y%m%d")) - 1 for b in days)
    await p.feed(p.updates.press(READER, f"bkr:{book.id}"))
    assert "已经预约过" in p.telegram.sent(READER)[-1].text
    await p.feed(p.updates.press(THIRD, f"bkr:{book.id}"))
    assert "第 1 位" in p.telegram.sent(THIRD)[-1].text

    hold_id = int(days[0].split(":")[1])
    await p.feed(p.updates.press(THIRD, days[0]))                  # not their hold
    assert "没有权限" in p.telegram.sent(THIRD)[-1].text
    await p.feed(p.updates.press(READER, f"bkt:{hold_id}:19990101"))  # not an offered day
    await p.feed(p.updates.press(READER, f"bkt:{hold_id}:20261399"))  # not a date
    await p.feed(p.updates.press(READER, days[0]))
    await p.drain()
    assert "约在" in p.telegram.sent(READER)[-1].text
    card = p.telegram.sent(STAFF_CHAT_ZJY)[-1]
    assert "《活着》" in card.text and buttons(card) == [f"bkh:ok:{hold_id}"]

    for intruder in (READER, THIRD, RESIDENT, CJX_STAFF):          # the owner's book is at the house: staff hand it over
        await p.feed(p.updates.press(intruder, f"bkh:ok:{hold_id}", chat_id=STAFF_CHAT_ZJY))
        assert "只有送书人" in p.telegram.sent(intruder)[-1].text
    await p.feed(p.updates.press(STAFF, f"bkh:ok:{hold_id}", chat_id=STAFF_CHAT_ZJY))
    await p.feed(p.updates.press(STAFF, f"bkh:ok:{hold_id}", chat_id=STAFF_CHAT_ZJY))
    await p.drain()
    assert "已经确认过" in p.telegram.sent(STAFF)[-1].text
    assert "用去 1 分，现在有 0 分" in texts(p, READER)
    assert "得 1 分，现在有 1 分" in texts(p, RESIDENT)
    assert "已经送给了别人" in texts(p, THIRD)
    async with db.sessions() as session:
        ledger = sorted((await session.execute(select(BookPoint.user_id, BookPoint.delta, BookPoint.reason)
                                               .where(BookPoint.reason != "adjust"))).all())
        assert ledger == sorted([(await user_id(db, READER), -1, "taken"), (await user_id(db, RESIDENT), 1, "given")])
        assert (await session.get(Book, book.id)).status == "given"
        # Handing over again straight through the rule books nothing twice.
        staff = await session.scalar(select(User).where(User.external_id == str(STAFF)))
        result, _hold, _ids = await books.confirm_handover(session, config, hold_id, staff, utcnow())
        assert result == "already"
        assert await session.scalar(select(func.count()).select_from(BookPoint)) == 4
    await p.feed(p.updates.message(RESIDENT, "/points"))
    assert "1 分" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(READER, "bk:search"))
    await p.feed(p.updates.message(READER, "活着"))
    assert "没有" in p.telegram.sent(READER)[-1].text               # given books leave the search


async def test_lapsed_hold_goes_to_the_next_in_the_queue(readers, db, config):
    p = readers
    await list_book(p, RESIDENT, "三体 / 刘慈欣", location="owner")
    book = (await all_books(db))[0]
    for reader in (READER, THIRD):
        await give_points(db, reader, 2)
        await p.feed(p.updates.press(reader, f"bkr:{book.id}"))
    await p.feed(p.updates.press(THIRD, f"bkx:999999"))              # not a hold of theirs
    later = utcnow() + timedelta(days=config.community("zjy").book_house.hold_days, hours=1)
    assert await jobs.book_holds(p.db, p.broker, config, utcnow()) == 0   # nothing has lapsed yet
    assert await jobs.book_holds(p.db, p.broker, config, later) == 2      # lapse note + "your turn"
    assert await jobs.book_holds(p.db, p.broker, config, later) == 0      # nothing twice
    await p.drain()
    assert "已过保留期" in texts(p, READER) and "轮到您了" in texts(p, THIRD)
    async with db.sessions() as session:
        statuses = dict((await session.execute(select(BookHold.requester_id, BookHold.status))).all())
        assert statuses == {await user_id(db, READER): "expired", await user_id(db, THIRD): "held"}
        turn = await session.scalar(select(OutboxMessage).where(OutboxMessage.key.like("%bk_turn%")))
        assert "轮到您了" in turn.text and any(o["action"].startswith("bkt:") for row in turn.options for o in row)
        hold = await session.scalar(select(BookHold).where(BookHold.status == "held"))
    # The next holder gives up: nobody is left, the book is back on the shelf.
    await p.feed(p.updates.press(THIRD, f"bkx:{hold.id}"))
    await p.feed(p.updates.press(THIRD, f"bkx:{hold.id}"))
    assert "已取消" in texts(p, THIRD)
    async with db.sessions() as session:
        assert (await session.get(Book, book.id)).status == "available"
    # The owner of a book they keep at home confirms the handover themselves.
    await p.feed(p.updates.press(READER, f"bkr:{book.id}"))
    days = [b for b in buttons(p.telegram.sent(READER)[-1]) if b.startswith("bkt:")]
    await p.feed(p.updates.press(READER, days[-1]))
    await p.drain()
    card = p.telegram.sent(RESIDENT)[-1]
    assert buttons(card)[0].startswith("bkh:ok:")
    await p.feed(p.updates.press(STAFF, buttons(card)[0]))           # staff may also record it
    await p.drain()                                                   # the owner's "you earned" note
    await p.feed(p.updates.press(RESIDENT, buttons(card)[0]))
    assert "已经确认过" in p.telegram.sent(RESIDENT)[-1].text


async def test_wish_list_is_told_once(readers, db, config):
    p = readers
    await p.feed(p.updates.press(READER, "bk:search"))
    await p.feed(p.updates.message(READER, "小王子"))
    await p.feed(p.updates.press(READER, "bkw:save"))
    await p.feed(p.updates.press(READER, "bkw:save"))
    assert "已存心愿" in texts(p, READER) and "已经在您的心愿书单" in p.telegram.sent(READER)[-1].text
    await list_book(p, RESIDENT, "《小王子》圣埃克苏佩里")
    await list_book(p, RESIDENT, "《围城》钱钟书")
    async with db.sessions() as session:
        ids = await books.wish_sweep(session, config, utcnow())
        await session.commit()
        assert await books.wish_sweep(session, config, utcnow()) == []
        note = await session.get(OutboxMessage, ids[0])
    assert len(ids) == 1 and "小王子" in note.text and note.chat_id == str(READER)
    await p.feed(p.updates.press(READER, "bk:wishes"))
    remove = buttons(p.telegram.sent(READER)[-1])[0]
    await p.feed(p.updates.press(RESIDENT, remove))                 # not theirs
    assert "过期" in p.telegram.sent(RESIDENT)[-1].text or "失效" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(READER, remove))
    assert "已删除" in p.telegram.sent(READER)[-1].text


async def test_swap_days_are_announced_a_week_and_a_day_before(readers, db, config):
    p = readers
    await give_points(db, READER, 1)
    swap = config.community("zjy").book_house.swap_days[0]
    week_before = datetime(swap.year, swap.month, swap.day, 2, 0) - timedelta(days=7)   # 10:00 in Lanzhou
    async with db.sessions() as session:
        first = await books.swap_day_sweep(session, config, week_before)
        again = await books.swap_day_sweep(session, config, week_before + timedelta(hours=1))
        eve = await books.swap_day_sweep(session, config, week_before + timedelta(days=6))
        none = await books.swap_day_sweep(session, config, week_before + timedelta(days=3))
        await session.commit()
        texts_ = list(await session.scalars(select(OutboxMessage.text).where(OutboxMessage.key.like("%bk_swap%"))))
    assert len(first) == 3 and again == [] and len(eve) == 3 and none == []   # the reader, staff group, volunteer group
    assert any("以书换绿" in x and "明天" in x for x in texts_)


async def test_staff_see_the_stock(people, db):
    p = people
    await list_book(p, RESIDENT, "《活着》余华")
    await p.feed(p.updates.message(RESIDENT, "/bookstock"))
    assert "只有本社区" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(STAFF, "/bookstock"))
    assert "可预约 1 本" in p.telegram.sent(STAFF)[-1].text
