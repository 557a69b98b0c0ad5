"""Volunteer registration: name → skills → weekly availability → phone (optional) → named or not."""

from __future__ import annotations

import re

from sqlalchemy import select

from shared import volunteering
from shared.db.models import Volunteer
from shared.domain.tasks import DAYS, PARTS
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t

NAME_LIMIT = 40
PHONE = re.compile(r"^\+?\d[\d\- ]{5,18}\d$")


def _form(ctx: FlowContext) -> dict:
    return ctx.state.setdefault("vol", {"skills": [], "days": [], "parts": []})


def _mark(selected: bool, text: str) -> str:
    return ("✅ " if selected else "") + text


def skills_prompt(ctx: FlowContext, replace: bool = False) -> Reply:
    form = _form(ctx)
    buttons = [Button(_mark(s.code in form["skills"], volunteering.skill_name(ctx.config, s.code, ctx.locale)),
                      actions.make("vs", s.code)) for s in ctx.config.defaults.volunteer_skills]
    buttons.append(Button(t(ctx.locale, "volunteer.next"), actions.make("vs", "done")))
    return Reply(t(ctx.locale, "volunteer.ask_skills"), rows(*buttons, per_row=2), replace=replace)


def availability_prompt(ctx: FlowContext, replace: bool = False) -> Reply:
    form = _form(ctx)
    days = [Button(_mark(d in form["days"], t(ctx.locale, f"volunteer.day_{d}")), actions.make("va", d)) for d in DAYS]
    parts = [Button(_mark(p in form["parts"], t(ctx.locale, f"volunteer.part_{p}")), actions.make("va", p)) for p in PARTS]
    done = Button(t(ctx.locale, "volunteer.next"), actions.make("va", "done"))
    return Reply(t(ctx.locale, "volunteer.ask_availability"),
                 (*rows(*days, per_row=4), tuple(parts), (done,)), replace=replace)


async def start(ctx: FlowContext) -> list[Reply]:
    existing = await ctx.session.get(Volunteer, ctx.user.id)
    if existing is not None and existing.status == "pending":
        return [Reply(t(ctx.locale, "volunteer.already_pending"))]
    ctx.state.clear()
    ctx.state["await"] = "vol_name"
    return [Reply(t(ctx.locale, "volunteer.ask_name"))]


async def on_name(ctx: FlowContext, text: str | None) -> list[Reply]:
    name = clean_text(text)
    if not name or not has_words(name) or len(name) > NAME_LIMIT:
        return [Reply(t(ctx.locale, "report.behalf_name_invalid", limit=NAME_LIMIT))]
    ctx.state.pop("await", None)
    _form(ctx)["name"] = name
    return [skills_prompt(ctx)]


async def on_skill(ctx: FlowContext, code: str) -> list[Reply]:
    form = ctx.state.get("vol")
    if form is None or "name" not in form:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    if code == "done":
        if not form["skills"]:
            return [Reply(t(ctx.locale, "volunteer.pick_one"))]
        return [availability_prompt(ctx)]
    if ctx.config.skill(code) is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    form["skills"] = sorted(set(form["skills"]) ^ {code})
    return [skills_prompt(ctx, replace=True)]


async def on_availability(ctx: FlowContext, code: str) -> list[Reply]:
    form = ctx.state.get("vol")
    if form is None or not form.get("skills"):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    if code == "done":
        if not form["days"] or not form["parts"]:
            return [Reply(t(ctx.locale, "volunteer.pick_one"))]
        ctx.state["await"] = "vol_phone"
        return [Reply(t(ctx.locale, "volunteer.ask_phone"),
                      rows(Button(t(ctx.locale, "volunteer.skip_phone"), actions.make("vp", "skip"))))]
    key = "days" if code in DAYS else "parts" if code in PARTS else None
    if key is None:
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    form[key] = [x for x in (DAYS if key == "days" else PARTS) if (x in form[key]) != (x == code)]
    return [availability_prompt(ctx, replace=True)]


def _named_prompt(ctx: FlowContext) -> Reply:
    return Reply(t(ctx.locale, "volunteer.ask_named"),
                 rows(Button(t(ctx.locale, "volunteer.named_yes"), actions.make("vn", "yes")),
                      Button(t(ctx.locale, "volunteer.named_no"), actions.make("vn", "no"))))


async def on_phone(ctx: FlowContext, text: str | None) -> list[Reply]:
    phone = clean_text(text)
    if not PHONE.match(phone):
        return [Reply(t(ctx.locale, "volunteer.phone_invalid"))]
    ctx.state.pop("await", None)
    _form(ctx)["phone"] = re.sub(r"[\s\-]", "", phone)
    return [_named_prompt(ctx)]


async def skip_phone(ctx: FlowContext) -> list[Reply]:
    if ctx.state.get("await") != "vol_phone":
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ctx.state.pop("await", None)
    _form(ctx)["phone"] = None
    return [_named_prompt(ctx)]


async def on_named(ctx: FlowContext, answer: str) -> list[Reply]:
    form = ctx.state.get("vol")
    if form is None or not form.get("days") or "phone" not in form or answer not in ("yes", "no"):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ctx.state.clear()
    ids = await volunteering.register(ctx.session, ctx.config, ctx.user, name=form["name"], skills=form["skills"],
                                      days=form["days"], parts=form["parts"], phone=form["phone"], named=answer == "yes")
    await commit_and_deliver(ctx, ids)
    volunteer = await ctx.session.get(Volunteer, ctx.user.id)
    return [Reply(t(ctx.locale, "volunteer.updated" if volunteer.status == "approved" else "volunteer.submitted"))]


async def decide(ctx: FlowContext, answer: str, user_id: str) -> list[Reply]:
    volunteer = await ctx.session.scalar(select(Volunteer).where(Volunteer.user_id == int(user_id))) \
        if user_id.isdigit() else None
    if volunteer is None or not is_staff_for(ctx, volunteer.community_code):
        return [Reply(t(ctx.locale, "staff.not_staff"))]
    if answer not in ("ok", "no"):
        return [Reply(t(ctx.locale, "errors.stale_button"))]
    ids = await volunteering.decide(ctx.session, ctx.config, volunteer.user_id, ctx.user, answer == "ok")
    if ids is None:
        return [Reply(t(ctx.locale, "volunteer.already_decided", name=volunteer.name))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "volunteer.staff_approved" if answer == "ok" else "volunteer.staff_declined",
                    name=volunteer.name))]
