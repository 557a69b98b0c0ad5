"""What staff and residents do to a request after intake, each a rule applied once here.

Every operation: checks the lifecycle with a conditional UPDATE (so a repeated
press changes nothing), records an event on the timeline, queues the
notifications, and returns their outbox ids for delivery after commit.
Authorisation is the caller's first step (see `shared.domain.permissions`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import utcnow
from shared.config import CommunitiesConfig
from shared.db.models import Referral, Request, RequestEvent, RequestFollower, User
from shared.db.upsert import insert_for
from shared.domain.permissions import is_private_category
from shared.domain.requests import OPEN_STATUSES, RequestStatus
from shared.flows import actions
from shared.flows.cards import staff_card
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import community_name, format_due
from shared.i18n import t
from shared.intake.outcome import route
from shared.repo.requests import add_event, transition

OutboxIds = list[int]


def _ids(*ids: int | None) -> OutboxIds:
    return [i for i in ids if i]


async def _event_count(session: AsyncSession, request_id: int, kind: str) -> int:
    stmt = select(func.count()).select_from(RequestEvent).where(RequestEvent.request_id == request_id,
                                                                RequestEvent.kind == kind)
    return int(await session.scalar(stmt) or 0)


def _locale(user: User | None) -> str:
    return (user.locale if user else None) or "zh"


async def _mark_first_response(session: AsyncSession, request: Request, now: datetime) -> None:
    await session.execute(update(Request).where(Request.id == request.id, Request.first_response_at.is_(None))
                          .values(first_response_at=now))


# --- staff ---------------------------------------------------------------------------------

async def take(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User) -> OutboxIds | None:
    now = utcnow()
    updated = await transition(session, request.id, RequestStatus.IN_PROGRESS,
                               only_from={RequestStatus.ROUTED}, assignee_id=staff.id)
    if updated is None:
        return None
    await _mark_first_response(session, request, now)
    await add_event(session, request.id, "taken", actor=f"user:{staff.id}")
    resident = await notify.resident_of(session, request)
    group = Reply(t(notify.STAFF_LOCALE, "staff.taken_group", name=staff.display_name or "-", number=request.number))
    return _ids(
        await notify.to_resident(session, request, "taken", Reply(t(_locale(resident), "requests.taken", number=request.number))),
        *await notify.to_staff_group(session, config, request, f"taken:{staff.id}", group),
        *await notify.to_followers(session, request, "taken", "requests.taken"),
    )


async def staff_reply(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User, text: str) -> OutboxIds | None:
    if request.status not in OPEN_STATUSES and request.status != RequestStatus.RESOLVED:
        return None
    await _mark_first_response(session, request, utcnow())
    seq = await _event_count(session, request.id, "staff_reply") + 1
    await add_event(session, request.id, "staff_reply", actor=f"user:{staff.id}", text=text)
    resident = await notify.resident_of(session, request)
    locale = _locale(resident)
    reply = Reply(t(locale, "requests.staff_reply", community=community_name(config, request.community_code, locale),
                    number=request.number, text=text),
                  rows(Button(t(locale, "requests.answer"), actions.make("ans", request.id))))
    return _ids(await notify.to_resident(session, request, f"staff_reply:{seq}", reply),
                *await notify.to_followers(session, request, f"staff_reply:{seq}", "requests.follower_update", text=text))


async def change_category(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User, label: str) -> OutboxIds | None:
    ids = await route(session, config, request, label, urgent=request.urgent, confidence=None,
                      actor=f"user:{staff.id}", only_from={RequestStatus.ROUTED, RequestStatus.IN_PROGRESS})
    if not ids and (await session.get(Request, request.id)).category != label:
        return None
    await add_event(session, request.id, "category_changed", actor=f"user:{staff.id}", label=label)
    return ids


async def reassign(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User, community: str) -> OutboxIds | None:
    if request.status not in (RequestStatus.ROUTED, RequestStatus.IN_PROGRESS) or community == request.community_code:
        return None
    await session.execute(update(Request).where(Request.id == request.id).values(community_code=community, assignee_id=None))
    await add_event(session, request.id, "reassigned", actor=f"user:{staff.id}", to=community,
                    **{"from": request.community_code})
    moved = await session.get(Request, request.id)
    await session.refresh(moved)
    return await route(session, config, moved, moved.category or "other", urgent=moved.urgent, confidence=moved.confidence,
                       actor=f"user:{staff.id}", only_from={RequestStatus.ROUTED, RequestStatus.IN_PROGRESS})


async def resolve(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User) -> OutboxIds | None:
    now = utcnow()
    updated = await transition(session, request.id, RequestStatus.RESOLVED, resolved_at=now, followup_stage=0)
    if updated is None:
        return None
    await _mark_first_response(session, request, now)
    seq = await _event_count(session, request.id, "resolved") + 1
    await add_event(session, request.id, "resolved", actor=f"user:{staff.id}")
    return _ids(await notify.to_resident(session, request, f"followup:{seq}", await followup_question(session, updated)),
                *await notify.to_followers(session, request, f"resolved:{seq}", "requests.follower_resolved"))


async def followup_question(session: AsyncSession, request: Request, *, reminder: bool = False) -> Reply:
    locale = _locale(await notify.resident_of(session, request))
    key = "requests.followup_reminder" if reminder else "requests.followup_ask"
    return Reply(t(locale, key, number=request.number),
                 rows(Button(t(locale, "requests.followup_yes"), actions.make("fu", request.id, "yes")),
                      Button(t(locale, "requests.followup_no"), actions.make("fu", request.id, "no"))))


# --- residents -----------------------------------------------------------------------------

def _group_text(request: Request, text: str) -> str:
    return t(notify.STAFF_LOCALE, "staff.hidden_text") if is_private_category(request.category) else notify.excerpt(text)


async def _tell_team(session: AsyncSession, config: CommunitiesConfig, request: Request, key: str, reply: Reply) -> OutboxIds:
    """To the assignee privately when there is one, else to the community's staff group(s)."""
    if request.assignee_id:
        assignee = await session.get(User, request.assignee_id)
        return _ids(await notify.to_user(session, assignee, f"{key}:{request.id}", reply, request.id))
    return await notify.to_staff_group(session, config, request, key, reply)


async def resident_answer(session: AsyncSession, config: CommunitiesConfig, request: Request, user: User, text: str) -> OutboxIds | None:
    if request.status not in OPEN_STATUSES and request.status != RequestStatus.RESOLVED:
        return None
    seq = await _event_count(session, request.id, "resident_reply") + 1
    await add_event(session, request.id, "resident_reply", actor=f"user:{user.id}", text=text)
    body = text if request.assignee_id else _group_text(request, text)
    reply = Reply(t(notify.STAFF_LOCALE, "staff.resident_answer", number=request.number, text=body),
                  rows(Button(t(notify.STAFF_LOCALE, "staff.reply"), actions.make("st", "reply", request.id))))
    return await _tell_team(session, config, request, f"resident_reply:{seq}", reply)


async def add_info(session: AsyncSession, config: CommunitiesConfig, request: Request, user: User, text: str,
                   attachments: list | None = None) -> OutboxIds | None:
    if request.status not in OPEN_STATUSES:
        return None
    seq = await _event_count(session, request.id, "info_added") + 1
    await add_event(session, request.id, "info_added", actor=f"user:{user.id}", text=text,
                    attachments=len(attachments or []))
    if attachments:
        await session.execute(update(Request).where(Request.id == request.id)
                              .values(attachments=[*(request.attachments or []), *attachments]))
    if request.status in (RequestStatus.RECEIVED, RequestStatus.NEEDS_CATEGORY):
        return []
    body = text if request.assignee_id else _group_text(request, text)
    reply = Reply(t(notify.STAFF_LOCALE, "staff.info_added", number=request.number, text=body))
    return await _tell_team(session, config, request, f"info_added:{seq}", reply)


async def withdraw(session: AsyncSession, config: CommunitiesConfig, request: Request, user: User) -> OutboxIds | None:
    updated = await transition(session, request.id, RequestStatus.WITHDRAWN, closed_at=utcnow())
    if updated is None:
        return None
    await add_event(session, request.id, "withdrawn", actor=f"user:{user.id}")
    if request.status in (RequestStatus.RECEIVED, RequestStatus.NEEDS_CATEGORY):
        return []
    return await _tell_team(session, config, request, "withdrawn",
                            Reply(t(notify.STAFF_LOCALE, "staff.withdrawn", number=request.number)))


async def followup_answer(session: AsyncSession, config: CommunitiesConfig, request: Request, user: User, solved: bool) -> OutboxIds | None:
    if request.status != RequestStatus.RESOLVED or request.solved is not None and solved:
        return None
    locale = _locale(user)
    if solved:
        result = await session.execute(update(Request).where(Request.id == request.id, Request.status == RequestStatus.RESOLVED,
                                                              Request.solved.is_(None)).values(solved=True))
        if result.rowcount != 1:
            return None
        await add_event(session, request.id, "solved", actor=f"user:{user.id}")
        buttons = [Button(str(n), actions.make("rate", request.id, n)) for n in range(1, 6)]
        return _ids(await notify.to_resident(session, request, f"rate_ask:{await _event_count(session, request.id, 'solved')}",
                                             Reply(t(locale, "requests.rate_ask"), rows(*buttons, per_row=5))))
    updated = await transition(session, request.id, RequestStatus.IN_PROGRESS, only_from={RequestStatus.RESOLVED},
                               solved=None, resolved_at=None)
    if updated is None:
        return None
    seq = await _event_count(session, request.id, "reopened") + 1
    await add_event(session, request.id, "reopened", actor=f"user:{user.id}")
    card = staff_card(config, updated, notify.STAFF_LOCALE, in_group=True)
    return _ids(
        await notify.to_resident(session, request, f"reopened:{seq}", Reply(t(locale, "requests.reopened", number=request.number))),
        *await notify.to_staff_group(session, config, request, f"reopened:{seq}",
                                    Reply(t(notify.STAFF_LOCALE, "staff.reopened", number=request.number) + "\n\n" + card.text,
                                          card.buttons)),
    )


async def rate(session: AsyncSession, request: Request, user: User, rating: int) -> bool:
    if not 1 <= rating <= 5:
        return False
    updated = await transition(session, request.id, RequestStatus.CLOSED, only_from={RequestStatus.RESOLVED},
                               rating=rating, solved=True, closed_at=utcnow())
    if updated is None:
        return False
    await add_event(session, request.id, "rated", actor=f"user:{user.id}", rating=rating)
    return True


async def comment(session: AsyncSession, request: Request, user: User, text: str) -> None:
    await add_event(session, request.id, "commented", actor=f"user:{user.id}", text=text)


# --- duplicates ------------------------------------------------------------------------------

MERGEABLE = frozenset({RequestStatus.ROUTED, RequestStatus.IN_PROGRESS})


def merge_refusal(duplicate: Request, into: Request) -> str | None:
    """Why `duplicate` cannot be merged into `into` as they stand (None: it may be).

    "self": the same request; "other_community": another community's request; "target_closed":
    the target is no longer open (closed, withdrawn or itself merged away); "not_open": the
    duplicate is not being handled (only routed or in-progress requests are merged).
    """
    if into.id == duplicate.id:
        return "self"
    if into.community_code != duplicate.community_code:
        return "other_community"
    if into.status not in OPEN_STATUSES:
        return "target_closed"
    if duplicate.status not in MERGEABLE:
        return "not_open"
    return None


async def _close_as_duplicate(session: AsyncSession, duplicate: Request, into: Request, actor: str) -> bool:
    if merge_refusal(duplicate, into) is not None:
        return False
    closed = await transition(session, duplicate.id, RequestStatus.CLOSED,
                              only_from=set(MERGEABLE), duplicate_of_id=into.id, closed_at=utcnow())
    if closed is None:
        return False
    if duplicate.user_id is not None and duplicate.user_id != into.user_id:
        stmt = insert_for(session, RequestFollower).values(request_id=into.id, user_id=duplicate.user_id)
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["request_id", "user_id"]))
    await add_event(session, duplicate.id, "merged_into", actor=actor, number=into.number)
    await add_event(session, into.id, "follower_added", actor=actor, number=duplicate.number)
    return True


async def follow_instead(session: AsyncSession, config: CommunitiesConfig, new: Request, existing: Request, user: User) -> OutboxIds | None:
    """The resident chose to follow an existing request instead of their new one."""
    if not await _close_as_duplicate(session, new, existing, f"user:{user.id}"):
        return None
    group = Reply(t(notify.STAFF_LOCALE, "staff.merged", number=new.number, into=existing.number))
    return await notify.to_staff_group(session, config, new, "merged", group)


async def merge(session: AsyncSession, config: CommunitiesConfig, duplicate: Request, into: Request, staff: User) -> OutboxIds | None:
    """Staff merge a duplicate into another request; its reporter follows that one from now on."""
    if not await _close_as_duplicate(session, duplicate, into, f"user:{staff.id}"):
        return None
    resident = await notify.resident_of(session, duplicate)
    reply = Reply(t(_locale(resident), "requests.merged", number=duplicate.number, into=into.number))
    return _ids(await notify.to_resident(session, duplicate, "merged", reply))


# --- outside referral ---------------------------------------------------------------------------

async def refer(session: AsyncSession, config: CommunitiesConfig, request: Request, staff: User, body_code: str,
                reference: str) -> OutboxIds | None:
    body = config.referral_body(body_code)
    if body is None or request.status not in (RequestStatus.ROUTED, RequestStatus.IN_PROGRESS):
        return None
    now = utcnow()
    deadline = now + timedelta(days=body.deadline_days)
    session.add(Referral(request_id=request.id, body=body.code, reference=reference, deadline=deadline))
    await _mark_first_response(session, request, now)
    seq = await _event_count(session, request.id, "referred") + 1
    await add_event(session, request.id, "referred", actor=f"user:{staff.id}", body=body.code, reference=reference,
                    deadline=deadline.isoformat())
    resident = await notify.resident_of(session, request)
    locale = _locale(resident)
    reply = Reply(t(locale, "requests.referred", number=request.number, body=body.name.get(locale, body.name["zh"]),
                    reference=reference, deadline=format_due(config, locale, deadline)))
    return _ids(await notify.to_resident(session, request, f"referred:{seq}", reply))


async def referral_answered(session: AsyncSession, request: Request, staff: User) -> bool:
    referral = await session.scalar(select(Referral).where(Referral.request_id == request.id, Referral.answered_at.is_(None))
                                    .order_by(Referral.id.desc()))
    if referral is None:
        return False
    result = await session.execute(update(Referral).where(Referral.id == referral.id, Referral.answered_at.is_(None))
                                   .values(answered_at=utcnow()))
    if result.rowcount != 1:
        return False
    await add_event(session, request.id, "referral_answered", actor=f"user:{staff.id}", body=referral.body,
                    reference=referral.reference)
    return True
