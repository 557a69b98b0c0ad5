"""The shared fridge in chat: see what is in it, donate (item → quantity → kind → best-before →
hygiene rules → drop-off slot), take a portion, subscribe to "new food" alerts; the volunteer on
shift (or staff) receives or refuses donations, removes items and fills in the shift checklist.

Every button names the fridge or the item it acts on and is checked again here (role, state).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import update

from shared import fridge as ops
from shared import notify
from shared.clock import utcnow
from shared.db.models import FridgeItem, FridgeShift
from shared.domain import fridge as rules
from shared.domain.fridge import ItemStatus
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

STOCK_BUTTONS = 10  # "take one" buttons under the stock list (the list itself shows more)
STOCK_LINES = 40


def _stale(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "errors.stale_button"))]


def _tz(ctx: FlowContext) -> str:
    return ops.tz(ctx.config)


def _today(ctx: FlowContext) -> date:
    return rules.local_today(utcnow(), _tz(ctx))


async def _item(ctx: FlowContext, item_id: str) -> FridgeItem | None:
    if not item_id.isdigit() or len(item_id) > 18:
        return None
    return await ctx.session.get(FridgeItem, int(item_id))


# --- entry and the fridge's own menu --------------------------------------------------------------

async def entry(ctx: FlowContext) -> list[Reply]:
    found = ops.fridges_for(ctx.config, ctx.user.community_code)
    if not found:
        return [Reply(t(ctx.locale, "fridge.none"))]
    own = [f for c, f in found if c.code == ctx.user.community_code]
    if len(own) == 1:
        return await fridge_menu(ctx, own[0].code)
    buttons = [Button(f"{ops.localized(f.name, ctx.locale)} · {ops.localized(c.name, ctx.locale)}",
                      actions.make("fr", "menu", f.code)) for c, f in found]
    return [Reply(t(ctx.locale, "fridge.choose"), rows(*buttons, per_row=1))]


async def fridge_menu(ctx: FlowContext, code: str) -> list[Reply]:
    found = ops.find(ctx.config, code)
    if found is None:
        return _stale(ctx)
    _community, fridge = found
    now = utcnow()
    in_stock = len(await ops.stock(ctx.session, code))
    hours = "，".join(f"{days} {span}" for days, span in fridge.open_hours.items())
    text = t(ctx.locale, "fridge.menu", name=ops.localized(fridge.name, ctx.locale),
             place=ops.localized(fridge.place, ctx.locale), hours=hours,
             rules=ops.localized(fridge.rules, ctx.locale), count=in_stock)
    subscribed = await ops.is_subscribed(ctx.session, ctx.user, code)
    buttons = [Button(t(ctx.locale, "fridge.see_stock"), actions.make("fr", "stock", code)),
               Button(t(ctx.locale, "fridge.give"), actions.make("fr", "give", code)),
               Button(t(ctx.locale, "fridge.stop_alerts" if subscribed else "fridge.subscribe"),
                      actions.make("fr", "unsub" if subscribed else "sub", code))]
    if await ops.may_handle(ctx.session, ctx.config, ctx.user, code, now):
        buttons += [Button(t(ctx.locale, "fridge.receive_code"), actions.make("fr", "recv", code)),
                    Button(t(ctx.locale, "fridge.manage"), actions.make("fr", "manage", code))]
    if await ops.todays_shift(ctx.session, ctx.config, code, ctx.user, now) is not None:
        buttons.append(Button(t(ctx.locale, "fridge.checklist"), actions.make("fr", "check", code)))
    return [Reply(text, rows(*buttons))]


async def on_fridge(ctx: FlowContext, op: str, code: str) -> list[Reply]:
    if ops.find(ctx.config, code) is None:
        return _stale(ctx)
    handlers = {"menu": fridge_menu, "stock": show_stock, "give": start_donation, "sub": subscribe,
                "unsub": unsubscribe, "recv": ask_code, "manage": manage, "check": start_checklist}
    handler = handlers.get(op)
    return await handler(ctx, code) if handler else _stale(ctx)


# --- what is in the fridge --------------------------------------------------------------------------

def _by_kind(ctx: FlowContext, items: list[FridgeItem]) -> str:
    lines: list[str] = []
    for kind in rules.KINDS:
        of_kind = [i for i in items if i.kind == kind]
        if of_kind:
            lines.append(t(ctx.locale, "fridge.kind_heading", kind=ops.kind_name(ctx.locale, kind)))
            lines += [" · " + ops.item_line(ctx.locale, i) for i in of_kind]
    if len(lines) > STOCK_LINES:
        lines = lines[:STOCK_LINES] + [t(ctx.locale, "fridge.and_more", count=len(lines) - STOCK_LINES)]
    return "\n".join(lines)


async def show_stock(ctx: FlowContext, code: str) -> list[Reply]:
    _community, fridge = ops.find(ctx.config, code)  # type: ignore[misc]
    items = await ops.stock(ctx.session, code)
    name = ops.localized(fridge.name, ctx.locale)
    if not items:
        return [Reply(t(ctx.locale, "fridge.empty", name=name),
                      rows(Button(t(ctx.locale, "fridge.give"), actions.make("fr", "give", code))))]
    text = t(ctx.locale, "fridge.stock", name=name, lines=_by_kind(ctx, items))
    if fridge.fair_share:
        text += "\n" + t(ctx.locale, "fridge.fair_share_note", limit=fridge.fair_share)
    buttons = [Button(t(ctx.locale, "fridge.take_one", name=i.name[:20]), actions.make("fi", "take", i.id))
               for i in items[:STOCK_BUTTONS]]
    return [Reply(text, rows(*buttons, per_row=2))]


async def manage(ctx: FlowContext, code: str) -> list[Reply]:
    if not await ops.may_handle(ctx.session, ctx.config, ctx.user, code, utcnow()):
        return [Reply(t(ctx.locale, "fridge.not_on_shift"))]
    flagged = await ops.stock(ctx.session, code, statuses=(ItemStatus.TO_REMOVE,))
    items = flagged + await ops.stock(ctx.session, code)
    if not items:
        return [Reply(t(ctx.locale, "fridge.manage_empty"))]
    lines = [("🗑 " if i.status == ItemStatus.TO_REMOVE else "") + f"[{i.code}] " + ops.item_line(ctx.locale, i)
             for i in items[:STOCK_LINES]]
    buttons: list[Button] = []
    for i in items[:STOCK_BUTTONS]:
        buttons += [Button(t(ctx.locale, "fridge.mark_gone", code=i.code), actions.make("fi", "gone", i.id)),
                    Button(t(ctx.locale, "fridge.mark_removed", code=i.code), actions.make("fi", "rm", i.id))]
    return [Reply(t(ctx.locale, "fridge.manage_title", lines="\n".join(lines)), rows(*buttons))]


# --- subscriptions ----------------------------------------------------------------------------------

async def subscribe(ctx: FlowContext, code: str) -> list[Reply]:
    await ops.subscribe(ctx.session, ctx.user, code)
    await ctx.session.commit()
    _community, fridge = ops.find(ctx.config, code)  # type: ignore[misc]
    return [Reply(t(ctx.locale, "fridge.subscribed", name=ops.localized(fridge.name, ctx.locale),
                    quiet=fridge.quiet_hours or "-"),
                  rows(Button(t(ctx.locale, "fridge.stop_alerts"), actions.make("fr", "unsub", code))))]


async def unsubscribe(ctx: FlowContext, code: str) -> list[Reply]:
    removed = await ops.unsubscribe(ctx.session, ctx.user, code)
    await ctx.session.commit()
    return [Reply(t(ctx.locale, "fridge.unsubscribed" if removed else "fridge.not_subscribed"),
                  rows(Button(t(ctx.locale, "fridge.subscribe"), actions.make("fr", "sub", code))))]


# --- donating ---------------------------------------------------------------------------------------

def _form(ctx: FlowContext) -> dict | None:
    form = ctx.state.get("fridge_give")
    return form if isinstance(form, dict) and ops.find(ctx.config, str(form.get("fridge", ""))) else None


async def start_donation(ctx: FlowContext, code: str) -> list[Reply]:
    ctx.state.clear()
    ctx.state.update({"await": "fr_name", "fridge_give": {"fridge": code}})
    return [Reply(t(ctx.locale, "fridge.ask_item"))]


async def on_item_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    form = _form(ctx)
    if form is None:
        ctx.state.clear()
        return _stale(ctx)
    name = clean_text(text)
    if not name or not has_words(name) or len(name) > rules.NAME_LIMIT:
        return [Reply(t(ctx.locale, "fridge.item_invalid", limit=rules.NAME_LIMIT))]
    form["name"] = name
    ctx.state["await"] = "fr_qty"
    buttons = [Button(str(n), actions.make("fq", n)) for n in rules.QUANTITY_CHOICES]
    return [Reply(t(ctx.locale, "fridge.ask_quantity", name=name), rows(*buttons, per_row=5))]


async def _set_quantity(ctx: FlowContext, value: int | None) -> list[Reply]:
    form = _form(ctx)
    if form is None or "name" not in form:
        return _stale(ctx)
    if value is None:
        return [Reply(t(ctx.locale, "fridge.quantity_invalid", limit=rules.MAX_QUANTITY))]
    form["quantity"] = value
    ctx.state.pop("await", None)
    buttons = [Button(ops.kind_name(ctx.locale, k), actions.make("fk", k)) for k in rules.KINDS]
    return [Reply(t(ctx.locale, "fridge.ask_kind"), rows(*buttons, per_row=2))]


async def on_quantity_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    return await _set_quantity(ctx, rules.parse_quantity(clean_text(text)))


async def on_quantity(ctx: FlowContext, value: str) -> list[Reply]:
    return await _set_quantity(ctx, rules.parse_quantity(value))


async def on_kind(ctx: FlowContext, kind: str) -> list[Reply]:
    form = _form(ctx)
    if form is None or "quantity" not in form or kind not in rules.KINDS:
        return _stale(ctx)
    form["kind"] = kind
    buttons = [Button(t(ctx.locale, f"fridge.bb_{c}"), actions.make("fb", c))
               for c in (*rules.BEST_BEFORE_CHOICES, "pick")]
    return [Reply(t(ctx.locale, "fridge.ask_best_before"), rows(*buttons, per_row=2))]


async def on_best_before(ctx: FlowContext, choice: str) -> list[Reply]:
    form = _form(ctx)
    if form is None or "kind" not in form:
        return _stale(ctx)
    if choice == "pick":
        ctx.state["await"] = "fr_date"
        return [Reply(t(ctx.locale, "fridge.ask_date"))]
    value = rules.best_before_for(choice, _today(ctx))
    if value is None:
        return _stale(ctx)
    return _set_best_before(ctx, form, value)


async def on_date_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    form = _form(ctx)
    if form is None or "kind" not in form:
        ctx.state.clear()
        return _stale(ctx)
    today = _today(ctx)
    value = rules.parse_date(clean_text(text), today)
    problem = rules.date_problem(value, today)
    if problem is not None:
        return [Reply(t(ctx.locale, f"fridge.{problem}"))]
    ctx.state.pop("await", None)
    return _set_best_before(ctx, form, value)  # type: ignore[arg-type]


def _set_best_before(ctx: FlowContext, form: dict, value: date) -> list[Reply]:
    form["best_before"] = value.isoformat()
    _community, fridge = ops.find(ctx.config, form["fridge"])  # type: ignore[misc]
    return [Reply(t(ctx.locale, "fridge.ask_rules", rules=ops.localized(fridge.rules, ctx.locale)),
                  rows(Button(t(ctx.locale, "fridge.rules_yes"), actions.make("fh", "yes")),
                       Button(t(ctx.locale, "fridge.rules_no"), actions.make("fh", "no"))))]


def _form_best_before(form: dict) -> date | None:
    try:
        return date.fromisoformat(str(form.get("best_before")))
    except ValueError:
        return None


async def on_rules(ctx: FlowContext, answer: str) -> list[Reply]:
    form = _form(ctx)
    best_before = _form_best_before(form) if form else None
    if form is None or best_before is None or answer not in ("yes", "no"):
        return _stale(ctx)
    if answer == "no":
        ctx.state.clear()
        return [Reply(t(ctx.locale, "fridge.rules_declined"))]
    form["rules_ok"] = True
    return await _slot_prompt(ctx, form, best_before)


async def _slot_prompt(ctx: FlowContext, form: dict, best_before: date) -> list[Reply]:
    _community, fridge = ops.find(ctx.config, form["fridge"])  # type: ignore[misc]
    slots = await ops.offer_slots(ctx.session, ctx.config, fridge, quantity=int(form["quantity"]),
                                  best_before=best_before, now=utcnow())
    if not slots:
        ctx.state.clear()
        return [Reply(t(ctx.locale, "fridge.no_slot"))]
    buttons = [Button(ops.slot_text(ctx.config, ctx.locale, s.start, s.end), actions.make("fs", s.code)) for s in slots]
    return [Reply(t(ctx.locale, "fridge.ask_slot", place=ops.localized(fridge.place, ctx.locale)),
                  rows(*buttons, per_row=2))]


async def on_slot(ctx: FlowContext, code: str) -> list[Reply]:
    form = _form(ctx)
    start = rules.slot_from_code(code)
    best_before = _form_best_before(form) if form else None
    if form is None or not form.get("rules_ok") or start is None or best_before is None:
        return _stale(ctx)
    result = await ops.pledge(ctx.session, ctx.config, ctx.user, fridge_code=form["fridge"], name=form["name"],
                              quantity=int(form["quantity"]), kind=form["kind"], best_before=best_before,
                              slot_start=start, now=utcnow())
    if result.item is None:
        # Someone else took the room meanwhile (or the slot passed): offer what is left.
        return [Reply(t(ctx.locale, "fridge.slot_gone")), *await _slot_prompt(ctx, form, best_before)]
    ctx.state.clear()
    await commit_and_deliver(ctx, result.outbox_ids)
    item = result.item
    _community, fridge = ops.find(ctx.config, item.fridge_code)  # type: ignore[misc]
    return [Reply(t(ctx.locale, "fridge.pledged", code=item.code, name=item.name, count=item.quantity,
                    slot=ops.slot_text(ctx.config, ctx.locale, item.slot_start, item.slot_end),
                    place=ops.localized(fridge.place, ctx.locale)),
                  rows(Button(t(ctx.locale, "fridge.cancel_pledge"), actions.make("fi", "cancel", item.id))))]


# --- the volunteer on shift: receive by code, refuse with a reason, take out ------------------------

async def ask_code(ctx: FlowContext, code: str) -> list[Reply]:
    if not await ops.may_handle(ctx.session, ctx.config, ctx.user, code, utcnow()):
        return [Reply(t(ctx.locale, "fridge.not_on_shift"))]
    ctx.state.clear()
    ctx.state.update({"await": "fr_code", "fridge_recv": code})
    return [Reply(t(ctx.locale, "fridge.ask_code"))]


async def on_code_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    from sqlalchemy import select

    fridge_code = str(ctx.state.get("fridge_recv", ""))
    typed = clean_text(text).upper().replace(" ", "")
    if ops.find(ctx.config, fridge_code) is None:
        ctx.state.clear()
        return _stale(ctx)
    item = None
    if typed.isalnum() and len(typed) <= 8:
        item = await ctx.session.scalar(select(FridgeItem).where(FridgeItem.code == typed,
                                                                 FridgeItem.fridge_code == fridge_code))
    if item is None:
        return [Reply(t(ctx.locale, "fridge.code_unknown"))]
    ctx.state.clear()
    if item.status != ItemStatus.PLEDGED:
        return [Reply(t(ctx.locale, "fridge.already_handled", code=item.code))]
    return [ops.item_card(ctx.config, item, ctx.locale)]


async def on_item(ctx: FlowContext, op: str, item_id: str) -> list[Reply]:
    item = await _item(ctx, item_id)
    if item is None or ops.find(ctx.config, item.fridge_code) is None:
        return _stale(ctx)
    now = utcnow()
    if op == "take":
        return await _take(ctx, item)
    if op == "cancel":
        if item.donor_id != ctx.user.id:
            return [Reply(t(ctx.locale, "errors.not_allowed"))]
        cancelled = await ops.cancel(ctx.session, item.id, ctx.user, now)
        await ctx.session.commit()
        return [Reply(t(ctx.locale, "fridge.cancelled" if cancelled else "fridge.already_handled", code=item.code))]
    if op not in ("ok", "no", "gone", "rm"):
        return _stale(ctx)
    if not await ops.may_handle(ctx.session, ctx.config, ctx.user, item.fridge_code, now):
        return [Reply(t(ctx.locale, "fridge.not_on_shift"))]
    if op == "ok":
        ids = await ops.receive(ctx.session, ctx.config, item.id, ctx.user, now)
        if ids is None:
            return [Reply(t(ctx.locale, "fridge.already_handled", code=item.code))]
        await commit_and_deliver(ctx, ids)
        return [Reply(t(ctx.locale, "fridge.received", code=item.code, name=item.name))]
    if op == "no":
        if item.status != ItemStatus.PLEDGED:
            return [Reply(t(ctx.locale, "fridge.already_handled", code=item.code))]
        buttons = [Button(t(ctx.locale, f"fridge.reason_{r}"), actions.make("frr", item.id, r))
                   for r in rules.REFUSE_REASONS]
        return [Reply(t(ctx.locale, "fridge.ask_reason", code=item.code, name=item.name), rows(*buttons))]
    marked = await ops.mark(ctx.session, item.id, ctx.user, ItemStatus.TAKEN if op == "gone" else ItemStatus.REMOVED,
                            now)
    await ctx.session.commit()
    if marked is None:
        return [Reply(t(ctx.locale, "fridge.already_handled", code=item.code))]
    return [Reply(t(ctx.locale, "fridge.marked_gone" if op == "gone" else "fridge.marked_removed",
                    code=item.code, name=item.name))]


async def on_refuse_reason(ctx: FlowContext, item_id: str, reason: str) -> list[Reply]:
    item = await _item(ctx, item_id)
    if item is None or reason not in rules.REFUSE_REASONS or ops.find(ctx.config, item.fridge_code) is None:
        return _stale(ctx)
    now = utcnow()
    if not await ops.may_handle(ctx.session, ctx.config, ctx.user, item.fridge_code, now):
        return [Reply(t(ctx.locale, "fridge.not_on_shift"))]
    ids = await ops.refuse(ctx.session, ctx.config, item.id, ctx.user, reason, now)
    if ids is None:
        return [Reply(t(ctx.locale, "fridge.already_handled", code=item.code))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "fridge.refused", code=item.code, reason=t(ctx.locale, f"fridge.reason_{reason}")))]


async def _take(ctx: FlowContext, item: FridgeItem) -> list[Reply]:
    outcome = await ops.take(ctx.session, ctx.config, item.id, ctx.user, utcnow())
    await ctx.session.commit()
    _community, fridge = ops.find(ctx.config, item.fridge_code)  # type: ignore[misc]
    return [Reply(t(ctx.locale, f"fridge.take_{outcome}", name=item.name, limit=fridge.fair_share or 0))]


# --- the shift checklist ----------------------------------------------------------------------------

async def start_checklist(ctx: FlowContext, code: str) -> list[Reply]:
    shift = await ops.todays_shift(ctx.session, ctx.config, code, ctx.user, utcnow())
    if shift is None:
        return [Reply(t(ctx.locale, "fridge.not_on_shift"))]
    if shift.checked_at is not None:
        return [Reply(t(ctx.locale, "fridge.check_done_already"))]
    ctx.state.clear()
    ctx.state.update({"await": "fr_temp", "fridge_check": {"shift": shift.id}})
    return [Reply(t(ctx.locale, "fridge.ask_temperature"))]


async def _check_shift(ctx: FlowContext) -> tuple[dict | None, FridgeShift | None]:
    form = ctx.state.get("fridge_check")
    if not isinstance(form, dict) or not isinstance(form.get("shift"), int):
        return None, None
    shift = await ctx.session.get(FridgeShift, form["shift"])
    if shift is None or await ops.todays_shift(ctx.session, ctx.config, shift.fridge_code, ctx.user, utcnow()) is None:
        return None, None
    return form, shift


async def on_temperature_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    form, shift = await _check_shift(ctx)
    if form is None or shift is None:
        ctx.state.clear()
        return [Reply(t(ctx.locale, "fridge.not_on_shift"))]
    value = rules.parse_temperature(clean_text(text))
    if value is None:
        return [Reply(t(ctx.locale, "fridge.temperature_invalid"))]
    form["temperature"] = value
    ctx.state.pop("await", None)
    replies = []
    community, fridge = ops.find(ctx.config, shift.fridge_code)  # type: ignore[misc]
    if not rules.temperature_ok(value, fridge.temperature_min, fridge.temperature_max):
        # Staff hear of it at once, once per shift, even if the checklist is never finished.
        replies.append(Reply(t(ctx.locale, "fridge.temperature_warning", value=value, low=fridge.temperature_min,
                               high=fridge.temperature_max)))
        text = t(notify.STAFF_LOCALE, "fridge.temperature_staff", fridge=fridge.name["zh"], value=value,
                 low=fridge.temperature_min, high=fridge.temperature_max, name=ctx.user.display_name or "-")
        ids = await notify.to_group(ctx.session, ctx.config, community.code, "staff", f"g:fridge_temp:{shift.id}",
                                    text)
        await commit_and_deliver(ctx, ids)
    return [*replies, Reply(t(ctx.locale, "fridge.ask_cleaned"),
                            rows(Button(t(ctx.locale, "fridge.answer_yes"), actions.make("fc", "clean", "yes")),
                                 Button(t(ctx.locale, "fridge.answer_no"), actions.make("fc", "clean", "no"))))]


async def on_check(ctx: FlowContext, step: str, answer: str) -> list[Reply]:
    form, shift = await _check_shift(ctx)
    if form is None or shift is None or answer not in ("yes", "no") or "temperature" not in form:
        return _stale(ctx)
    if step == "clean":
        form["cleaned"] = answer == "yes"
        return [Reply(t(ctx.locale, "fridge.ask_expired_removed"),
                      rows(Button(t(ctx.locale, "fridge.answer_yes"), actions.make("fc", "expired", "yes")),
                           Button(t(ctx.locale, "fridge.answer_no"), actions.make("fc", "expired", "no"))))]
    if step != "expired" or "cleaned" not in form:
        return _stale(ctx)
    now = utcnow()
    saved = await ctx.session.execute(
        update(FridgeShift).where(FridgeShift.id == shift.id, FridgeShift.checked_at.is_(None))
        .values(temperature=form["temperature"], cleaned=form["cleaned"], expired_removed=answer == "yes",
                checked_by=ctx.user.id, checked_at=now))
    ctx.state.clear()
    if saved.rowcount != 1:
        return [Reply(t(ctx.locale, "fridge.check_done_already"))]
    removed = await ops.remove_flagged(ctx.session, shift.fridge_code, ctx.user, now) if answer == "yes" else 0
    await ctx.session.commit()
    return [Reply(t(ctx.locale, "fridge.check_saved", temperature=form["temperature"], removed=removed))]


# --- text steps, for the dispatcher --------------------------------------------------------------------

TEXT_STEPS = {"fr_name": on_item_text, "fr_qty": on_quantity_text, "fr_date": on_date_text, "fr_code": on_code_text,
              "fr_temp": on_temperature_text}
