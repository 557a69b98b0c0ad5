"""Apply an intake decision to a request: status, timeline, notifications.

Used by the intake worker (after classification) and by the bot (when the
resident picks a category). Every step is a conditional UPDATE, so running it
twice for the same request changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import utcnow
from shared.config import CommunitiesConfig
from shared.db.models import Request, User
from shared.domain.requests import RequestStatus
from shared.domain.routing import decide_route
from shared.flows import actions
from shared.flows.menu import main_menu_buttons
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name, community_name, format_due
from shared.i18n import t
from shared.repo.outbox import queue_notification
from shared.repo.requests import add_event, transition
from shared.taxonomy import LABELS

STAFF_LOCALE = "zh"
STAFF_TEXT_LIMIT = 1000


@dataclass(frozen=True)
class IntakeDecision:
    """What the classifier concluded, in the shared vocabulary (no model types)."""

    label: str
    urgent: bool
    confidence: float
    decided: bool
    choices: tuple[str, ...] = field(default_factory=tuple)
    rule: str | None = None


async def _resident(session: AsyncSession, request: Request) -> User | None:
    return await session.get(User, request.user_id) if request.user_id else None


async def _notify_resident(
    session: AsyncSession, request: Request, user: User | None, key: str, reply: Reply
) -> int | None:
    if user is None:
        return None
    return await queue_notification(
        session,
        key=f"{key}:{request.id}",
        chat_id=user.external_id,
        platform=user.platform,
        text=reply.text,
        options=reply.options_json(),
        request_id=request.id,
    )


async def _notify_staff(
    session: AsyncSession, config: CommunitiesConfig, request: Request, key: str, text: str
) -> int | None:
    chat_id = config.community(request.community_code).staff_chat_id
    if chat_id is None:
        return None
    return await queue_notification(session, key=f"{key}:{request.id}", chat_id=chat_id, text=text, request_id=request.id)


def _staff_text(request: Request) -> str:
    body = request.text if len(request.text) <= STAFF_TEXT_LIMIT else request.text[:STAFF_TEXT_LIMIT] + "…"
    return body


async def apply_decision(
    session: AsyncSession, config: CommunitiesConfig, request: Request, decision: IntakeDecision, *, now: datetime | None = None
) -> list[int]:
    """Record intake's conclusion for a `received` request; returns outbox ids to deliver."""
    now = now or utcnow()
    if decision.decided or decision.urgent:
        return await route(session, config, request, decision.label, urgent=decision.urgent,
                           confidence=decision.confidence, actor="intake", rule=decision.rule,
                           only_from={RequestStatus.RECEIVED}, now=now)
    updated = await transition(
        session, request.id, RequestStatus.NEEDS_CATEGORY, only_from={RequestStatus.RECEIVED},
        confidence=decision.confidence,
    )
    if updated is None:
        return []
    choices = [label for label in decision.choices if label in LABELS and label != "other"][:3]
    await add_event(session, request.id, "classified", label=decision.label, confidence=round(decision.confidence, 3),
                    decided=False, choices=choices)
    user = await _resident(session, request)
    locale = user.locale if user else "zh"
    buttons = [Button(category_name(locale, label), actions.make("cat", request.id, label)) for label in [*choices, "other"]]
    reply = Reply(t(locale, "intake.choose", number=request.number), rows(*buttons))
    outbox_id = await _notify_resident(session, updated, user, "choose", reply)
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
) -> list[int]:
    """Send a request to its team (or close it into a programme flow / the menu)."""
    now = now or utcnow()
    decision = decide_route(config, request.community_code, label, urgent=urgent, now=now)
    user = await _resident(session, request)
    locale = user.locale if user else "zh"
    outbox: list[int | None] = []

    if not decision.opens_request:
        updated = await transition(session, request.id, RequestStatus.CLOSED, only_from=only_from,
                                   category=label, confidence=confidence, urgent=False)
        if updated is None:
            return []
        await add_event(session, request.id, "redirected", actor=actor, label=label, redirect=decision.redirect,
                        confidence=confidence, rule=rule)
        if decision.redirect == "menu":
            reply = Reply(t(locale, "intake.not_request"), main_menu_buttons(locale))
        else:
            detail = t(locale, "intake.redirect_detail", number=request.number)
            reply = Reply(t(locale, f"intake.redirect_{decision.redirect}", detail=detail))
        outbox.append(await _notify_resident(session, updated, user, "redirect", reply))
        return [i for i in outbox if i]

    updated = await transition(session, request.id, RequestStatus.ROUTED, only_from=only_from, category=label,
                               confidence=confidence, urgent=urgent, team=decision.team, due_at=decision.due_at)
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
        outbox.append(await _notify_staff(session, config, updated, "staff_urgent", t(
            STAFF_LOCALE, "intake.staff_urgent", number=request.number,
            community=community_name(config, request.community_code, STAFF_LOCALE),
            category=category_name(STAFF_LOCALE, label), text=_staff_text(request))))
    else:
        outbox.append(await _notify_staff(session, config, updated, "staff_new", t(
            STAFF_LOCALE, "intake.staff_new", number=request.number,
            community=community_name(config, request.community_code, STAFF_LOCALE),
            category=category_name(STAFF_LOCALE, label),
            team=config.team_name(request.community_code, decision.team, STAFF_LOCALE),
            due=format_due(config, STAFF_LOCALE, decision.due_at) if decision.due_at else "", text=_staff_text(request))))
    outbox.append(await _notify_resident(session, updated, user, "routed", Reply(text)))
    return [i for i in outbox if i]
