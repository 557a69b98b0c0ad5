"""People for tests that work on the shared domain directly (no bot in between)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import User
from shared.repo.users import get_or_create_user, give_consent, grant_role


async def person(session: AsyncSession, external_id: str, community: str, *, staff: bool = False,
                 name: str | None = None) -> User:
    """A Telegram user who consented and chose `community` (and is its staff when `staff`)."""
    user = await get_or_create_user(session, "telegram", external_id, display_name=name or f"p{external_id}")
    give_consent(user)
    user.community_code = community
    if staff:
        grant_role(user, "staff")
    await session.flush()
    return user
