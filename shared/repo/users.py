"""Users: one row per (platform, external id), with locale, community, roles and consent."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import String, and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import IdentityLink, User
from shared.db.upsert import insert_for

ROLES = ("resident", "volunteer", "staff", "admin")


async def get_or_create_user(
    session: AsyncSession, platform: str, external_id: str, *, display_name: str | None = None, locale: str = "zh"
) -> User:
    # Almost every update comes from someone we know: one SELECT, and the INSERT only for newcomers.
    existing = await find_user(session, platform, external_id)
    if existing is not None:
        return existing
    stmt = (
        insert_for(session, User)
        .values(platform=platform, external_id=external_id, display_name=display_name, locale=locale, roles=[])
        .on_conflict_do_nothing(index_elements=["platform", "external_id"])
    )
    await session.execute(stmt)
    user = await find_user(session, platform, external_id)
    assert user is not None
    return user


@cache
def _find_user_statement() -> Any:
    # Built once: it runs for every update the bot handles.
    platform, external_id = bindparam("platform", type_=String), bindparam("external_id", type_=String)
    linked = select(IdentityLink.user_id).where(IdentityLink.platform == platform,
                                                IdentityLink.external_id == external_id)
    # One round trip: the account's own row and the linked user's row, if any; the link wins.
    return select(User).where(or_(and_(User.platform == platform, User.external_id == external_id),
                                  User.id.in_(linked)))


async def find_user(session: AsyncSession, platform: str, external_id: str) -> User | None:
    """The user this account acts as: the user it was linked to (docs/matrix.md), else its own row."""
    rows = (await session.execute(_find_user_statement(),
                                  {"platform": platform, "external_id": external_id})).scalars().all()
    if len(rows) <= 1:
        return rows[0] if rows else None
    return next(u for u in rows if (u.platform, u.external_id) != (platform, external_id))


def give_consent(user: User) -> None:
    if user.consent_at is None:
        user.consent_at = datetime.now(UTC)


def has_role(user: User, role: str) -> bool:
    return role in (user.roles or []) or (role != "admin" and "admin" in (user.roles or []))


def grant_role(user: User, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role not in (user.roles or []):
        user.roles = [*(user.roles or []), role]


def revoke_role(user: User, role: str) -> bool:
    """Take a role away; True when the user had it. Their dashboard sessions stop at the next request."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role not in (user.roles or []):
        return False
    user.roles = [r for r in user.roles if r != role]
    return True


async def mark_unreachable(session: AsyncSession, platform: str, external_id: str) -> bool:
    """The person blocked the bot (Telegram answered 403 in their private chat); True if newly marked."""
    result = await session.execute(
        update(User).where(User.platform == platform, User.external_id == external_id, User.unreachable_since.is_(None))
        .values(unreachable_since=datetime.now(UTC)))
    return bool(result.rowcount)


def mark_reachable(user: User) -> None:
    """The person writes to the bot again, so it is no longer blocked."""
    user.unreachable_since = None


async def is_unreachable(session: AsyncSession, platform: str, external_id: str) -> bool:
    found = await session.scalar(select(User.id).where(User.platform == platform, User.external_id == external_id,
                                                       User.unreachable_since.is_not(None)))
    return found is not None
