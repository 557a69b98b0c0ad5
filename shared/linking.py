"""Linking a person's accounts on two platforms (Telegram and Matrix) to one Linju user.

On the account they already use, the person asks for a one-time code (8 digits, 10
minutes, stored only as a hash); on the other platform's account they send it back.
From then on that account acts as the first one's user (same requests, roles, points);
notifications keep going to the first account. Each rule once, here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from enum import Enum

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import as_utc, utcnow
from shared.db.models import IdentityLink, LinkCode, Request, User, Volunteer

CODE_TTL = timedelta(minutes=10)
CODE_DIGITS = 8
MAX_FAILURES = 5   # wrong codes one account may send before it must ask again later


class LinkOutcome(str, Enum):
    LINKED = "linked"
    INVALID = "invalid"            # unknown, expired or used
    OWN = "own"                    # a code the same user asked for
    SAME_PLATFORM = "same_platform"
    HAS_HISTORY = "has_history"    # the account typing the code already has its own requests or roles
    ALREADY_LINKED = "already_linked"


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def well_formed(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isdigit()


async def issue_code(session: AsyncSession, user: User) -> str:
    """A fresh code for `user`; any earlier unused code of theirs stops working."""
    await session.execute(delete(LinkCode).where(LinkCode.user_id == user.id, LinkCode.used_at.is_(None)))
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    session.add(LinkCode(code_hash=_hash(code), user_id=user.id, expires_at=utcnow() + CODE_TTL))
    await session.flush()
    return code


async def _has_history(session: AsyncSession, account: User) -> bool:
    if account.roles:
        return True
    requests = await session.scalar(select(func.count()).select_from(Request).where(Request.user_id == account.id))
    return bool(requests) or await session.get(Volunteer, account.id) is not None


async def redeem(session: AsyncSession, account: User, code: str) -> tuple[LinkOutcome, User | None]:
    """`account` (the user row its platform account resolves to) sends `code`."""
    if not well_formed(code):
        return LinkOutcome.INVALID, None
    row = await session.get(LinkCode, _hash(code))
    if row is None or row.used_at is not None or as_utc(row.expires_at) < utcnow():
        return LinkOutcome.INVALID, None
    if row.user_id == account.id:
        return LinkOutcome.OWN, None
    target = await session.get(User, row.user_id)
    if target is None:
        return LinkOutcome.INVALID, None
    if target.platform == account.platform:
        return LinkOutcome.SAME_PLATFORM, None
    linked = await session.scalar(select(IdentityLink).where(IdentityLink.platform == account.platform,
                                                             IdentityLink.external_id == account.external_id))
    if linked is not None:
        return LinkOutcome.ALREADY_LINKED, None
    if await _has_history(session, account):
        return LinkOutcome.HAS_HISTORY, None
    # Used once: two accounts racing for one code, only the first UPDATE finds it unused.
    taken = await session.execute(update(LinkCode).where(LinkCode.code_hash == row.code_hash,
                                                         LinkCode.used_at.is_(None)).values(used_at=utcnow()))
    if taken.rowcount != 1:
        return LinkOutcome.INVALID, None
    session.add(IdentityLink(platform=account.platform, external_id=account.external_id, user_id=target.id))
    await session.flush()
    return LinkOutcome.LINKED, target


async def links_of(session: AsyncSession, user: User) -> list[IdentityLink]:
    return list(await session.scalars(select(IdentityLink).where(IdentityLink.user_id == user.id)))


async def forget_links(session: AsyncSession, user: User) -> None:
    await session.execute(delete(IdentityLink).where(IdentityLink.user_id == user.id))
    await session.execute(delete(LinkCode).where(LinkCode.user_id == user.id))
