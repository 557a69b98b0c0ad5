"""The shared fridge (爱心共享冰箱): donations, receipt, stock, takes, subscriptions. Each rule once, here.

Operations return outbox ids to deliver after the caller commits (see shared.flows.deliver).
Every state change is a conditional UPDATE (`WHERE status IN (…) RETURNING`), so a repeated
button press or a redelivered message changes nothing the second time.
Time-driven rules (shifts, expiry, alerts, summary) are in shared.fridge_sweeps.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import as_utc
from shared.config import CommunitiesConfig, Community, Fridge
from shared.db.models import FridgeItem, FridgeShift, FridgeSubscription, FridgeTake, Task, User
from shared.db.upsert import insert_for
from shared.domain import fridge as rules
from shared.domain.fridge import ItemStatus, Slot
from shared.domain.permissions import is_staff_of
from shared.domain.tasks import TaskStatus
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import format_due
from shared.i18n import normalize_locale, t

OutboxIds = list[int]
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at the fridge
CODE_LENGTH = 5
SLOT_DAYS = 3       # drop-off slots are offered for today and the next two days
SLOTS_OFFERED = 6
# A shift task counts as covered once someone holds it.
COVERED = (TaskStatus.CLAIMED, TaskStatus.STARTED, TaskStatus.DONE, TaskStatus.CONFIRMED)


def _ids(*ids: int | None) -> OutboxIds:
    return [i for i in ids if i]


def tz(config: CommunitiesConfig) -> str:
    return config.defaults.timezone


def localized(names: dict[str, str], locale: str) -> str:
    return names.get(normalize_locale(locale)) or names["zh"]


def find(config: CommunitiesConfig, code: str) -> tuple[Community, Fridge] | None:
    return config.fridge(code)


def fridges_for(config: CommunitiesConfig, community_code: str | None) -> list[tuple[Community, Fridge]]:
    """The person's own community's fridges first; anyone may use any fridge."""
    own = [(c, f) for c in config.communities if c.code == community_code for f in c.fridges]
    others = [(c, f) for c in config.communities if c.code != community_code for f in c.fridges]
    return own + others


def kind_name(locale: str, kind: str) -> str:
    return t(locale, f"fridge.kind_{kind}")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_text(locale: str, day: date) -> str:
    return t(locale, "fridge.day", month=day.month, month_name=_MONTHS[day.month - 1], day=day.day)


def slot_text(config: CommunitiesConfig, locale: str, start: datetime, end: datetime) -> str:
    return f"{format_due(config, locale, start)}–{rules.local(end, tz(config)):%H:%M}"


def item_line(locale: str, item: FridgeItem) -> str:
    return t(locale, "fridge.item_line", name=item.name, count=item.remaining or item.quantity,
             kind=kind_name(locale, item.kind), best_before=day_text(locale, item.best_before))


# --- who may do what ---------------------------------------------------------------------------

async def shift_holders(session: AsyncSession, config: CommunitiesConfig, fridge_code: str, day: date) -> list[User]:
    """Volunteers holding a shift of this fridge on this local day."""
    start = rules.at_local(day, datetime.min.time(), tz(config))
    holders = (select(Task.claimer_id).join(FridgeShift, FridgeShift.task_id == Task.id)
               .where(FridgeShift.fridge_code == fridge_code, FridgeShift.starts_at >= start,
                      FridgeShift.starts_at < start + timedelta(days=1), Task.status.in_([str(s) for s in COVERED])))
    return list(await session.scalars(select(User).where(User.id.in_(holders)).order_by(User.id)))


async def todays_shift(session: AsyncSession, config: CommunitiesConfig, fridge_code: str, user: User,
                       now: datetime) -> FridgeShift | None:
    """The shift of this fridge this person holds today (the one nearest to now)."""
    start = rules.at_local(rules.local_today(now, tz(config)), datetime.min.time(), tz(config))
    shifts = list(await session.scalars(
        select(FridgeShift).join(Task, FridgeShift.task_id == Task.id)
        .where(FridgeShift.fridge_code == fridge_code, FridgeShift.starts_at >= start,
               FridgeShift.starts_at < start + timedelta(days=1), Task.claimer_id == user.id,
               Task.status.in_([str(s) for s in COVERED]))
        .order_by(FridgeShift.starts_at)))
    if not shifts:
        return None
    return min(shifts, key=lambda s: abs((as_utc(s.starts_at) - as_utc(now)).total_seconds()))


def is_staff_for_fridge(config: CommunitiesConfig, user: User, fridge_code: str) -> bool:
    found = find(config, fridge_code)
    return found is not None and is_staff_of(user.roles, user.community_code, found[0].code)


async def may_handle(session: AsyncSession, config: CommunitiesConfig, user: User, fridge_code: str,
                     now: datetime) -> bool:
    """Receive, refuse and remove items: the volunteer on shift today, or the community's staff."""
    if is_staff_for_fridge(config, user, fridge_code):
        return True
    return await todays_shift(session, config, fridge_code, user, now) is not None


# --- donations ---------------------------------------------------------------------------------

async def occupied(session: AsyncSession, fridge_code: str) -> int:
    """Items in the fridge now plus items booked to arrive."""
    in_fridge = await session.scalar(select(func.coalesce(func.sum(FridgeItem.remaining), 0)).where(
        FridgeItem.fridge_code == fridge_code, FridgeItem.status.in_([ItemStatus.IN_FRIDGE, ItemStatus.TO_REMOVE])))
    pledged = await session.scalar(select(func.coalesce(func.sum(FridgeItem.quantity), 0)).where(
        FridgeItem.fridge_code == fridge_code, FridgeItem.status == ItemStatus.PLEDGED))
    return int(in_fridge or 0) + int(pledged or 0)


async def booked_by_slot(session: AsyncSession, fridge_code: str, since: datetime) -> dict[datetime, int]:
    stmt = (select(FridgeItem.slot_start, func.sum(FridgeItem.quantity))
            .where(FridgeItem.fridge_code == fridge_code, FridgeItem.slot_start >= since - timedelta(days=1),
                   FridgeItem.status.notin_([ItemStatus.CANCELLED, ItemStatus.LAPSED, ItemStatus.REFUSED]))
            .group_by(FridgeItem.slot_start))
    return {as_utc(start): int(total) for start, total in await session.execute(stmt)}


async def offer_slots(session: AsyncSession, config: CommunitiesConfig, fridge: Fridge, *, quantity: int,
                      best_before: date, now: datetime) -> list[Slot]:
    """Drop-off slots in open hours, up to the best-before day, only where the fridge and the slot have room."""
    candidates = rules.candidate_slots(fridge.open_hours, now, tz(config), slot_minutes=fridge.slot_minutes,
                                       days=SLOT_DAYS, last_day=best_before)
    return rules.offerable_slots(candidates, quantity=quantity, capacity=fridge.capacity_items,
                                 occupied=await occupied(session, fridge.code),
                                 booked=await booked_by_slot(session, fridge.code, now),
                                 slot_limit=fridge.slot_items, limit=SLOTS_OFFERED)


async def _new_code(session: AsyncSession) -> str:
    for _ in range(20):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if await session.scalar(select(FridgeItem.id).where(FridgeItem.code == code)) is None:
            return code
    raise RuntimeError("could not find a free item code")  # 32**5 codes: only if the table is absurdly full


def item_card(config: CommunitiesConfig, item: FridgeItem, locale: str) -> Reply:
    """What the shift volunteer (or staff) sees for a booked donation, with receive/refuse."""
    text = t(locale, "fridge.pledge_card", code=item.code, name=item.name, count=item.quantity,
             kind=kind_name(locale, item.kind), best_before=day_text(locale, item.best_before),
             slot=slot_text(config, locale, item.slot_start, item.slot_end))
    buttons = rows(Button(t(locale, "fridge.receive"), actions.make("fi", "ok", item.id)),
                   Button(t(locale, "fridge.refuse"), actions.make("fi", "no", item.id)))
    return Reply(text, buttons if item.status == ItemStatus.PLEDGED else ())


async def _to_handlers(session: AsyncSession, config: CommunitiesConfig, fridge_code: str, day: date, key: str,
                       make: Callable[[str], Reply]) -> OutboxIds:
    """Tell the volunteers on shift that day; nobody on shift → the community's staff group."""
    holders = await shift_holders(session, config, fridge_code, day)
    ids: list[int | None] = []
    for user in holders:
        ids.append(await notify.to_user(session, user, key, make(user.locale or "zh")))
    if not holders:
        community, _fridge = find(config, fridge_code)  # type: ignore[misc]
        reply = make(notify.STAFF_LOCALE)
        ids += await notify.to_group(session, config, community.code, "staff", f"g:{key}", reply.text,
                                     options=reply.options_json())
    return _ids(*ids)


@dataclass
class PledgeResult:
    item: FridgeItem | None
    outbox_ids: OutboxIds


async def pledge(session: AsyncSession, config: CommunitiesConfig, user: User, *, fridge_code: str, name: str,
                 quantity: int, kind: str, best_before: date, slot_start: datetime, now: datetime) -> PledgeResult:
    """Book a donation into a slot — only a slot that is still offerable (capacity is checked again)."""
    found = find(config, fridge_code)
    if found is None or kind not in rules.KINDS or not 1 <= quantity <= rules.MAX_QUANTITY:
        return PledgeResult(None, [])
    if rules.date_problem(best_before, rules.local_today(now, tz(config))) is not None:
        return PledgeResult(None, [])
    community, fridge = found
    slots = await offer_slots(session, config, fridge, quantity=quantity, best_before=best_before, now=now)
    slot = next((s for s in slots if s.start == slot_start), None)
    if slot is None:
        return PledgeResult(None, [])
    item = FridgeItem(code=await _new_code(session), fridge_code=fridge.code, community_code=community.code,
                      donor_id=user.id, name=name[:100], quantity=quantity, remaining=quantity, kind=kind,
                      best_before=best_before, status=ItemStatus.PLEDGED, slot_start=slot.start, slot_end=slot.end)
    session.add(item)
    await session.flush()
    day = rules.local(slot.start, tz(config)).date()
    ids = await _to_handlers(session, config, fridge.code, day, f"fridge_pledge:{item.id}",
                             lambda locale: item_card(config, item, locale))
    return PledgeResult(item, ids)


async def _move(session: AsyncSession, item_id: int, target: str, *, only_from: set[str] | None = None,
                **values: object) -> FridgeItem | None:
    sources = only_from if only_from is not None else rules.sources_of(target)
    stmt = (update(FridgeItem).where(FridgeItem.id == item_id, FridgeItem.status.in_(list(sources)))
            .values(status=target, **values).returning(FridgeItem)
            .execution_options(synchronize_session=False, populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def _donor(session: AsyncSession, item: FridgeItem) -> User | None:
    return await session.get(User, item.donor_id) if item.donor_id else None


async def receive(session: AsyncSession, config: CommunitiesConfig, item_id: int, handler: User,
                  now: datetime) -> OutboxIds | None:
    """The shift volunteer puts a booked donation in the fridge; the donor is thanked. Once."""
    item = await _move(session, item_id, ItemStatus.IN_FRIDGE, only_from={ItemStatus.PLEDGED}, handled_by=handler.id,
                       received_at=now)
    if item is None:
        return None
    donor = await _donor(session, item)
    locale = (donor.locale if donor else None) or "zh"
    return _ids(await notify.to_user(session, donor, f"fridge_thanks:{item.id}",
                                     Reply(t(locale, "fridge.donor_thanks", name=item.name, code=item.code))))


async def refuse(session: AsyncSession, config: CommunitiesConfig, item_id: int, handler: User, reason: str,
                 now: datetime) -> OutboxIds | None:
    if reason not in rules.REFUSE_REASONS:
        return None
    item = await _move(session, item_id, ItemStatus.REFUSED, only_from={ItemStatus.PLEDGED}, handled_by=handler.id,
                       refuse_reason=reason, closed_at=now)
    if item is None:
        return None
    donor = await _donor(session, item)
    locale = (donor.locale if donor else None) or "zh"
    return _ids(await notify.to_user(session, donor, f"fridge_refused:{item.id}",
                                     Reply(t(locale, "fridge.donor_refused", name=item.name, code=item.code,
                                             reason=t(locale, f"fridge.reason_{reason}")))))


async def cancel(session: AsyncSession, item_id: int, donor: User, now: datetime) -> FridgeItem | None:
    stmt = (update(FridgeItem).where(FridgeItem.id == item_id, FridgeItem.donor_id == donor.id,
                                     FridgeItem.status == ItemStatus.PLEDGED)
            .values(status=ItemStatus.CANCELLED, closed_at=now).returning(FridgeItem)
            .execution_options(synchronize_session=False, populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


# --- taking and removing -----------------------------------------------------------------------

async def stock(session: AsyncSession, fridge_code: str, *, statuses: tuple[str, ...] = (ItemStatus.IN_FRIDGE,)) -> list[FridgeItem]:
    return list(await session.scalars(select(FridgeItem).where(FridgeItem.fridge_code == fridge_code,
                                                               FridgeItem.status.in_(list(statuses)))
                                      .order_by(FridgeItem.best_before, FridgeItem.id)))


async def takes_today(session: AsyncSession, user: User, fridge_code: str, today: date) -> int:
    return int(await session.scalar(select(func.count()).select_from(FridgeTake).where(
        FridgeTake.user_id == user.id, FridgeTake.fridge_code == fridge_code, FridgeTake.day == today)) or 0)


async def take(session: AsyncSession, config: CommunitiesConfig, item_id: int, user: User, now: datetime) -> str:
    """Take one portion through the bot. Returns taken | again | gone | fair_share.

    One portion per person, item and local day: a double tap takes one, and the fridge's
    fair share (when set) caps the portions per person per day.
    """
    item = await session.get(FridgeItem, item_id)
    found = find(config, item.fridge_code) if item is not None else None
    if item is None or found is None or item.status != ItemStatus.IN_FRIDGE:
        return "gone"
    fridge = found[1]
    today = rules.local_today(now, tz(config))
    already = await session.scalar(select(FridgeTake.item_id).where(FridgeTake.item_id == item.id,
                                                                    FridgeTake.user_id == user.id, FridgeTake.day == today))
    if already is not None:
        return "again"
    if fridge.fair_share is not None and await takes_today(session, user, fridge.code, today) >= fridge.fair_share:
        return "fair_share"
    taken = await session.execute(
        update(FridgeItem).where(FridgeItem.id == item.id, FridgeItem.status == ItemStatus.IN_FRIDGE,
                                 FridgeItem.remaining > 0)
        .values(remaining=FridgeItem.remaining - 1).returning(FridgeItem.remaining))
    left = taken.scalar_one_or_none()
    if left is None:
        return "gone"
    inserted = await session.execute(insert_for(session, FridgeTake)
                                     .values(item_id=item.id, user_id=user.id, day=today, fridge_code=fridge.code)
                                     .on_conflict_do_nothing().returning(FridgeTake.item_id))
    if inserted.scalar_one_or_none() is None:
        # A concurrent press of the same person won the insert: give the portion back.
        await session.execute(update(FridgeItem).where(FridgeItem.id == item.id)
                              .values(remaining=FridgeItem.remaining + 1))
        return "again"
    if left == 0:
        await _move(session, item.id, ItemStatus.TAKEN, only_from={ItemStatus.IN_FRIDGE}, closed_at=now)
    return "taken"


async def mark(session: AsyncSession, item_id: int, handler: User, target: str, now: datetime) -> FridgeItem | None:
    """The shift volunteer or staff marks an item all taken or removed."""
    if target not in (ItemStatus.TAKEN, ItemStatus.REMOVED):
        return None
    return await _move(session, item_id, target, only_from={ItemStatus.IN_FRIDGE, ItemStatus.TO_REMOVE},
                       handled_by=handler.id, closed_at=now, remaining=0)


async def remove_flagged(session: AsyncSession, fridge_code: str, handler: User, now: datetime) -> int:
    """The checklist's "expired items removed": every item flagged for removal is now removed."""
    result = await session.execute(update(FridgeItem).where(FridgeItem.fridge_code == fridge_code,
                                                            FridgeItem.status == ItemStatus.TO_REMOVE)
                                   .values(status=ItemStatus.REMOVED, handled_by=handler.id, closed_at=now, remaining=0))
    return int(result.rowcount or 0)


# --- subscriptions -----------------------------------------------------------------------------

async def is_subscribed(session: AsyncSession, user: User, fridge_code: str) -> bool:
    return await session.get(FridgeSubscription, (user.id, fridge_code)) is not None


async def subscribe(session: AsyncSession, user: User, fridge_code: str) -> bool:
    result = await session.execute(insert_for(session, FridgeSubscription)
                                   .values(user_id=user.id, fridge_code=fridge_code)
                                   .on_conflict_do_nothing().returning(FridgeSubscription.user_id))
    return result.scalar_one_or_none() is not None


async def unsubscribe(session: AsyncSession, user: User, fridge_code: str) -> bool:
    from sqlalchemy import delete

    result = await session.execute(delete(FridgeSubscription).where(FridgeSubscription.user_id == user.id,
                                                                    FridgeSubscription.fridge_code == fridge_code))
    return bool(result.rowcount)


async def subscribers(session: AsyncSession, fridge_code: str) -> list[User]:
    return list(await session.scalars(select(User).join(FridgeSubscription, FridgeSubscription.user_id == User.id)
                                      .where(FridgeSubscription.fridge_code == fridge_code)
                                      .order_by(User.id)))
