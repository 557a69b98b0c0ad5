"""One entry for a channel: a command, free text, or an action string → replies."""

from __future__ import annotations

from shared.flows import (actions, activities, book_seedlings, books, deliberation, fridge, linking, mediation,
                          my_requests, onboarding, privacy, report, staff, tasks, volunteer)
from shared.flows.context import FlowContext
from shared.flows.reply import Reply
from shared.i18n import t

RESIDENT_AWAITS = {"add_info", "answer", "comment"}


async def handle_command(ctx: FlowContext, command: str, args: str | None = None) -> list[Reply]:
    if command == "start":
        if args and args.lower().startswith("md"):
            return await mediation.invitation(ctx, args)  # a one-time mediation invitation link
        return await onboarding.start(ctx)
    if command == "join":
        return await mediation.invitation(ctx, args)
    if command == "cancel":
        had_state = bool(ctx.state.get("await"))
        ctx.state.clear()
        return [Reply(t(ctx.locale, "requests.cancelled"))] if had_state else [onboarding.next_step(ctx)]
    if command == "mydata":
        return await privacy.my_data(ctx)
    if command == "forgetme":
        return await privacy.ask_forget(ctx)
    if command == "link":
        return await linking.on_link(ctx, args)
    if not onboarding.is_onboarded(ctx):
        return [onboarding.next_step(ctx)]
    if command == "help":
        return [Reply(t(ctx.locale, "menu.help_text"))]
    if command == "queue":
        return await staff.queue(ctx)
    if command == "mine":
        return await staff.mine(ctx)
    if command == "request":
        return await staff.show(ctx, args)
    if command == "requests":
        return await my_requests.list_requests(ctx)
    if command == "merge":
        return await staff.merge(ctx, args)
    if command == "announce":
        return await staff.start_announcement(ctx)
    if command == "stats":
        return await staff.stats(ctx)
    if command == "volunteer":
        return await volunteer.start(ctx)
    if command == "mytasks":
        return await tasks.my_tasks(ctx)
    if command == "hours":
        return await tasks.hours(ctx)
    if command == "task":
        return await tasks.new_task(ctx)
    if command == "fridge":
        return await fridge.entry(ctx)
    if command == "books":
        return await books.menu(ctx)
    if command == "points":
        return await books.points(ctx)
    if command == "bookstock":
        return await books.stock(ctx)
    if command == "cases":
        return await mediation.entry(ctx)
    if command == "topics":
        return await deliberation.topics(ctx)
    if command == "activities":
        return await activities.menu(ctx)
    if command == "seedlings":
        return await book_seedlings.staff_stock(ctx)
    return [onboarding.next_step(ctx)]


async def handle_action(ctx: FlowContext, data: str | None) -> list[Reply]:
    action = actions.parse(data)
    if action is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    verb, args = action.verb, action.args
    if verb == "consent":
        return await onboarding.on_consent(ctx, args[0])
    if verb == "comm":
        return await onboarding.on_community(ctx, args[0])
    if verb == "lang":
        return await onboarding.on_language(ctx, args[0])
    if verb == "fm":
        return await privacy.forget(ctx, args[0])
    if verb == "mdy":  # an invited party may not have been through /start yet
        return await mediation.on_consent(ctx, args[0], args[1])
    if not onboarding.is_onboarded(ctx):
        return [onboarding.next_step(ctx)]
    if verb in deliberation.VERBS:
        return await deliberation.on_action_string(ctx, verb, args)
    handlers = {
        "menu": lambda: report.on_menu(ctx, args[0]),
        "cat": lambda: report.on_category_choice(ctx, args[0], args[1]),
        "req": lambda: my_requests.open_request(ctx, args[0]),
        "add": lambda: my_requests.ask_text(ctx, args[0], "add_info"),
        "ans": lambda: my_requests.ask_text(ctx, args[0], "answer"),
        "wd": lambda: my_requests.ask_withdraw(ctx, args[0]),
        "wdy": lambda: my_requests.confirm_withdraw(ctx, args[0]),
        "fu": lambda: my_requests.followup(ctx, args[0], args[1]),
        "rate": lambda: my_requests.rate(ctx, args[0], args[1]),
        "st": lambda: staff.on_action(ctx, args[0], args[1]),
        "stc": lambda: staff.set_category(ctx, args[0], args[1]),
        "stm": lambda: staff.move(ctx, args[0], args[1]),
        "stf": lambda: staff.choose_body(ctx, args[0], args[1]),
        "dup": lambda: my_requests.follow_existing(ctx, args[0], args[1]),
        "ann": lambda: staff.confirm_announcement(ctx, args[0]),
        "vr": lambda: volunteer.start(ctx),
        "vs": lambda: volunteer.on_skill(ctx, args[0]),
        "va": lambda: volunteer.on_availability(ctx, args[0]),
        "vp": lambda: volunteer.skip_phone(ctx),
        "vn": lambda: volunteer.on_named(ctx, args[0]),
        "vol": lambda: volunteer.decide(ctx, args[0], args[1]),
        "tk": lambda: tasks.on_action(ctx, args[0], args[1]),
        "stk": lambda: tasks.from_request(ctx, args[0], args[1]),
        "nts": lambda: tasks.new_task_skill(ctx, args[0]),
        "ntw": lambda: tasks.new_task_window(ctx, args[0]),
        "fr": lambda: fridge.on_fridge(ctx, args[0], args[1]),
        "fq": lambda: fridge.on_quantity(ctx, args[0]),
        "fk": lambda: fridge.on_kind(ctx, args[0]),
        "fb": lambda: fridge.on_best_before(ctx, args[0]),
        "fh": lambda: fridge.on_rules(ctx, args[0]),
        "fs": lambda: fridge.on_slot(ctx, args[0]),
        "fi": lambda: fridge.on_item(ctx, args[0], args[1]),
        "frr": lambda: fridge.on_refuse_reason(ctx, args[0], args[1]),
        "fc": lambda: fridge.on_check(ctx, args[0], args[1]),
        "bk": lambda: books.on_menu(ctx, args[0]),
        "bkc": lambda: books.on_condition(ctx, args[0]),
        "bkph": lambda: books.skip_photo(ctx, args[0]),
        "bkl": lambda: books.on_location(ctx, args[0]),
        "bkp": lambda: books.page(ctx, args[0]),
        "bko": lambda: books.open_book(ctx, args[0]),
        "bkr": lambda: books.request(ctx, args[0]),
        "bkt": lambda: books.pick_day(ctx, args[0], args[1]),
        "bkx": lambda: books.cancel(ctx, args[0]),
        "bkh": lambda: books.handover(ctx, args[0], args[1]),
        "bkw": lambda: books.on_wish(ctx, args[0]),
        "bkwd": lambda: books.remove_wish(ctx, args[0]),
        "md": lambda: mediation.on_case(ctx, args[0], args[1]),
        "mdo": lambda: mediation.open_from_request(ctx, args[0]),
        "mdl": lambda: mediation.on_list(ctx, args[0]),
        "mdv": lambda: mediation.party_view(ctx, args[0]),
        "mdm": lambda: mediation.ask_message(ctx, args[0]),
        "mdss": lambda: mediation.on_session(ctx, args[0], args[1]),
        "mda": lambda: mediation.on_attendance(ctx, *args),
        "mdk": lambda: mediation.on_agreement_answer(ctx, *args),
        "mdf": lambda: mediation.on_followup(ctx, *args),
        "bkg": lambda: book_seedlings.exchange(ctx, args[0], args[1]),
    }
    if verb in activities.ACTION_VERBS:
        return await activities.on_action(ctx, verb, args)
    handler = handlers.get(verb)
    return await handler() if handler else [Reply(t(ctx.locale, "errors.stale_button"))]


async def handle_text(ctx: FlowContext, text: str | None, *, idempotency_key: str, attachments: list | None = None) -> list[Reply]:
    awaiting = ctx.state.get("await")
    if awaiting is None and ctx.state.get("md_last") == idempotency_key:
        return []  # a mediation note or message delivered twice: stored once, never a new request
    if awaiting in RESIDENT_AWAITS:
        return await my_requests.on_awaited_text(ctx, text, attachments)
    if awaiting == "staff_reply":
        return await staff.on_reply_text(ctx, text)
    if awaiting == "referral_ref":
        return await staff.on_reference_text(ctx, text)
    if awaiting == "announce_text":
        return await staff.on_announcement_text(ctx, text)
    text_steps = {"vol_name": volunteer.on_name, "vol_phone": volunteer.on_phone, "task_done": tasks.on_done_text,
                  "task_hours": tasks.on_hours_text, "task_text": tasks.new_task_text}
    if awaiting in text_steps:
        return await text_steps[awaiting](ctx, text)
    if awaiting in mediation.TEXT_STEPS:
        return await mediation.TEXT_STEPS[awaiting](ctx, text, idempotency_key)
    if awaiting in fridge.TEXT_STEPS:
        return await fridge.TEXT_STEPS[awaiting](ctx, text)
    if awaiting in ("book_title", "book_query"):
        return await (books.on_title if awaiting == "book_title" else books.on_query)(ctx, text)
    if awaiting == "book_photo":
        return await books.on_photo(ctx, text, attachments)
    if awaiting in deliberation.TEXT_STEPS:
        return await deliberation.on_text(ctx, awaiting, text, attachments, idempotency_key=idempotency_key)
    if awaiting in activities.TEXT_STEPS:
        return await activities.TEXT_STEPS[awaiting](ctx, text)
    if awaiting == book_seedlings.AWAIT_STOCK:
        return await book_seedlings.on_stock_text(ctx, text)
    if awaiting == "behalf_name":
        return await report.on_behalf_name(ctx, text)
    if awaiting == "behalf_text":
        return await report.on_behalf_text(ctx, text, idempotency_key=idempotency_key, attachments=attachments)
    return await report.on_text(ctx, text, idempotency_key=idempotency_key, attachments=attachments)
