"""Apply an intake decision to a request: status, timeline, notifications.

Used by the intake worker (after classification), by the bot (when the resident
picks a category) and by staff (change category, reassign). Every step is a
conditional UPDATE, so running it twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify, volunteering
from shared.clock import utcnow
from shared.config import CommunitiesConfig
from shared.db.models import Request
from shared.domain.requests import RequestStatus
from shared.domain.routing import decide_route
from shared.flows import actions
from shared.flows.cards import staff_card
from shared.flows.menu import main_menu_buttons
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name, format_due
from shared.i18n import t
from shared.repo.duplicates import find_duplicate
from shared.repo.requests import add_event, transition
from shared.taxonomy import LABELS


@dataclass(frozen=True)
class IntakeDecision:
    """What the classifier concluded, in the shared vocabulary (no model types)."""

    label: str
    urgent: bool
    confidence: float
    decided: bool
    choices: tuple[str, ...] = field(default_factory=tuple)
    rule: str | None = None


async def apply_decision(
    session: AsyncSession, config: CommunitiesConfig, request: Request, decision: IntakeDecision, *, now: datetime | None = None
) -> list[int]:
    """Record intake's conclusion for a `received` request; returns outbox ids to deliver."""
    if decision.decided or decision.urgent:
        return await route(session, config, request, decision.label, urgent=decision.urgent,
                           confidence=decision.confidence, actor="intake", rule=decision.rule,
                           only_from={RequestStatus.RECEIVED}, now=now, offer_duplicate=True)
    updated = await transition(session, request.id, RequestStatus.NEEDS_CATEGORY, only_from={RequestStatus.RECEIVED},
                               confidence=decision.confidence)
    if updated is None:
        return []
    choices = [label for label in decision.choices if label in LABELS and label != "other"][:3]
    await add_event(session, request.id, "classified", label=decision.label, confidence=round(decision.confidence, 3),
                    decided=False, choices=",".join(choices))
    user = await notify.resident_of(session, request)
    locale = user.locale if user else "zh"
    buttons = [Button(category_name(locale, label), actions.make("cat", request.id, label)) for label in [*choices, "other"]]
    reply = Reply(t(locale, "intake.choose", number=request.number), rows(*buttons))
    outbox_id = await notify.to_resident(session, updated, "choose", reply)
    return [outbox_id] if outbox_id else []


async def route(
    session: AsyncSession,
    config: CommunitiesConfig,
    request: Request,
    label: str,
    *,
    urgent: bool,
    confidence: float | None,
    actor: str,
    only_from: set[str],
    rule: str | None = None,
    now: datetime | None = None,
    offer_duplicate: bool = False,
) -> list[int]:
    """Send a request to its community's team (or close it into a programme flow / the menu)."""
    now = now or utcnow()
    decision = decide_route(config, request.community_code, label, urgent=urgent, now=now)
    user = await notify.resident_of(session, request)
    locale = user.locale if user else "zh"
    outbox: list[int | None] = []
    # A request can be routed more than once (staff change category or community): each routing is its own notice.
    revision = f"{request.community_code}:{label}"

    if not decision.opens_request:
        updated = await transition(session, request.id, RequestStatus.CLOSED, only_from=only_from,
                                   category=label, confidence=confidence, urgent=False, closed_at=now)
        if updated is None:
            return []
        await add_event(session, request.id, "redirected", actor=actor, label=label, redirect=decision.redirect,
                        confidence=confidence, rule=rule)
        if decision.redirect == "menu":
            reply = Reply(t(locale, "intake.not_request"), main_menu_buttons(locale))
        elif decision.redirect == "fridge":
            # Into the fridge flow: what is in it, donate, alerts — one tap.
            reply = Reply(t(locale, "fridge.redirect", number=request.number),
                          rows(Button(t(locale, "fridge.open"), actions.make("menu", "fridge"))))
        elif decision.redirect == "volunteer":
            reply = Reply(t(locale, "intake.redirect_volunteer", detail=""),
                          rows(Button(t(locale, "volunteer.register"), actions.make("vr", "start"))))
        elif decision.redirect == "books":
            reply = Reply(t(locale, "books.intake_redirect"),
                          rows(Button(t(locale, "books.menu_button"), actions.make("bk", "menu"))))
        else:
            detail = t(locale, "intake.redirect_detail", number=request.number)
            reply = Reply(t(locale, f"intake.redirect_{decision.redirect}", detail=detail))
        outbox.append(await notify.to_resident(session, updated, f"redirect:{revision}", reply))
        return [i for i in outbox if i]

    updated = await transition(session, request.id, RequestStatus.ROUTED, only_from=only_from, category=label,
                               confidence=confidence, urgent=urgent, team=decision.team, due_at=decision.due_at,
                               sla_stage=0)
    if updated is None:
        return []
    await add_event(session, request.id, "routed", actor=actor, label=label, team=decision.team, urgent=urgent,
                    due_at=decision.due_at.isoformat() if decision.due_at else None, confidence=confidence, rule=rule)
    team_name = config.team_name(request.community_code, decision.team, locale)
    due = format_due(config, locale, decision.due_at) if decision.due_at else ""
    text = t(locale, "intake.routed", number=request.number, team=team_name, category=category_name(locale, label), due=due)
    if urgent:
        # Emergency numbers first, in the same message, so nothing can overtake them.
        text = t(locale, "intake.urgent_first") + "\n\n" + text
    route_config = config.route(request.community_code, label)
    if decision.volunteer_task and route_config.task_skill and not await volunteering.has_active_task(session, request.id):
        start, end = volunteering.default_window(now, decision.due_at)
        _task, task_outbox = await volunteering.create_task(
            session, config, community=request.community_code, skill=route_config.task_skill,
            title=f"{category_name('zh', label)} {request.number}", details=request.text, place=None,
            window_start=start, window_end=end, source="request", request_id=request.id)
        outbox.extend(task_outbox)
    card = staff_card(config, updated, notify.STAFF_LOCALE, in_group=True,
                      headline="staff.card_urgent" if urgent else "staff.card_new")
    outbox += await notify.to_staff_group(session, config, updated, f"staff_new:{revision}", card)
    buttons: tuple = ()
    if label in ("youth", "culture") and not urgent:
        # Parents and seniors usually want to sign up: matching activities with free places come first.
        from shared.activities import intake_offer

        offer = await intake_offer(session, request.community_code, label, request.text or "", locale, now)
        if offer is not None:
            text = offer.text + "\n\n" + text
            buttons = offer.buttons
    if offer_duplicate and not urgent:
        existing = await find_duplicate(session, updated, threshold=config.defaults.duplicate_similarity)
        if existing is not None:
            text += "\n\n" + t(locale, "requests.duplicate_offer", number=existing.number)
            buttons = (*buttons, *rows(Button(t(locale, "requests.follow_existing", number=existing.number),
                                              actions.make("dup", request.id, existing.id))))
    outbox.append(await notify.to_resident(session, updated, f"routed:{revision}", Reply(text, buttons)))
    return [i for i in outbox if i]
