"""A person's own data (PIPL): see all of it (/mydata), erase it (/forgetme) without breaking statistics.

Erasing keeps each request's community, category, status and times (the statistics) and
removes what identifies or describes the person: names, phone, message bodies, photos,
locations, the chat id, the text of notifications sent to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import activities, deliberation, fridge_privacy
from shared.clock import utcnow
from shared.config import CommunitiesConfig
from shared.db.models import OutboxMessage, Request, RequestEvent, Task, User, Volunteer
from shared.mediation import export_party_data, forget_party

ERASED = "[已删除 erased]"
PERSONAL_EVENT_FIELDS = ("text", "name", "reference")


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def export_user_data(session: AsyncSession, user: User) -> dict[str, Any]:
    requests = list(await session.scalars(select(Request).where(Request.user_id == user.id).order_by(Request.id)))
    volunteer = await session.get(Volunteer, user.id)
    tasks = list(await session.scalars(select(Task).where(Task.claimer_id == user.id).order_by(Task.id)))
    from shared.linking import links_of

    links = await links_of(session, user)
    return {
        "linked_accounts": [{"platform": link.platform, "id": link.external_id} for link in links],
        "account": {"platform": user.platform, "id": user.external_id, "name": user.display_name,
                    "locale": user.locale, "community": user.community_code, "roles": user.roles,
                    "consent_at": _iso(user.consent_at), "created_at": _iso(user.created_at)},
        "requests": [{"number": r.number, "text": r.text, "category": r.category, "status": r.status,
                      "on_behalf_of": r.on_behalf_name, "attachments": len(r.attachments or []),
                      "rating": r.rating, "created_at": _iso(r.created_at)} for r in requests],
        "volunteer": None if volunteer is None else {
            "name": volunteer.name, "skills": volunteer.skills, "days": volunteer.days, "parts": volunteer.parts,
            "phone": volunteer.phone, "share_phone": volunteer.share_phone, "status": volunteer.status},
        "tasks": [{"title": t.title, "status": t.status, "hours": t.confirmed_hours or t.hours} for t in tasks],
        "mediation": await export_party_data(session, user),
        "deliberation": await deliberation.export_user_data(session, user),
        "activities": await activities.export_data(session, user),
        "fridge": await fridge_privacy.export(session, user),
        "books": await book_privacy.export(session, user),
    }


async def forget_user(session: AsyncSession, user: User, config: CommunitiesConfig | None = None,
                      now: datetime | None = None) -> list[int]:
    """Erase the person; returns the outbox ids of notes it queued (others told a book has gone)."""
    outbox = await book_privacy.forget(session, config, user, now or utcnow()) if config is not None else []
    request_ids = list(await session.scalars(select(Request.id).where(Request.user_id == user.id)))
    await session.execute(update(Request).where(Request.user_id == user.id)
                          .values(text=ERASED, attachments=[], on_behalf_name=None))
    for event in await session.scalars(select(RequestEvent).where(
            (RequestEvent.request_id.in_(request_ids)) | (RequestEvent.actor == f"user:{user.id}"))):
        if any(field in (event.data or {}) for field in PERSONAL_EVENT_FIELDS):
            event.data = {k: (ERASED if k in PERSONAL_EVENT_FIELDS else v) for k, v in event.data.items()}
    await session.execute(update(OutboxMessage).where(OutboxMessage.chat_id == user.external_id,
                                                      OutboxMessage.platform == user.platform)
                          .values(text=ERASED, options=[], chat_id=f"forgotten:{user.id}"))
    await session.execute(update(Task).where(Task.claimer_id == user.id).values(note=None))
    await forget_party(session, user, ERASED)
    volunteer = await session.get(Volunteer, user.id)
    if volunteer is not None:
        volunteer.name, volunteer.phone, volunteer.share_phone = ERASED, None, False
        volunteer.named_in_recognition, volunteer.status = False, "declined"
    await deliberation.forget_user(session, user, ERASED)
    await activities.forget(session, user, ERASED)
    await fridge_privacy.forget(session, user, ERASED)
    from shared.linking import forget_links

    await forget_links(session, user)   # a linked account no longer acts as this person
    # The account row stays (requests point at it) but no longer names or reaches the person.
    user.display_name, user.consent_at, user.roles = None, None, []
    user.external_id = f"forgotten:{user.id}"
    return outbox


from shared import book_privacy  # noqa: E402 - imports ERASED from here
