"""Time-driven rules of the shared fridge, run by the scheduler with an explicit `now`.

- plan_shifts: the next 7 days of check/clean/restock shifts as fridge_duty volunteer tasks;
  the unique (fridge, start) row makes a second run (or a concurrent one) create nothing.
- expiry_sweep: pledges never brought lapse; items past best-before become "to remove" and the
  volunteer on shift (else staff) is told; items expiring today are announced once to subscribers.
- alert_sweep: "new food" alerts, one batched message per subscriber, never in quiet hours.
- summary_sweep: the day's figures to the community's staff group, once a day.
Unclaimed shifts close to their start reach staff through shared.sweeps.task_sweep like any task.
Every step claims its rows with a conditional UPDATE … RETURNING, so two workers never repeat it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import fridge as ops
from shared import notify, volunteering
from shared.clock import as_utc
from shared.config import CommunitiesConfig, Community, Fridge
from shared.db.models import FridgeItem, FridgeShift, FridgeTake, OutboxMessage, Task, User, Volunteer
from shared.db.upsert import insert_for
from shared.domain import fridge as rules
from shared.domain.fridge import ItemStatus
from shared.domain.tasks import TaskStatus, available
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

PLAN_DAYS = 7
SHIFT_SKILL = "fridge_duty"
LIST_LINES = 20  # a message lists at most this many items, then "and N more"


def _fridges(config: CommunitiesConfig) -> list[tuple[Community, Fridge]]:
    return [(c, f) for c in config.communities for f in c.fridges]


def _lines(locale: str, items: list, line) -> str:  # type: ignore[no-untyped-def]
    shown = [line(item) for item in items[:LIST_LINES]]
    if len(items) > LIST_LINES:
        shown.append(t(locale, "fridge.and_more", count=len(items) - LIST_LINES))
    return "\n".join(shown)


# --- shifts ------------------------------------------------------------------------------------

async def plan_shifts(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """Plan every fridge's shifts for the next 7 local days as volunteer tasks, offered to fridge_duty volunteers."""
    wanted = []
    for community, fridge in _fridges(config):
        for start, end in rules.shift_occurrences(fridge.shifts, fridge.open_hours, now, ops.tz(config), PLAN_DAYS):
            wanted.append({"fridge_code": fridge.code, "community_code": community.code, "starts_at": start,
                           "ends_at": end})
    if not wanted:
        return []
    # One statement decides which shifts are new; a concurrent planner gets the others' rows back as nothing.
    created = list(await session.execute(
        insert_for(session, FridgeShift).values(wanted)
        .on_conflict_do_nothing(index_elements=["fridge_code", "starts_at"])
        .returning(FridgeShift.id, FridgeShift.fridge_code, FridgeShift.community_code, FridgeShift.starts_at,
                   FridgeShift.ends_at)))
    if not created:
        return []
    task_rows = []
    for _shift_id, fridge_code, community_code, starts_at, ends_at in created:
        _community, fridge = ops.find(config, fridge_code)  # type: ignore[misc]
        start, end = as_utc(starts_at), as_utc(ends_at)
        task_rows.append({
            "community_code": community_code, "source": "fridge", "skill": SHIFT_SKILL,
            "title": t("zh", "fridge.shift_title", fridge=fridge.name["zh"],
                       when=rules.local(start, ops.tz(config)).strftime("%m-%d %H:%M")),
            "details": t("zh", "fridge.shift_details", low=fridge.temperature_min, high=fridge.temperature_max),
            "place": fridge.place["zh"], "window_start": start, "window_end": end,
            "est_hours": round(max((end - start).total_seconds() / 3600, 0.25), 2), "status": TaskStatus.OPEN,
            "offer_round": 1, "reminder_stage": 0,
        })
    task_ids = list(await session.scalars(insert(Task).returning(Task.id, sort_by_parameter_order=True), task_rows))
    await session.execute(update(FridgeShift), [{"id": shift_id, "task_id": task_id}
                                                for (shift_id, *_rest), task_id in zip(created, task_ids, strict=True)])
    tasks = list(await session.scalars(select(Task).where(Task.id.in_(task_ids)).order_by(Task.id)))
    return await _offer_shifts(session, config, tasks)


async def _offer_shifts(session: AsyncSession, config: CommunitiesConfig, tasks: list[Task]) -> list[int]:
    """The same offers volunteering.offer makes (same keys and batch), written in one INSERT."""
    by_community: dict[str, list[tuple[Volunteer, User]]] = {}
    rows_out = []
    for task in tasks:
        community = config.community(task.community_code)
        if task.community_code not in by_community:
            by_community[task.community_code] = list((await session.execute(
                select(Volunteer, User).join(User, User.id == Volunteer.user_id)
                .where(Volunteer.community_code == task.community_code, Volunteer.status == "approved"))).all())
        local = rules.local(task.window_start, ops.tz(config))
        batch = f"offer:{task.id}"
        card = volunteering.offer_card(config, task, "zh")
        rows_out += notify.group_rows(config, community.code, "volunteer", f"g:offer:{task.id}:1", text=card.text,
                                      options=card.options_json(), batch=batch)
        for volunteer, user in by_community[task.community_code]:
            if SHIFT_SKILL in (volunteer.skills or []) and available(volunteer.days or [], volunteer.parts or [],
                                                                      local.weekday(), local.hour):
                card = volunteering.offer_card(config, task, user.locale or "zh")
                rows_out.append({"key": f"u{user.id}:offer:{task.id}:1", "chat_id": user.external_id,
                                 "platform": user.platform, "text": card.text, "options": card.options_json(),
                                 "batch": batch})
    if not rows_out:
        return []
    for row in rows_out:
        row.update(status="pending", attempts=0)
    result = await session.scalars(insert_for(session, OutboxMessage).values(rows_out)
                                   .on_conflict_do_nothing(index_elements=["key"]).returning(OutboxMessage.id))
    return list(result)


# --- expiry ------------------------------------------------------------------------------------

async def expiry_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    today = rules.local_today(now, ops.tz(config))
    outbox: list[int | None] = []
    outbox += await _lapse_pledges(session, now)

    # Past best-before: to remove. One UPDATE for every fridge; the shift volunteer gets one list.
    flagged = (await session.execute(
        update(FridgeItem).where(FridgeItem.status == ItemStatus.IN_FRIDGE, FridgeItem.best_before < today)
        .values(status=ItemStatus.TO_REMOVE, flagged_at=now)
        .returning(FridgeItem.id, FridgeItem.fridge_code, FridgeItem.name, FridgeItem.code, FridgeItem.remaining,
                   FridgeItem.best_before))).all()
    by_fridge: dict[str, list] = defaultdict(list)
    for row in flagged:
        by_fridge[row.fridge_code].append(row)
    for fridge_code, items in by_fridge.items():
        if ops.find(config, fridge_code) is None:
            continue
        items.sort(key=lambda r: r.id)

        def make(locale: str, items=items, fridge_code=fridge_code) -> Reply:
            text = t(locale, "fridge.to_remove", count=len(items), lines=_lines(
                locale, items, lambda r: t(locale, "fridge.remove_line", name=r.name, code=r.code,
                                           best_before=ops.day_text(locale, r.best_before))))
            return Reply(text, rows(Button(t(locale, "fridge.manage"), actions.make("fr", "manage", fridge_code))))

        outbox += await ops._to_handlers(session, config, fridge_code, today,
                                         f"fridge_remove:{fridge_code}:{items[0].id}", make)

    # Expiring today: announced once to subscribers, never in quiet hours (they wait for the morning).
    awake = [f.code for _c, f in _fridges(config) if not rules.in_quiet_hours(f.quiet_hours, now, ops.tz(config))]
    if awake:
        expiring = (await session.execute(
            update(FridgeItem).where(FridgeItem.status == ItemStatus.IN_FRIDGE, FridgeItem.best_before == today,
                                     FridgeItem.expiry_announced_at.is_(None), FridgeItem.fridge_code.in_(awake))
            .values(expiry_announced_at=now)
            .returning(FridgeItem.id, FridgeItem.fridge_code, FridgeItem.name, FridgeItem.kind,
                       FridgeItem.remaining))).all()
        grouped: dict[str, list] = defaultdict(list)
        for row in expiring:
            grouped[row.fridge_code].append(row)
        for fridge_code, items in grouped.items():
            items.sort(key=lambda r: r.id)
            outbox += await _to_subscribers(session, config, fridge_code, f"fridge_expiring:{fridge_code}:{items[0].id}",
                                            items, "fridge.expiring_today")
    return [i for i in outbox if i]


async def _lapse_pledges(session: AsyncSession, now: datetime) -> list[int | None]:
    lapsed = (await session.execute(
        update(FridgeItem).where(FridgeItem.status == ItemStatus.PLEDGED, FridgeItem.slot_end < now - rules.LAPSE_AFTER)
        .values(status=ItemStatus.LAPSED, closed_at=now)
        .returning(FridgeItem.id, FridgeItem.donor_id, FridgeItem.name, FridgeItem.code))).all()
    donors = {u.id: u for u in await session.scalars(select(User).where(User.id.in_({r.donor_id for r in lapsed if r.donor_id})))} \
        if lapsed else {}
    out: list[int | None] = []
    for row in lapsed:
        donor = donors.get(row.donor_id)
        if donor is not None:
            out.append(await notify.to_user(session, donor, f"fridge_lapsed:{row.id}",
                                            Reply(t(donor.locale or "zh", "fridge.donor_lapsed", name=row.name,
                                                    code=row.code))))
    return out


async def _to_subscribers(session: AsyncSession, config: CommunitiesConfig, fridge_code: str, key: str, items: list,
                          headline: str) -> list[int | None]:
    _community, fridge = ops.find(config, fridge_code)  # type: ignore[misc]
    out: list[int | None] = []
    for user in await ops.subscribers(session, fridge_code):
        locale = user.locale or "zh"
        text = t(locale, headline, fridge=ops.localized(fridge.name, locale), place=ops.localized(fridge.place, locale),
                 lines=_lines(locale, items, lambda r, locale=locale: t(
                     locale, "fridge.alert_line", name=r.name, count=r.remaining, kind=ops.kind_name(locale, r.kind))))
        buttons = rows(Button(t(locale, "fridge.see_stock"), actions.make("fr", "stock", fridge_code)),
                       Button(t(locale, "fridge.stop_alerts"), actions.make("fr", "unsub", fridge_code)))
        out.append(await notify.to_user(session, user, key, Reply(text, buttons)))
    return out


# --- new-food alerts ---------------------------------------------------------------------------

async def alert_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """Items received since the last alert, one message per subscriber, once the batch window has passed."""
    outbox: list[int | None] = []
    for _community, fridge in _fridges(config):
        if rules.in_quiet_hours(fridge.quiet_hours, now, ops.tz(config)):
            continue
        pending = and_(FridgeItem.fridge_code == fridge.code, FridgeItem.status == ItemStatus.IN_FRIDGE,
                       FridgeItem.alerted_at.is_(None))
        oldest = await session.scalar(select(func.min(FridgeItem.received_at)).where(pending))
        if oldest is None or as_utc(oldest) > now - timedelta(minutes=fridge.alert_batch_minutes):
            continue
        items = sorted((await session.execute(
            update(FridgeItem).where(pending).values(alerted_at=now)
            .returning(FridgeItem.id, FridgeItem.name, FridgeItem.kind, FridgeItem.remaining))).all(),
            key=lambda r: r.id)
        if items:
            outbox += await _to_subscribers(session, config, fridge.code, f"fridge_new:{fridge.code}:{items[0].id}",
                                            items, "fridge.new_food")
    return [i for i in outbox if i]


# --- the daily summary -------------------------------------------------------------------------

async def day_figures(session: AsyncSession, config: CommunitiesConfig, fridge_code: str, day: date) -> dict[str, int]:
    start = rules.at_local(day, time(0, 0), ops.tz(config))
    end = start + timedelta(days=1)

    async def count(stmt) -> int:  # type: ignore[no-untyped-def]
        return int(await session.scalar(stmt) or 0)

    items = select(func.count()).select_from(FridgeItem).where(FridgeItem.fridge_code == fridge_code)
    closed = and_(FridgeItem.closed_at >= start, FridgeItem.closed_at < end)
    shifts = select(func.count()).select_from(FridgeShift).where(
        FridgeShift.fridge_code == fridge_code, FridgeShift.starts_at >= start, FridgeShift.starts_at < end)
    return {
        "donations": await count(items.where(FridgeItem.received_at >= start, FridgeItem.received_at < end)),
        "taken": await count(select(func.count()).select_from(FridgeTake).where(FridgeTake.fridge_code == fridge_code,
                                                                                 FridgeTake.day == day)),
        "emptied": await count(items.where(FridgeItem.status == ItemStatus.TAKEN, closed)),
        "removed": await count(items.where(FridgeItem.status == ItemStatus.REMOVED, closed)),
        "refused": await count(items.where(FridgeItem.status == ItemStatus.REFUSED, closed)),
        "shifts": await count(shifts),
        "covered": await count(shifts.join(Task, Task.id == FridgeShift.task_id)
                               .where(Task.status.in_([str(s) for s in ops.COVERED]))),
        "checked": await count(shifts.where(FridgeShift.checked_at.is_not(None))),
        "stock": await count(items.where(FridgeItem.status == ItemStatus.IN_FRIDGE)),
        "to_remove": await count(items.where(FridgeItem.status == ItemStatus.TO_REMOVE)),
    }


async def summary_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> list[int]:
    """After the fridge's summary time, the day's figures go to the staff group, once per day."""
    outbox: list[int | None] = []
    local_now = rules.local(now, ops.tz(config))
    for community, fridge in _fridges(config):
        groups = notify.groups_of(config, community.code, "staff")
        if not groups or local_now.strftime("%H:%M") < fridge.summary_at:
            continue
        day = local_now.date()
        key = f"g:fridge_summary:{fridge.code}:{day.isoformat()}"
        keys = [group.key(key) for group in groups]
        if await session.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.key.in_(keys))) == len(keys):
            continue
        figures = await day_figures(session, config, fridge.code, day)
        text = t(notify.STAFF_LOCALE, "fridge.summary", fridge=fridge.name["zh"], community=community.name["zh"],
                 day=ops.day_text(notify.STAFF_LOCALE, day), **figures)
        outbox += await notify.to_group(session, config, community.code, "staff", key, text)
    return [i for i in outbox if i]
