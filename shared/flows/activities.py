"""Activities in chat: browse by audience, enrol yourself or a child, waiting list offers, my enrolments;
for organisers: create an activity, sessions, cancellations, roll call with pick-up checks, statistics.

Child form: name → age → school class (or skip) → authorised pick-up people → guardian consent.
New activity (staff): title → audience → age range (children) → schedule → place → capacity → fee → save.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from shared import activities as service
from shared.clock import as_utc, utcnow
from shared.db.models import Activity, ActivityChild, ActivityEnrolment, ActivitySession, User, Volunteer
from shared.domain import activities as rules
from shared.domain.activities import ACTIVE, ActivityStatus, EnrolmentStatus, SessionStatus
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

_DAY = timedelta(days=1)
ACTION_VERBS = ("ac", "aco", "ace", "acx", "acy", "acc", "acn", "acg", "acv", "acs", "acm", "acp")


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _stale(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "errors.stale_button"))]


def _not_allowed(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "activities.not_allowed"))]


def _is_staff(ctx: FlowContext) -> bool:
    return bool(ctx.user.community_code) and is_staff_for(ctx, ctx.user.community_code)


# --- browsing -------------------------------------------------------------------------------------

async def menu(ctx: FlowContext) -> list[Reply]:
    for key in [k for k in ctx.state if k.startswith("ac_")]:
        ctx.state.pop(key, None)
    if str(ctx.state.get("await", "")).startswith("ac_"):
        ctx.state.pop("await", None)
    buttons = [Button(t(ctx.locale, "activities.browse_children"), actions.make("ac", "children")),
               Button(t(ctx.locale, "activities.browse_seniors"), actions.make("ac", "seniors")),
               Button(t(ctx.locale, "activities.browse_all"), actions.make("ac", "all")),
               Button(t(ctx.locale, "activities.mine"), actions.make("ac", "mine"))]
    organises = await ctx.session.scalar(select(Activity.id).where(Activity.organiser_id == ctx.user.id).limit(1))
    if _is_staff(ctx) or organises is not None:
        buttons.append(Button(t(ctx.locale, "activities.manage"), actions.make("ac", "manage")))
    if _is_staff(ctx):
        buttons.append(Button(t(ctx.locale, "activities.new"), actions.make("ac", "new")))
        buttons.append(Button(t(ctx.locale, "activities.stats_button"), actions.make("ac", "stats")))
    return [Reply(t(ctx.locale, "activities.menu"), rows(*buttons))]


async def on_menu(ctx: FlowContext, choice: str) -> list[Reply]:
    if choice in service.AUDIENCES:
        return await browse(ctx, choice)
    handlers = {"menu": menu, "mine": mine, "manage": manage, "new": start_new, "stats": stats}
    handler = handlers.get(choice)
    return await handler(ctx) if handler else _stale(ctx)


def _line(ctx: FlowContext, item: service.Listing) -> str:
    a = item.activity
    places = (t(ctx.locale, "activities.places_free", free=item.free, capacity=a.capacity) if item.free
              else t(ctx.locale, "activities.places_full", waiting=item.waiting))
    nxt = service.when_text(ctx.config, ctx.locale, item.next_start) if item.next_start else "-"
    return t(ctx.locale, "activities.line", title=service.title_of(a, ctx.locale),
             audience=service.audience_text(ctx.locale, a), next=nxt, places=places,
             fee=service.fee_text(ctx.locale, a.fee))


async def browse(ctx: FlowContext, audience: str) -> list[Reply]:
    found = await service.browse(ctx.session, ctx.user.community_code, audience, utcnow())
    if not found:
        return [Reply(t(ctx.locale, "activities.nothing_on"),
                      rows(Button(t(ctx.locale, "activities.back"), actions.make("ac", "menu"))))]
    lines = [f"{i}. {_line(ctx, item)}" for i, item in enumerate(found, start=1)]
    buttons = [Button(f"{i}. {service.title_of(x.activity, ctx.locale)[:24]}", actions.make("aco", x.activity.id))
               for i, x in enumerate(found, start=1)]
    return [Reply(t(ctx.locale, "activities.list_title") + "\n" + "\n".join(lines), rows(*buttons, per_row=1))]


async def open_activity(ctx: FlowContext, activity_id: str) -> list[Reply]:
    aid = _id(activity_id)
    activity = await ctx.session.get(Activity, aid) if aid else None
    if activity is None or activity.status != ActivityStatus.OPEN:
        return [Reply(t(ctx.locale, "activities.gone"))]
    if not service.may_enrol_in(ctx.user, activity) and not service.may_organise(ctx.user, activity):
        return [Reply(t(ctx.locale, "activities.other_community"))]
    now = utcnow()
    item = await service.listing(ctx.session, activity, now)
    ahead = await service.upcoming(ctx.session, activity.id, now, limit=4)
    sessions = "\n".join("· " + service.when_text(ctx.config, ctx.locale, s.starts_at, s.ends_at) for s in ahead)
    window = rules.window_state(now, activity.enrol_opens_at and as_utc(activity.enrol_opens_at),
                                activity.enrol_closes_at and as_utc(activity.enrol_closes_at))
    text = t(ctx.locale, "activities.card", title=service.title_of(activity, ctx.locale),
             description=activity.description or "", organiser=activity.organiser_name or "-",
             audience=service.audience_text(ctx.locale, activity), place=activity.place,
             fee=service.fee_text(ctx.locale, activity.fee), capacity=activity.capacity, free=item.free,
             waiting=item.waiting, left=item.sessions_left, sessions=sessions or "-")
    if window != "open":
        text += "\n" + t(ctx.locale, f"activities.window_{window}")
    mine = list(await ctx.session.scalars(select(ActivityEnrolment).where(
        ActivityEnrolment.activity_id == activity.id, ActivityEnrolment.user_id == ctx.user.id,
        ActivityEnrolment.status.in_([str(s) for s in ACTIVE]))))
    buttons: list[Button] = []
    for enrolment in mine:
        who = await service.who_text(ctx.session, ctx.locale, enrolment)
        text += "\n" + t(ctx.locale, f"activities.you_{enrolment.status}", who=who)
        buttons.append(Button(t(ctx.locale, "activities.cancel_for", who=who), actions.make("acx", enrolment.id)))
    if window == "open" and item.sessions_left:
        taken = {e.who for e in mine}
        if activity.audience != "children" and "self" not in taken:
            buttons.append(Button(t(ctx.locale, "activities.enrol_self" if item.free and not item.waiting
                                    else "activities.wait_self"), actions.make("ace", activity.id, "self")))
        if activity.audience != "seniors":
            for child in await service.children_of(ctx.session, ctx.user.id):
                if rules.who_key(child.id) not in taken and rules.age_fits(child.age, activity.age_min, activity.age_max):
                    buttons.append(Button(t(ctx.locale, "activities.enrol_child", name=child.name[:12]),
                                          actions.make("ace", activity.id, child.id)))
            buttons.append(Button(t(ctx.locale, "activities.add_child"), actions.make("ace", activity.id, "new")))
    if service.may_organise(ctx.user, activity):
        buttons.append(Button(t(ctx.locale, "activities.organise"), actions.make("acg", "view", activity.id)))
    return [Reply(text, rows(*buttons, per_row=1))]


# --- enrolling --------------------------------------------------------------------------------------

_RESULTS = {"already", "gone", "other_community", "not_allowed", "no_consent", "child_needed", "self_only", "age",
            "not_yet", "closed"}


async def enrol(ctx: FlowContext, activity_id: str, who: str) -> list[Reply]:
    aid = _id(activity_id)
    if aid is None:
        return _stale(ctx)
    if who == "new":
        activity = await ctx.session.get(Activity, aid)
        if activity is None or activity.status != ActivityStatus.OPEN:
            return [Reply(t(ctx.locale, "activities.gone"))]
        if not service.may_enrol_in(ctx.user, activity):
            return [Reply(t(ctx.locale, "activities.result_other_community"))]
        if activity.audience == "seniors":
            return [Reply(t(ctx.locale, "activities.result_self_only"))]
        ctx.state["ac_child"] = {"activity": aid}
        ctx.state["await"] = "ac_child_name"
        return [Reply(t(ctx.locale, "activities.ask_child_name"))]
    child_id = None if who == "self" else _id(who)
    if who != "self" and child_id is None:
        return _stale(ctx)
    return await _do_enrol(ctx, aid, child_id)


async def _do_enrol(ctx: FlowContext, activity_id: int, child_id: int | None) -> list[Reply]:
    outcome = await service.enrol(ctx.session, ctx.config, activity_id, ctx.user, child_id, utcnow())
    if outcome.result in _RESULTS:
        return [Reply(t(ctx.locale, f"activities.result_{outcome.result}"))]
    # Commit first: the activity stays locked only as long as the place decision needs.
    await commit_and_deliver(ctx, outcome.outbox)
    activity = await ctx.session.get(Activity, activity_id)
    enrolment = outcome.enrolment
    who = await service.who_text(ctx.session, ctx.locale, enrolment)
    title = service.title_of(activity, ctx.locale)
    ahead = await service.upcoming(ctx.session, activity_id, utcnow(), limit=1)
    first = service.when_text(ctx.config, ctx.locale, ahead[0].starts_at, ahead[0].ends_at) if ahead else "-"
    cancel = rows(Button(t(ctx.locale, "activities.cancel_for", who=who), actions.make("acx", enrolment.id)))
    if outcome.result == "enrolled":
        return [Reply(t(ctx.locale, "activities.enrolled", who=who, title=title, first=first, place=activity.place,
                        fee=service.fee_text(ctx.locale, activity.fee)), cancel)]
    return [Reply(t(ctx.locale, "activities.waiting", who=who, title=title, position=outcome.position), cancel)]


async def on_child_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    form = ctx.state.get("ac_child")
    step = ctx.state.get("await")
    if not isinstance(form, dict) or "activity" not in form:
        ctx.state.pop("await", None)
        return _stale(ctx)
    cleaned = clean_text(text)
    if step == "ac_child_name":
        if not cleaned or not has_words(cleaned) or not rules.valid_name(cleaned) or "\n" in cleaned:
            return [Reply(t(ctx.locale, "activities.child_name_invalid", limit=rules.NAME_LIMIT))]
        form["name"] = cleaned
        ctx.state["await"] = "ac_child_age"
        return [Reply(t(ctx.locale, "activities.ask_child_age", name=cleaned))]
    if step == "ac_child_age":
        age = rules.parse_int(cleaned, *rules.CHILD_AGE)
        if age is None:
            return [Reply(t(ctx.locale, "activities.child_age_invalid", low=rules.CHILD_AGE[0], high=rules.CHILD_AGE[1]))]
        form["age"] = age
        ctx.state["await"] = "ac_child_class"
        return [Reply(t(ctx.locale, "activities.ask_child_class"),
                      rows(Button(t(ctx.locale, "activities.skip"), actions.make("acc", "skip"))))]
    if step == "ac_child_class":
        if not cleaned or not has_words(cleaned) or len(cleaned) > rules.CLASS_LIMIT or not rules.plain(cleaned):
            return [Reply(t(ctx.locale, "activities.child_class_invalid", limit=rules.CLASS_LIMIT),
                          rows(Button(t(ctx.locale, "activities.skip"), actions.make("acc", "skip"))))]
        form["class"] = cleaned
        return _ask_pickup(ctx)
    if step == "ac_child_pickup":
        names = rules.parse_names(cleaned)
        if names is None:
            return [Reply(t(ctx.locale, "activities.pickup_invalid", limit=rules.MAX_PICKUP))]
        form["pickup"] = names
        ctx.state.pop("await", None)
        return [Reply(t(ctx.locale, "activities.ask_consent", name=form["name"], age=form["age"],
                        klass=form.get("class") or "-", pickup="、".join(names)),
                      rows(Button(t(ctx.locale, "activities.consent_yes"), actions.make("acc", "yes")),
                           Button(t(ctx.locale, "activities.consent_no"), actions.make("acc", "no"))))]
    ctx.state.pop("await", None)
    return _stale(ctx)


def _ask_pickup(ctx: FlowContext) -> list[Reply]:
    ctx.state["await"] = "ac_child_pickup"
    return [Reply(t(ctx.locale, "activities.ask_pickup", limit=rules.MAX_PICKUP))]


async def on_child_choice(ctx: FlowContext, op: str) -> list[Reply]:
    form = ctx.state.get("ac_child")
    if not isinstance(form, dict) or "activity" not in form:
        return _stale(ctx)
    if op == "skip" and ctx.state.get("await") == "ac_child_class":
        form["class"] = None
        return _ask_pickup(ctx)
    if op not in ("yes", "no") or "pickup" not in form or ctx.state.get("await"):
        return _stale(ctx)
    ctx.state.pop("ac_child", None)
    if op == "no":
        return [Reply(t(ctx.locale, "activities.consent_refused"))]
    child = await service.add_child(ctx.session, ctx.user, name=form["name"], age=int(form["age"]),
                                    school_class=form.get("class"), pickup=list(form["pickup"]), now=utcnow())
    return await _do_enrol(ctx, int(form["activity"]), child.id)


async def cancel(ctx: FlowContext, enrolment_id: str) -> list[Reply]:
    eid = _id(enrolment_id)
    if eid is None:
        return _stale(ctx)
    result, outbox = await service.cancel_enrolment(ctx.session, ctx.config, eid, ctx.user, utcnow())
    if result == "not_allowed":
        return _not_allowed(ctx)
    if result == "already":
        return [Reply(t(ctx.locale, "activities.already_cancelled"))]
    await commit_and_deliver(ctx, outbox)
    return [Reply(t(ctx.locale, "activities.cancelled"))]


async def answer(ctx: FlowContext, enrolment_id: str, op: str) -> list[Reply]:
    eid = _id(enrolment_id)
    if eid is None or op not in ("yes", "no"):
        return _stale(ctx)
    result, outbox = await service.answer_offer(ctx.session, ctx.config, eid, ctx.user, op == "yes", utcnow())
    if result == "not_allowed":
        return _not_allowed(ctx)
    if result == "stale":
        return [Reply(t(ctx.locale, "activities.offer_stale"))]
    enrolment = await ctx.session.get(ActivityEnrolment, eid)
    activity = await ctx.session.get(Activity, enrolment.activity_id)
    title = service.title_of(activity, ctx.locale)
    await commit_and_deliver(ctx, outbox)
    return [Reply(t(ctx.locale, "activities.offer_taken" if result == "ok" else "activities.offer_declined",
                    title=title))]


async def mine(ctx: FlowContext) -> list[Reply]:
    found = list((await ctx.session.execute(
        select(ActivityEnrolment, Activity).join(Activity, Activity.id == ActivityEnrolment.activity_id)
        .where(ActivityEnrolment.user_id == ctx.user.id, ActivityEnrolment.status.in_([str(s) for s in ACTIVE]))
        .order_by(ActivityEnrolment.id).limit(20))).all())
    if not found:
        return [Reply(t(ctx.locale, "activities.none_mine"),
                      rows(Button(t(ctx.locale, "activities.back"), actions.make("ac", "menu"))))]
    lines, buttons = [], []
    for enrolment, activity in found:
        who = await service.who_text(ctx.session, ctx.locale, enrolment)
        line = t(ctx.locale, "activities.mine_line", title=service.title_of(activity, ctx.locale), who=who,
                 status=t(ctx.locale, f"activities.st_{enrolment.status}"))
        if enrolment.status == EnrolmentStatus.WAITING:
            line += t(ctx.locale, "activities.position", position=await service.waiting_position(ctx.session, enrolment))
        lines.append(line)
        if enrolment.status == EnrolmentStatus.OFFERED:
            buttons.append(Button(t(ctx.locale, "activities.accept"), actions.make("acy", enrolment.id, "yes")))
        buttons.append(Button(t(ctx.locale, "activities.cancel_for_short", title=service.title_of(activity, ctx.locale)[:12],
                                who=who[:8]), actions.make("acx", enrolment.id)))
    return [Reply(t(ctx.locale, "activities.mine_title") + "\n" + "\n".join(lines), rows(*buttons, per_row=1))]


# --- organisers ---------------------------------------------------------------------------------------

async def _organised(ctx: FlowContext, activity_id: str) -> Activity | None:
    aid = _id(activity_id)
    activity = await ctx.session.get(Activity, aid) if aid else None
    return activity if activity is not None and service.may_organise(ctx.user, activity) else None


async def manage(ctx: FlowContext) -> list[Reply]:
    conditions = [Activity.organiser_id == ctx.user.id]
    if _is_staff(ctx):
        conditions.append(Activity.community_code == ctx.user.community_code)
    found = list(await ctx.session.scalars(select(Activity).where(or_(*conditions),
                                                                  Activity.status == ActivityStatus.OPEN)
                                           .order_by(Activity.id).limit(30)))
    if not found:
        return [Reply(t(ctx.locale, "activities.none_to_manage"))]
    buttons = [Button(service.title_of(a, ctx.locale)[:30], actions.make("acg", "view", a.id)) for a in found]
    return [Reply(t(ctx.locale, "activities.manage_title"), rows(*buttons, per_row=1))]


async def on_organise(ctx: FlowContext, op: str, activity_id: str) -> list[Reply]:
    activity = await _organised(ctx, activity_id)
    if activity is None:
        return _not_allowed(ctx)
    now = utcnow()
    if op == "view":
        item = await service.listing(ctx.session, activity, now)
        text = t(ctx.locale, "activities.organiser_card", title=service.title_of(activity, ctx.locale),
                 holding=item.holding, capacity=activity.capacity, waiting=item.waiting, left=item.sessions_left,
                 status=t(ctx.locale, f"activities.status_{activity.status}"))
        buttons = [Button(t(ctx.locale, "activities.sessions"), actions.make("acg", "sessions", activity.id)),
                   Button(t(ctx.locale, "activities.participants"), actions.make("acg", "people", activity.id)),
                   Button(t(ctx.locale, "activities.stats_button"), actions.make("acg", "stats", activity.id))]
        if is_staff_for(ctx, activity.community_code):
            buttons.append(Button(t(ctx.locale, "activities.set_organiser"), actions.make("acg", "org", activity.id)))
            if activity.status == ActivityStatus.OPEN:
                buttons.append(Button(t(ctx.locale, "activities.cancel_activity"), actions.make("acg", "cancel", activity.id)))
        return [Reply(text, rows(*buttons, per_row=1))]
    if op == "sessions":
        recent = list(await ctx.session.scalars(select(ActivitySession).where(
            ActivitySession.activity_id == activity.id, ActivitySession.status != SessionStatus.CANCELLED,
            ActivitySession.ends_at > now - _DAY).order_by(ActivitySession.starts_at).limit(6)))
        if not recent:
            return [Reply(t(ctx.locale, "activities.no_sessions"))]
        buttons = []
        for meeting in recent:
            when = service.when_text(ctx.config, ctx.locale, meeting.starts_at)
            buttons.append(Button(t(ctx.locale, "activities.roll_for", when=when), actions.make("acs", "roll", meeting.id)))
            if meeting.status == SessionStatus.SCHEDULED and as_utc(meeting.starts_at) > now:
                buttons.append(Button(t(ctx.locale, "activities.cancel_session", when=when),
                                      actions.make("acs", "cancel", meeting.id)))
        return [Reply(t(ctx.locale, "activities.sessions_title", title=service.title_of(activity, ctx.locale)),
                      rows(*buttons))]
    if op == "people":
        people = await service._participants(ctx.session, activity.id, ACTIVE)
        lines = []
        for enrolment in people:
            person = await ctx.session.get(User, enrolment.user_id)
            child = await ctx.session.get(ActivityChild, enrolment.child_id) if enrolment.child_id else None
            name = (person.display_name if person else None) or "-"
            if child:
                name = t(ctx.locale, "activities.child_of", child=child.name, age=child.age,
                         klass=child.school_class or "-", guardian=name, pickup="、".join(child.pickup or []))
            lines.append(f"· {name} — {t(ctx.locale, f'activities.st_{enrolment.status}')}")
        return [Reply(t(ctx.locale, "activities.people_title", title=service.title_of(activity, ctx.locale)) + "\n"
                      + ("\n".join(lines) or t(ctx.locale, "activities.none")))]
    if op == "stats":
        return [Reply(await service.stats_text(ctx.session, ctx.config, activity.community_code, ctx.locale, [activity.id]))]
    if not is_staff_for(ctx, activity.community_code):
        return _not_allowed(ctx)
    if op == "cancel":
        return [Reply(t(ctx.locale, "activities.confirm_cancel_activity", title=activity.title),
                      rows(Button(t(ctx.locale, "activities.confirm_yes"), actions.make("acg", "cancely", activity.id))))]
    if op == "cancely":
        result, outbox = await service.cancel_activity(ctx.session, ctx.config, activity.id, ctx.user, now)
        if result != "ok":
            return [Reply(t(ctx.locale, "activities.already_done"))]
        await commit_and_deliver(ctx, outbox)
        return [Reply(t(ctx.locale, "activities.activity_cancelled", title=activity.title, told=len(outbox)))]
    if op == "org":
        volunteers = list(await ctx.session.scalars(select(Volunteer).where(
            Volunteer.community_code == activity.community_code, Volunteer.status == "approved")
            .order_by(Volunteer.name).limit(20)))
        if not volunteers:
            return [Reply(t(ctx.locale, "activities.no_volunteers"))]
        buttons = [Button(v.name[:20], actions.make("acv", activity.id, v.user_id)) for v in volunteers]
        return [Reply(t(ctx.locale, "activities.choose_organiser"), rows(*buttons))]
    return _stale(ctx)




async def set_organiser(ctx: FlowContext, activity_id: str, user_id: str) -> list[Reply]:
    activity = await _organised(ctx, activity_id)
    uid = _id(user_id)
    if activity is None or not is_staff_for(ctx, activity.community_code):
        return _not_allowed(ctx)
    volunteer = await ctx.session.get(Volunteer, uid) if uid else None
    if volunteer is None or volunteer.status != "approved" or volunteer.community_code != activity.community_code:
        return _stale(ctx)
    activity.organiser_id = volunteer.user_id
    activity.organiser_name = volunteer.name
    await commit_and_deliver(ctx, [])
    return [Reply(t(ctx.locale, "activities.organiser_set", name=volunteer.name, title=activity.title))]


async def on_session(ctx: FlowContext, op: str, session_id: str) -> list[Reply]:
    sid = _id(session_id)
    if sid is None:
        return _stale(ctx)
    now = utcnow()
    if op == "cancel":
        result, outbox = await service.cancel_session(ctx.session, ctx.config, sid, ctx.user, now)
        if result == "not_allowed":
            return _not_allowed(ctx)
        if result != "ok":
            return [Reply(t(ctx.locale, "activities.already_done"))]
        await commit_and_deliver(ctx, outbox)
        return [Reply(t(ctx.locale, "activities.session_cancelled", told=len(outbox)))]
    if op == "roll":
        return await roll_call(ctx, sid)
    if op == "done":
        result, present, total = await service.finish_roll(ctx.session, ctx.config, sid, ctx.user, now)
        if result == "not_allowed":
            return _not_allowed(ctx)
        if result == "too_early":
            return [Reply(t(ctx.locale, "activities.too_early"))]
        await commit_and_deliver(ctx, [])
        return [Reply(t(ctx.locale, "activities.roll_done" if result == "ok" else "activities.roll_already",
                        present=present, total=total))]
    return _stale(ctx)


async def roll_call(ctx: FlowContext, sid: int, *, replace: bool = False) -> list[Reply]:
    meeting = await ctx.session.get(ActivitySession, sid)
    activity = await ctx.session.get(Activity, meeting.activity_id) if meeting else None
    if meeting is None or activity is None or not service.may_organise(ctx.user, activity):
        return _not_allowed(ctx)
    entries = await service.roll(ctx.session, sid)
    buttons: list[Button] = []
    lines = []
    for entry in entries:
        mark = "✅" if entry.present else "⬜"
        buttons.append(Button(f"{mark} {entry.name[:16]}",
                              actions.make("acm", sid, entry.enrolment.id, 0 if entry.present else 1)))
        line = f"{mark} {entry.name}"
        if entry.child is not None:
            buttons.append(Button(t(ctx.locale, "activities.pickup_button", name=entry.name[:10]),
                                  actions.make("acp", sid, entry.enrolment.id)))
            if entry.picked_up_by:
                line += " — " + t(ctx.locale, "activities.picked_up" if entry.pickup_ok else "activities.picked_up_flag",
                                  name=entry.picked_up_by)
        lines.append(line)
    buttons.append(Button(t(ctx.locale, "activities.finish_roll"), actions.make("acs", "done", sid)))
    text = t(ctx.locale, "activities.roll_title", title=service.title_of(activity, ctx.locale),
             when=service.when_text(ctx.config, ctx.locale, meeting.starts_at, meeting.ends_at),
             present=sum(1 for e in entries if e.present), total=len(entries))
    return [Reply(text + "\n" + ("\n".join(lines) or t(ctx.locale, "activities.none")), rows(*buttons),
                  replace=replace)]


async def on_mark(ctx: FlowContext, session_id: str, enrolment_id: str, value: str) -> list[Reply]:
    sid, eid = _id(session_id), _id(enrolment_id)
    if sid is None or eid is None or value not in ("0", "1"):
        return _stale(ctx)
    result = await service.mark(ctx.session, sid, eid, ctx.user, value == "1", utcnow())
    if result == "not_allowed":
        return _not_allowed(ctx)
    if result != "ok":
        return [Reply(t(ctx.locale, "activities.already_done"))]
    await commit_and_deliver(ctx, [])
    return await roll_call(ctx, sid, replace=True)


async def ask_pickup(ctx: FlowContext, session_id: str, enrolment_id: str) -> list[Reply]:
    sid, eid = _id(session_id), _id(enrolment_id)
    if sid is None or eid is None:
        return _stale(ctx)
    meeting = await ctx.session.get(ActivitySession, sid)
    activity = await ctx.session.get(Activity, meeting.activity_id) if meeting else None
    enrolment = await ctx.session.get(ActivityEnrolment, eid)
    if (activity is None or enrolment is None or enrolment.activity_id != activity.id
            or not service.may_organise(ctx.user, activity)):
        return _not_allowed(ctx)
    if enrolment.child_id is None:
        return _stale(ctx)
    child = await ctx.session.get(ActivityChild, enrolment.child_id)
    ctx.state["ac_pickup"] = {"session": sid, "enrolment": eid}
    ctx.state["await"] = "ac_pickup"
    return [Reply(t(ctx.locale, "activities.ask_pickup_name", child=child.name if child else "-"))]


async def on_pickup_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    form = ctx.state.get("ac_pickup")
    if not isinstance(form, dict):
        ctx.state.pop("await", None)
        return _stale(ctx)
    name = clean_text(text)
    if not name or not rules.valid_name(name) or "\n" in name:
        return [Reply(t(ctx.locale, "activities.pickup_name_invalid", limit=rules.NAME_LIMIT))]
    ctx.state.pop("await", None)
    ctx.state.pop("ac_pickup", None)
    result, outbox = await service.record_pickup(ctx.session, ctx.config, int(form["session"]), int(form["enrolment"]),
                                                 ctx.user, name, utcnow())
    if result == "not_allowed":
        return _not_allowed(ctx)
    if result == "not_child":
        return _stale(ctx)
    await commit_and_deliver(ctx, outbox)
    reply = Reply(t(ctx.locale, "activities.pickup_ok" if result == "ok" else "activities.pickup_flag", name=name))
    return [reply, *(await roll_call(ctx, int(form["session"])))]


async def stats(ctx: FlowContext) -> list[Reply]:
    if not _is_staff(ctx):
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    return [Reply(await service.stats_text(ctx.session, ctx.config, ctx.user.community_code, ctx.locale))]


# --- a new activity (staff) --------------------------------------------------------------------------

async def start_new(ctx: FlowContext) -> list[Reply]:
    if not _is_staff(ctx):
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    ctx.state["ac_new"] = {}
    ctx.state["await"] = "ac_new_title"
    return [Reply(t(ctx.locale, "activities.ask_title", limit=rules.TITLE_LIMIT))]


def _schedule_prompt(ctx: FlowContext) -> Reply:
    ctx.state["await"] = "ac_new_schedule"
    return Reply(t(ctx.locale, "activities.ask_schedule"))


async def on_new_choice(ctx: FlowContext, value: str) -> list[Reply]:
    form = ctx.state.get("ac_new")
    if not isinstance(form, dict) or not _is_staff(ctx):
        return _stale(ctx)
    if value in ("children", "seniors", "everyone") and "title" in form and "audience" not in form:
        form["audience"] = value
        if value == "children":
            ctx.state["await"] = "ac_new_ages"
            return [Reply(t(ctx.locale, "activities.ask_ages"))]
        return [_schedule_prompt(ctx)]
    if value == "free" and ctx.state.get("await") == "ac_new_fee":
        form["fee"] = 0
        return [_new_summary(ctx)]
    if value == "save" and "fee" in form and not ctx.state.get("await"):
        return await _save_new(ctx)
    return _stale(ctx)


def _new_summary(ctx: FlowContext) -> Reply:
    form = ctx.state["ac_new"]
    ctx.state.pop("await", None)
    ages = f"{form['ages'][0]}-{form['ages'][1]}" if form.get("ages") else "-"
    return Reply(t(ctx.locale, "activities.new_summary", title=form["title"],
                   audience=t(ctx.locale, f"activities.audience_{form['audience']}"), ages=ages,
                   sessions=len(form["slots"]), first=form["first"], place=form["place"], capacity=form["capacity"],
                   fee=service.fee_text(ctx.locale, form["fee"])),
                 rows(Button(t(ctx.locale, "activities.save"), actions.make("acn", "save"))))


async def on_new_text(ctx: FlowContext, text: str | None) -> list[Reply]:
    form = ctx.state.get("ac_new")
    step = ctx.state.get("await")
    if not isinstance(form, dict) or not _is_staff(ctx):
        ctx.state.pop("await", None)
        return _stale(ctx)
    cleaned = clean_text(text)
    if step == "ac_new_title":
        if not cleaned or not has_words(cleaned) or len(cleaned) > rules.TITLE_LIMIT or "\n" in cleaned:
            return [Reply(t(ctx.locale, "activities.title_invalid", limit=rules.TITLE_LIMIT))]
        form["title"] = cleaned
        ctx.state.pop("await", None)
        return [Reply(t(ctx.locale, "activities.ask_audience"), rows(
            *(Button(t(ctx.locale, f"activities.audience_{a}"), actions.make("acn", a))
              for a in ("children", "seniors", "everyone"))))]
    if step == "ac_new_ages":
        ages = rules.parse_age_range(cleaned)
        if ages is None:
            return [Reply(t(ctx.locale, "activities.ages_invalid"))]
        form["ages"] = list(ages)
        return [_schedule_prompt(ctx)]
    if step == "ac_new_schedule":
        today = service.local(ctx.config, utcnow()).date()
        slots, error = rules.parse_schedule(cleaned, today)
        if error:
            return [Reply(t(ctx.locale, f"activities.schedule_{error}", limit=rules.MAX_SESSIONS))]
        form["slots"] = [[s.day.isoformat(), s.start.strftime("%H:%M"), s.end.strftime("%H:%M")] for s in slots]
        form["first"] = f"{slots[0].day:%m-%d} {slots[0].start:%H:%M}"
        ctx.state["await"] = "ac_new_place"
        return [Reply(t(ctx.locale, "activities.schedule_ok", count=len(slots), first=form["first"],
                        last=f"{slots[-1].day:%m-%d}") + "\n" + t(ctx.locale, "activities.ask_place"))]
    if step == "ac_new_place":
        if not cleaned or not has_words(cleaned) or len(cleaned) > rules.PLACE_LIMIT:
            return [Reply(t(ctx.locale, "activities.place_invalid", limit=rules.PLACE_LIMIT))]
        form["place"] = cleaned
        ctx.state["await"] = "ac_new_capacity"
        return [Reply(t(ctx.locale, "activities.ask_capacity", limit=rules.MAX_CAPACITY))]
    if step == "ac_new_capacity":
        capacity = rules.parse_int(cleaned, 1, rules.MAX_CAPACITY)
        if capacity is None:
            return [Reply(t(ctx.locale, "activities.capacity_invalid", limit=rules.MAX_CAPACITY))]
        form["capacity"] = capacity
        ctx.state["await"] = "ac_new_fee"
        return [Reply(t(ctx.locale, "activities.ask_fee"),
                      rows(Button(t(ctx.locale, "activities.free"), actions.make("acn", "free"))))]
    if step == "ac_new_fee":
        fee = rules.parse_int(cleaned, 0, rules.MAX_FEE)
        if fee is None:
            return [Reply(t(ctx.locale, "activities.fee_invalid", limit=rules.MAX_FEE),
                          rows(Button(t(ctx.locale, "activities.free"), actions.make("acn", "free"))))]
        form["fee"] = fee
        return [_new_summary(ctx)]
    ctx.state.pop("await", None)
    return _stale(ctx)


async def _save_new(ctx: FlowContext) -> list[Reply]:
    from datetime import date, time as dtime

    form = ctx.state.pop("ac_new")
    slots = [rules.Slot(date.fromisoformat(d), dtime.fromisoformat(s), dtime.fromisoformat(e)) for d, s, e in form["slots"]]
    spans = [slot.utc(service.tz(ctx.config)) for slot in slots]
    ages = form.get("ages") or [None, None]
    activity = await service.create_activity(
        ctx.session, community=ctx.user.community_code, title=form["title"], audience=form["audience"],
        place=form["place"], capacity=int(form["capacity"]), spans=spans, fee=float(form["fee"]), age_min=ages[0],
        age_max=ages[1], organiser_id=None, organiser_name=ctx.user.display_name, created_by=ctx.user.id,
        closes=spans[-1][0])
    await commit_and_deliver(ctx, [])
    return [Reply(t(ctx.locale, "activities.created", title=activity.title, sessions=len(spans)),
                  rows(Button(t(ctx.locale, "activities.organise"), actions.make("acg", "view", activity.id))))]


TEXT_STEPS = {"ac_child_name": on_child_text, "ac_child_age": on_child_text, "ac_child_class": on_child_text,
              "ac_child_pickup": on_child_text, "ac_pickup": on_pickup_text, "ac_new_title": on_new_text,
              "ac_new_ages": on_new_text, "ac_new_schedule": on_new_text, "ac_new_place": on_new_text,
              "ac_new_capacity": on_new_text, "ac_new_fee": on_new_text}


async def on_action(ctx: FlowContext, verb: str, args: tuple[str, ...]) -> list[Reply]:
    """One entry for every `ac*` verb (arity already checked by shared.flows.actions.parse)."""
    handlers = {
        "ac": lambda: on_menu(ctx, args[0]),
        "aco": lambda: open_activity(ctx, args[0]),
        "ace": lambda: enrol(ctx, args[0], args[1]),
        "acx": lambda: cancel(ctx, args[0]),
        "acy": lambda: answer(ctx, args[0], args[1]),
        "acc": lambda: on_child_choice(ctx, args[0]),
        "acn": lambda: on_new_choice(ctx, args[0]),
        "acg": lambda: on_organise(ctx, args[0], args[1]),
        "acv": lambda: set_organiser(ctx, args[0], args[1]),
        "acs": lambda: on_session(ctx, args[0], args[1]),
        "acm": lambda: on_mark(ctx, args[0], args[1], args[2]),
        "acp": lambda: ask_pickup(ctx, args[0], args[1]),
    }
    handler = handlers.get(verb)
    return await handler() if handler else _stale(ctx)
