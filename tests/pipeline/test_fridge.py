"""The shared fridge through the real bot code: donate, receive/refuse, stock, take, alerts, shifts, checklist.

Scheduler rules run with an explicit clock (`now`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from services.scheduler import jobs
from shared import fridge as ops
from shared import fridge_sweeps, volunteering
from shared.clock import as_utc, utcnow
from shared.config import parse_communities
from shared.db.models import FridgeItem, FridgeShift, FridgeSubscription, OutboxMessage, Task, User
from shared.domain import fridge as rules
from shared.repo.users import find_user, get_or_create_user, give_consent
from shared.settings import REPO_ROOT
from shared.sweeps import task_sweep
from tests.pipeline.test_request_handling import (  # noqa: F401 - fixture
    CJX_STAFF, STAFF, STAFF_CHAT_ZJY, buttons, people, report, texts,
)
from tests.pipeline.test_resident_request import RESIDENT, onboard
from tests.pipeline.test_volunteers import HELPER, VOLUNTEER_CHAT_ZJY, approved_volunteer

FRIDGE = "zjy-fridge-1"
TZ = "Asia/Shanghai"
TAKER, COURIER = 501002, 501003


def local_dt(day: date, hour: int, minute: int = 0) -> datetime:
    return rules.at_local(day, time(hour, minute), TZ)


async def user_id(db, telegram_id: int) -> int:
    async with db.sessions() as session:
        return (await find_user(session, "telegram", str(telegram_id))).id


async def items(db) -> list[FridgeItem]:
    async with db.sessions() as session:
        return list(await session.scalars(select(FridgeItem).order_by(FridgeItem.id)))


async def donate(p, who: int = RESIDENT, *, name: str = "包子", quantity: str = "fq:3", kind: str = "cooked",
                 best_before: str = "tomorrow") -> str:
    """Walk the donation flow and book the first slot; returns the pledge reply text."""
    await p.feed(p.updates.press(who, "menu:fridge"))
    assert f"fr:give:{FRIDGE}" in buttons(p.telegram.sent(who)[-1])
    await p.feed(p.updates.press(who, f"fr:give:{FRIDGE}"))
    await p.feed(p.updates.message(who, name))
    await p.feed(p.updates.press(who, quantity))
    await p.feed(p.updates.press(who, f"fk:{kind}"))
    await p.feed(p.updates.press(who, f"fb:{best_before}"))
    rules_prompt = p.telegram.sent(who)[-1]
    assert "不收生肉" in rules_prompt.text and buttons(rules_prompt) == ["fh:yes", "fh:no"]
    await p.feed(p.updates.press(who, "fh:yes"))
    slots = buttons(p.telegram.sent(who)[-1])
    assert slots and all(s.startswith("fs:") for s in slots)
    await p.feed(p.updates.press(who, slots[0]))
    return p.telegram.sent(who)[-1].text


async def test_donate_receive_stock_take(people, db):
    p = people
    pledged = await donate(p)
    [item] = await items(db)
    assert (item.name, item.quantity, item.kind, item.status) == ("包子", 3, "cooked", "pledged")
    assert item.best_before == rules.local_today(utcnow(), TZ) + timedelta(days=1)
    assert item.code in pledged and "预约成功" in pledged
    assert buttons(p.telegram.sent(RESIDENT)[-1]) == [f"fi:cancel:{item.id}"]
    await p.drain()
    # Nobody holds a shift today, so the card goes to the staff group.
    card = p.telegram.sent(STAFF_CHAT_ZJY)[-1]
    assert item.code in card.text and buttons(card) == [f"fi:ok:{item.id}", f"fi:no:{item.id}"]

    for intruder in (RESIDENT, CJX_STAFF):  # the donor themself and another community's staff
        await p.feed(p.updates.press(intruder, f"fi:ok:{item.id}", chat_id=STAFF_CHAT_ZJY))
        assert "只有今天值班" in p.telegram.sent(intruder)[-1].text
    await p.feed(p.updates.press(STAFF, f"fi:ok:{item.id}", chat_id=STAFF_CHAT_ZJY))
    assert "已收下" in p.telegram.sent(STAFF)[-1].text
    await p.feed(p.updates.press(STAFF, f"fi:ok:{item.id}", chat_id=STAFF_CHAT_ZJY))   # a second tap
    await p.feed(p.updates.press(STAFF, f"frr:{item.id}:opened", chat_id=STAFF_CHAT_ZJY))
    assert "已经处理过" in texts(p, STAFF).splitlines()[-1]
    await p.drain()
    thanks = [m.text for m in p.telegram.sent(RESIDENT) if "已经放进爱心冰箱" in m.text]
    assert len(thanks) == 1
    await p.feed(p.updates.press(RESIDENT, f"fi:cancel:{item.id}"))
    assert "已经处理过" in p.telegram.sent(RESIDENT)[-1].text

    # Anyone sees the stock, by kind, with best-before, and takes one portion (a double tap takes one).
    await onboard(p, TAKER)
    await p.feed(p.updates.press(TAKER, f"fr:stock:{FRIDGE}"))
    stock = p.telegram.sent(TAKER)[-1]
    assert "【熟食】" in stock.text and "包子 ×3" in stock.text and "保质期至" in stock.text
    assert buttons(stock) == [f"fi:take:{item.id}"]
    await p.feed(p.updates.press(TAKER, f"fi:take:{item.id}"))
    await p.feed(p.updates.press(TAKER, f"fi:take:{item.id}"))
    assert "已登记" in texts(p, TAKER).splitlines()[-2] and "已经登记过" in texts(p, TAKER).splitlines()[-1]
    [item] = await items(db)
    assert (item.remaining, item.status) == (2, "in_fridge")

    # Staff mark the rest taken; nobody can take it after that.
    await p.feed(p.updates.press(RESIDENT, f"fi:gone:{item.id}"))
    assert "只有今天值班" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(STAFF, f"fi:gone:{item.id}"))
    await p.feed(p.updates.press(RESIDENT, f"fi:take:{item.id}"))
    assert "拿完" in p.telegram.sent(RESIDENT)[-1].text
    [item] = await items(db)
    assert (item.remaining, item.status) == (0, "taken")
    await p.feed(p.updates.press(TAKER, f"fr:stock:{FRIDGE}"))
    assert "空的" in p.telegram.sent(TAKER)[-1].text


async def test_refusal_and_bad_input(people, db):
    p = people
    await p.feed(p.updates.message(RESIDENT, "/fridge"))
    assert "爱心共享冰箱" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(RESIDENT, f"fr:give:{FRIDGE}"))
    for bad in ("😀😀", "x" * 5000, "\u200b\u200b"):
        await p.feed(p.updates.message(RESIDENT, bad))
        assert "名称" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "牛奶"))
    for bad in ("0", "999", "很多"):
        await p.feed(p.updates.message(RESIDENT, bad))
        assert "1 到 50" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.message(RESIDENT, "2盒"))
    await p.feed(p.updates.press(RESIDENT, "fk:rawmeat"))       # forged kind
    assert "失效" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(RESIDENT, "fk:dairy"))
    await p.feed(p.updates.press(RESIDENT, "fb:pick"))
    for bad, answer in (("2020-01-01", "已经过了"), ("abc", "没看懂"), ("2月30日", "没看懂"), ("2099-01-01", "太远")):
        await p.feed(p.updates.message(RESIDENT, bad))
        assert answer in p.telegram.sent(RESIDENT)[-1].text, bad
    await p.feed(p.updates.message(RESIDENT, (rules.local_today(utcnow(), TZ) + timedelta(days=2)).isoformat()))
    await p.feed(p.updates.press(RESIDENT, "fs:209901010000"))   # no slot before accepting the rules
    assert "失效" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(RESIDENT, "fh:yes"))
    await p.feed(p.updates.press(RESIDENT, "fs:209901010000"))   # a forged slot is not booked
    assert "约满或已过" in p.telegram.sent(RESIDENT)[-2].text
    assert await items(db) == []
    await p.feed(p.updates.press(RESIDENT, buttons(p.telegram.sent(RESIDENT)[-1])[0]))
    [item] = await items(db)
    assert (item.kind, item.quantity) == ("dairy", 2)
    await p.feed(p.updates.press(RESIDENT, "fh:yes"))
    assert "失效" in p.telegram.sent(RESIDENT)[-1].text   # the form is gone once booked

    for forged in (f"fi:ok:99999", "fi:zap:1", f"frr:{item.id}:smelly", "fr:stock:nofridge", "fi:ok:1;DROP", "fs:2026"):
        await p.feed(p.updates.press(STAFF, forged))
        assert "失效" in p.telegram.sent(STAFF)[-1].text, forged
    await p.feed(p.updates.press(STAFF, f"fi:no:{item.id}"))
    assert f"frr:{item.id}:opened" in buttons(p.telegram.sent(STAFF)[-1])
    await p.feed(p.updates.press(RESIDENT, f"frr:{item.id}:opened"))
    assert "只有今天值班" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(STAFF, f"frr:{item.id}:opened"))
    await p.feed(p.updates.press(STAFF, f"frr:{item.id}:expired"))
    assert "已经处理过" in p.telegram.sent(STAFF)[-1].text
    await p.drain()
    told = [m.text for m in p.telegram.sent(RESIDENT) if "没能放进冰箱" in m.text]
    assert len(told) == 1 and "已开封" in told[0]
    [item] = await items(db)
    assert (item.status, item.refuse_reason) == ("refused", "opened")


async def test_receive_by_code_on_shift_and_checklist(people, db, config):
    p = people
    volunteer = await approved_volunteer(db, HELPER, "zjy", skills=("fridge_duty",))
    today = rules.local_today(utcnow(), TZ)
    async with db.sessions() as session:
        task, _ids = await volunteering.create_task(
            session, config, community="zjy", skill="fridge_duty", title="冰箱值班", details=None, place=None,
            window_start=local_dt(today, 12), window_end=local_dt(today, 12, 30), source="fridge")
        session.add(FridgeShift(fridge_code=FRIDGE, community_code="zjy", starts_at=local_dt(today, 12),
                                ends_at=local_dt(today, 12, 30), task_id=task.id))
        await session.commit()
    await p.feed(p.updates.press(HELPER, f"fr:recv:{FRIDGE}"))
    assert "只有今天值班" in p.telegram.sent(HELPER)[-1].text   # not on shift before claiming
    await p.feed(p.updates.press(HELPER, f"tk:claim:{task.id}", chat_id=VOLUNTEER_CHAT_ZJY))
    await p.feed(p.updates.press(HELPER, "menu:fridge"))
    menu = buttons(p.telegram.sent(HELPER)[-1])
    assert f"fr:recv:{FRIDGE}" in menu and f"fr:check:{FRIDGE}" in menu

    await donate(p, best_before="d3")
    [item] = await items(db)
    await p.drain()
    # Booked for today → the volunteer holding today's shift gets the card; otherwise staff (asserted elsewhere).
    if rules.local(item.slot_start, TZ).date() == today:
        assert item.code in texts(p, HELPER)
    await p.feed(p.updates.press(HELPER, f"fr:recv:{FRIDGE}"))
    await p.feed(p.updates.message(HELPER, "ZZZZZ"))
    assert "没有找到" in p.telegram.sent(HELPER)[-1].text
    await p.feed(p.updates.message(HELPER, f" {item.code.lower()} "))
    card = p.telegram.sent(HELPER)[-1]
    assert buttons(card) == [f"fi:ok:{item.id}", f"fi:no:{item.id}"]
    await p.feed(p.updates.press(HELPER, f"fi:ok:{item.id}"))
    assert "已收下" in p.telegram.sent(HELPER)[-1].text

    # Something past its date, flagged by the sweep, is removed by the checklist.
    async with db.sessions() as session:
        session.add(FridgeItem(code="OLD22", fridge_code=FRIDGE, community_code="zjy", name="旧面包", quantity=1,
                               remaining=1, kind="bread", best_before=today - timedelta(days=1), status="to_remove",
                               slot_start=utcnow(), slot_end=utcnow()))
        await session.commit()
    await p.feed(p.updates.press(HELPER, f"fr:check:{FRIDGE}"))
    await p.feed(p.updates.message(HELPER, "很冷"))
    assert "温度数字" in p.telegram.sent(HELPER)[-1].text
    await p.feed(p.updates.message(HELPER, "12.5"))
    assert "不在安全范围" in texts(p, HELPER)
    assert buttons(p.telegram.sent(HELPER)[-1]) == ["fc:clean:yes", "fc:clean:no"]
    await p.feed(p.updates.press(HELPER, "fc:expired:yes"))        # out of order
    assert "失效" in p.telegram.sent(HELPER)[-1].text
    await p.feed(p.updates.press(HELPER, "fc:clean:yes"))
    await p.feed(p.updates.press(RESIDENT, "fc:expired:yes"))      # someone else
    assert "失效" in p.telegram.sent(RESIDENT)[-1].text
    await p.feed(p.updates.press(HELPER, "fc:expired:yes"))
    assert "已记录" in p.telegram.sent(HELPER)[-1].text and "1 样" in p.telegram.sent(HELPER)[-1].text
    await p.feed(p.updates.press(HELPER, "fc:expired:yes"))
    await p.drain()
    staff = [m.text for m in p.telegram.sent(STAFF_CHAT_ZJY) if "温度异常" in m.text]
    assert len(staff) == 1 and "12.5" in staff[0]
    async with db.sessions() as session:
        shift = (await session.scalars(select(FridgeShift))).one()
        old = await session.scalar(select(FridgeItem).where(FridgeItem.code == "OLD22"))
    assert (shift.temperature, shift.cleaned, shift.expired_removed, shift.checked_by) == (12.5, True, True, volunteer)
    assert old.status == "removed"
    await p.feed(p.updates.press(HELPER, f"fr:check:{FRIDGE}"))
    assert "记录过了" in p.telegram.sent(HELPER)[-1].text


async def test_intake_label_fridge_opens_the_fridge(people, db):
    p = people
    request = await report(p, db, "我想往爱心冰箱里放点面包")
    assert (request.category, request.status) == ("fridge", "closed")
    reply = p.telegram.sent(RESIDENT)[-1]
    assert buttons(reply) == ["menu:fridge"] and "即将开放" not in reply.text
    await p.feed(p.updates.press(RESIDENT, "menu:fridge"))
    assert f"fr:stock:{FRIDGE}" in buttons(p.telegram.sent(RESIDENT)[-1])


async def test_alerts_batched_quiet_and_stoppable(people, db, config):
    p = people
    await onboard(p, COURIER)
    await p.feed(p.updates.press(COURIER, f"fr:sub:{FRIDGE}"))
    await p.feed(p.updates.press(COURIER, f"fr:sub:{FRIDGE}"))      # a double tap subscribes once
    assert "已订阅" in p.telegram.sent(COURIER)[-1].text
    donor = await user_id(db, RESIDENT)
    day = date(2026, 12, 1)
    received = local_dt(day, 21, 40)  # after the fridge closes, inside nobody's quiet hours yet
    async with db.sessions() as session:
        for n, name in enumerate(("苹果", "牛奶", "面包")):
            session.add(FridgeItem(code=f"AAA{n}X", fridge_code=FRIDGE, community_code="zjy", donor_id=donor,
                                   name=name, quantity=2, remaining=2, kind="produce", best_before=day + timedelta(days=3),
                                   status="in_fridge", slot_start=received, slot_end=received, received_at=received))
        await session.commit()
    n = len(p.telegram.sent(COURIER))
    assert await jobs.fridge_alerts(p.db, p.broker, config, now=received + timedelta(minutes=5)) == 0   # batching
    assert await jobs.fridge_alerts(p.db, p.broker, config, now=local_dt(day, 22, 30)) == 0             # quiet hours
    assert await jobs.fridge_alerts(p.db, p.broker, config, now=local_dt(day + timedelta(days=1), 7, 5)) == 1
    assert await jobs.fridge_alerts(p.db, p.broker, config, now=local_dt(day + timedelta(days=1), 7, 10)) == 0
    await p.drain()
    alerts = p.telegram.sent(COURIER)[n:]
    assert len(alerts) == 1 and all(x in alerts[0].text for x in ("苹果", "牛奶", "面包"))
    assert f"fr:unsub:{FRIDGE}" in buttons(alerts[0])
    await p.feed(p.updates.press(COURIER, f"fr:unsub:{FRIDGE}"))
    assert "已取消" in p.telegram.sent(COURIER)[-1].text
    await p.feed(p.updates.press(COURIER, f"fr:unsub:{FRIDGE}"))
    assert "没有订阅" in p.telegram.sent(COURIER)[-1].text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FridgeSubscription)) == 0


# --- scheduler rules with a controllable clock (no bot needed) --------------------------------------

async def _user(db, telegram_id: int, community: str = "zjy") -> int:
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", str(telegram_id))
        give_consent(user)
        user.community_code = community
        await session.commit()
        return user.id


def _item(code: str, best_before: date, status: str = "in_fridge", **extra) -> FridgeItem:
    at = extra.pop("at", datetime(2026, 12, 1, tzinfo=UTC))
    values = dict(code=code, fridge_code=FRIDGE, community_code="zjy", name=f"食物{code}", quantity=1, remaining=1,
                  kind="cooked", best_before=best_before, status=status, slot_start=at, slot_end=at, received_at=at)
    values.update(extra)
    return FridgeItem(**values)


async def test_shift_planning_is_idempotent_even_concurrently(db, config):
    await approved_volunteer(db, HELPER, "zjy", skills=("fridge_duty",))
    now = local_dt(date(2026, 12, 1), 12)  # the morning shift is over
    async def plan() -> list[int]:
        async with db.sessions() as session:
            ids = await fridge_sweeps.plan_shifts(session, config, now)
            await session.commit()
            return ids

    first, second = await asyncio.gather(plan(), plan())
    async with db.sessions() as session:
        shifts = list(await session.scalars(select(FridgeShift).order_by(FridgeShift.starts_at)))
        tasks = list(await session.scalars(select(Task).order_by(Task.window_start)))
        assert await fridge_sweeps.plan_shifts(session, config, now) == []
        assert await fridge_sweeps.plan_shifts(session, config, now + timedelta(hours=1)) == []
        offers = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.key.like("%:offer:%")))
    assert len(shifts) == len(tasks) == 13 and len(first) + len(second) == offers == 26  # group + the volunteer
    assert all(t.skill == "fridge_duty" and t.source == "fridge" and t.status == "open" for t in tasks)
    assert [s.task_id for s in shifts] == [t.id for t in tasks]
    assert rules.local(shifts[0].starts_at, TZ).hour == 20
    # A day later, one more day is planned.
    async with db.sessions() as session:
        assert len(await fridge_sweeps.plan_shifts(session, config, now + timedelta(days=1))) == 4
        await session.commit()
        # Unclaimed close to its start: re-offered wider, then staff are told (the volunteer-task sweep).
        shift = (await session.scalars(select(FridgeShift).order_by(FridgeShift.starts_at))).first()
        await task_sweep(session, config, as_utc(shift.starts_at) + timedelta(minutes=1))
        await session.commit()
        told = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.key == f"g:task_no_taker:{shift.task_id}:1"))
    assert told == 1


async def test_expiry_sweep(db, config):
    today = date(2026, 12, 1)
    subscriber = await _user(db, COURIER)
    donor = await _user(db, RESIDENT)
    async with db.sessions() as session:
        session.add_all([_item("PAST1", today - timedelta(days=1)), _item("PAST2", today - timedelta(days=3)),
                         _item("TODAY", today), _item("LATER", today + timedelta(days=2)),
                         _item("PLEDG", today + timedelta(days=2), status="pledged", donor_id=donor,
                               slot_end=local_dt(today, 8), received_at=None)])
        session.add(FridgeSubscription(user_id=subscriber, fridge_code=FRIDGE))
        await session.commit()

    async def sweep(at: datetime) -> list[int]:
        async with db.sessions() as session:
            ids = await fridge_sweeps.expiry_sweep(session, config, at)
            await session.commit()
            return ids

    assert len(await sweep(local_dt(today, 6))) == 1   # 06:00: past items flagged (to staff); quiet hours hold the rest
    async with db.sessions() as session:
        status = dict((await session.execute(select(FridgeItem.code, FridgeItem.status))).all())
        flagged = (await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("g:fridge_remove:%")))).one()
    assert status == {"PAST1": "to_remove", "PAST2": "to_remove", "TODAY": "in_fridge", "LATER": "in_fridge",
                      "PLEDG": "pledged"}
    assert "PAST1" in flagged.text and "PAST2" in flagged.text and flagged.chat_id == str(STAFF_CHAT_ZJY)
    at_ten = await sweep(local_dt(today, 10, 30))     # expiring today announced; the pledge lapsed
    assert len(at_ten) == 2
    assert await sweep(local_dt(today, 10, 35)) == []  # nothing twice
    async with db.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(at_ten))))
        status = dict((await session.execute(select(FridgeItem.code, FridgeItem.status))).all())
    assert {r.chat_id for r in rows} == {str(COURIER), str(RESIDENT)} and status["PLEDG"] == "lapsed"
    assert any("今天到期" in r.text and "食物TODAY" in r.text and "LATER" not in r.text for r in rows)
    # The next day, today's item is past its date too.
    assert len(await sweep(local_dt(today + timedelta(days=1), 9))) == 1


async def test_shift_holder_is_told_what_to_remove(db, config):
    today = date(2026, 12, 1)
    helper = await approved_volunteer(db, HELPER, "zjy", skills=("fridge_duty",))
    async with db.sessions() as session:
        await fridge_sweeps.plan_shifts(session, config, local_dt(today, 7))
        shift = (await session.scalars(select(FridgeShift).order_by(FridgeShift.starts_at))).first()
        from shared.repo import tasks as task_repo
        assert await task_repo.claim(session, shift.task_id, helper)
        session.add(_item("PAST1", today - timedelta(days=1)))
        await session.commit()
        ids = await fridge_sweeps.expiry_sweep(session, config, local_dt(today, 9))
        await session.commit()
        [row] = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
    assert row.chat_id == str(HELPER) and "PAST1" in row.text and f"fr:manage:{FRIDGE}" in str(row.options)


async def test_capacity_and_fair_share(db, config):
    donor = await _user(db, RESIDENT)
    now = local_dt(date(2026, 12, 1), 9)
    _community, fridge = config.fridge(FRIDGE)
    async with db.sessions() as session:
        session.add(_item("BIG01", date(2026, 12, 5), quantity=57, remaining=57))
        await session.commit()
        user = await session.get(User, donor)
        assert await ops.offer_slots(session, config, fridge, quantity=4, best_before=date(2026, 12, 5), now=now) == []
        slots = await ops.offer_slots(session, config, fridge, quantity=3, best_before=date(2026, 12, 5), now=now)
        assert slots
        booked = await ops.pledge(session, config, user, fridge_code=FRIDGE, name="饺子", quantity=3, kind="cooked",
                                  best_before=date(2026, 12, 5), slot_start=slots[0].start, now=now)
        assert booked.item is not None
        # Full now (57 + 3 pledged): the same slot cannot be booked again, whatever the button says.
        again = await ops.pledge(session, config, user, fridge_code=FRIDGE, name="饺子", quantity=1, kind="cooked",
                                 best_before=date(2026, 12, 5), slot_start=slots[0].start, now=now)
        assert again.item is None
        await session.commit()

    strict = parse_communities((REPO_ROOT / "config" / "communities.yaml").read_text(encoding="utf-8")
                               .replace("fair_share: null", "fair_share: 1"))
    taker = await _user(db, TAKER)
    async with db.sessions() as session:
        session.add_all([_item("A0001", date(2026, 12, 5), quantity=2, remaining=2),
                         _item("A0002", date(2026, 12, 5), quantity=2, remaining=2)])
        await session.commit()
        a, b = list(await session.scalars(select(FridgeItem).where(FridgeItem.code.in_(["A0001", "A0002"]))
                                          .order_by(FridgeItem.code)))
        user = await session.get(User, taker)
        assert await ops.take(session, strict, a.id, user, now) == "taken"
        assert await ops.take(session, strict, b.id, user, now) == "fair_share"
        assert await ops.take(session, strict, b.id, user, now + timedelta(days=1)) == "taken"   # a new local day
        assert await ops.take(session, config, b.id, user, now + timedelta(days=1)) == "again"
        await session.commit()


async def test_daily_summary_once_after_its_time(db, config):
    today = date(2026, 12, 1)
    async with db.sessions() as session:
        await fridge_sweeps.plan_shifts(session, config, local_dt(today, 7))
        session.add_all([_item("RECV1", today + timedelta(days=2), at=local_dt(today, 10)),
                         _item("REFU1", today + timedelta(days=2), status="refused", closed_at=local_dt(today, 11),
                               received_at=None),
                         _item("GONE1", today, status="removed", closed_at=local_dt(today, 20), at=local_dt(today, 9))])
        await session.commit()
        assert await fridge_sweeps.summary_sweep(session, config, local_dt(today, 21, 0)) == []
        [sent] = await fridge_sweeps.summary_sweep(session, config, local_dt(today, 21, 35))
        await session.commit()
        assert await fridge_sweeps.summary_sweep(session, config, local_dt(today, 22, 0)) == []
        row = await session.get(OutboxMessage, sent)
    assert row.chat_id == str(STAFF_CHAT_ZJY)
    assert "收到捐赠：2 样" in row.text and "拒收：1 样" in row.text and "取出：1 样" in row.text
    assert "0/2 个班次" in row.text
