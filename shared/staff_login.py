"""Staff sign-in for the web dashboard: a one-time code sent by the bot, then a session.

The code reaches the staff member through the outbox (the same delivery path as every
notification), so whoever signs in must hold the staff member's chat. Only HMACs and
hashes are stored: a database dump gives neither a usable code nor a session cookie.

Limits (all checked in the database, so they hold across dashboard processes):
- a code expires after `code_ttl`; it is used once;
- `MAX_ATTEMPTS` wrong tries burn the code;
- one person may ask for `MAX_CODES_PER_WINDOW` codes per `CODE_WINDOW`.
Whether the person exists or is staff is never revealed to the login form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import as_utc, utcnow
from shared.db.models import StaffLoginCode, StaffSession, StaffSubmission, User
from shared.db.upsert import insert_for
from shared.domain.permissions import is_admin
from shared.flows.reply import Reply
from shared.i18n import t
from shared.repo.outbox import queue_notification
from shared.repo.users import find_user

MAX_ATTEMPTS = 5
MAX_CODES_PER_WINDOW = 3
CODE_WINDOW = timedelta(minutes=15)
CODE_DIGITS = 6


def may_use_dashboard(user: User | None) -> bool:
    """Staff with a community, and admins. Residents and volunteers have no dashboard."""
    if user is None:
        return False
    roles = user.roles or []
    return is_admin(roles) or ("staff" in roles and user.community_code is not None)


def _hmac(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class CodeRequest:
    """What the login form shows next. `outbox_id` is set only when a code was really queued."""

    challenge: str
    outbox_id: int | None
    limited: bool = False


async def request_code(session: AsyncSession, secret: str, platform: str, external_id: str, *,
                       code_ttl: timedelta, now: datetime | None = None) -> CodeRequest:
    """Queue a login code to this chat account if it may use the dashboard.

    Always returns a challenge, so the form looks the same for staff, residents and strangers.
    """
    now = now or utcnow()
    challenge = secrets.token_urlsafe(24)
    user = await find_user(session, platform, external_id)
    if not may_use_dashboard(user):
        return CodeRequest(challenge, None)
    recent = await session.scalar(select(func.count()).select_from(StaffLoginCode)
                                  .where(StaffLoginCode.user_id == user.id,
                                         StaffLoginCode.created_at >= now - CODE_WINDOW))
    if int(recent or 0) >= MAX_CODES_PER_WINDOW:
        return CodeRequest(challenge, None, limited=True)
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(StaffLoginCode(challenge=challenge, user_id=user.id, code_hash=_hmac(secret, challenge, code),
                               attempts=0, expires_at=now + code_ttl, created_at=now))
    await session.flush()
    minutes = max(1, int(code_ttl.total_seconds() // 60))
    outbox_id = await queue_notification(session, key=f"dashboard_code:{challenge}", chat_id=user.external_id,
                                         platform=user.platform,
                                         text=Reply(t(user.locale, "dashboard.login_code_message", code=code,
                                                      minutes=minutes)).text)
    return CodeRequest(challenge, outbox_id)


@dataclass(frozen=True)
class NewSession:
    token: str      # goes into the cookie; only its hash is stored
    csrf: str
    user: User


async def verify_code(session: AsyncSession, secret: str, challenge: str, code: str, *, session_ttl: timedelta,
                      now: datetime | None = None) -> NewSession | None:
    """Exchange a correct, fresh, unused code for a session; every wrong try counts against the code."""
    now = now or utcnow()
    row = await session.scalar(select(StaffLoginCode).where(StaffLoginCode.challenge == challenge[:64]))
    if row is None or row.used_at is not None or row.attempts >= MAX_ATTEMPTS or as_utc(row.expires_at) <= now:
        return None
    if not hmac.compare_digest(row.code_hash, _hmac(secret, challenge, code.strip())):
        await session.execute(update(StaffLoginCode).where(StaffLoginCode.id == row.id)
                              .values(attempts=StaffLoginCode.attempts + 1))
        return None
    # Conditional UPDATE: two tabs racing with the same code get one session between them.
    used = await session.execute(update(StaffLoginCode)
                                 .where(StaffLoginCode.id == row.id, StaffLoginCode.used_at.is_(None),
                                        StaffLoginCode.attempts < MAX_ATTEMPTS)
                                 .values(used_at=now))
    if used.rowcount != 1:
        return None
    user = await session.get(User, row.user_id)
    if not may_use_dashboard(user):  # demoted between asking and typing
        return None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=token_hash(token), user_id=user.id, csrf=csrf, expires_at=now + session_ttl,
                             created_at=now))
    return NewSession(token, csrf, user)


@dataclass(frozen=True)
class ActiveSession:
    token_hash: str
    csrf: str
    user: User


async def load_session(session: AsyncSession, token: str | None, *, now: datetime | None = None) -> ActiveSession | None:
    """The signed-in person behind a cookie, re-checked against their current roles."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = await session.get(StaffSession, token_hash(token))
    if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= now:
        return None
    user = await session.get(User, row.user_id)
    if not may_use_dashboard(user):
        return None
    return ActiveSession(row.token_hash, row.csrf, user)


async def end_session(session: AsyncSession, token_hash_: str, now: datetime | None = None) -> None:
    await session.execute(update(StaffSession).where(StaffSession.token_hash == token_hash_)
                          .values(revoked_at=now or utcnow()))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def anonymous_csrf(secret: str, browser_token: str) -> str:
    """CSRF token for the sign-in forms, bound to a random per-browser cookie (double submit, signed)."""
    return _hmac(secret, "anonymous-csrf", browser_token)


async def claim_submission(session: AsyncSession, nonce: str | None, user: User) -> bool:
    """True the first time a form's nonce is seen; the caller's change commits with it."""
    if not nonce or len(nonce) > 64:
        return False
    stmt = (insert_for(session, StaffSubmission).values(nonce=nonce, user_id=user.id)
            .on_conflict_do_nothing(index_elements=["nonce"]).returning(StaffSubmission.nonce))
    return (await session.execute(stmt)).scalar_one_or_none() is not None
