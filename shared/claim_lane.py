"""The claim lane: a crowd pressing Claim on one task is answered from one read each.

When a task is offered to a volunteer group, dozens (SPEC §6: 200) of volunteers may press Claim
within the same second. Running the full flow for each press (an ORM session, the person, the
conditional UPDATE, commit) costs 2–4 ms of CPU per press on one event loop, so the last of 200
waits for all the others: half a second and more. Yet only one press can win.

The lane, in front of the full flow (PostgreSQL only; `shared.volunteering.claim` stays the one
place a claim is decided):

1. Presses for the same task go through the full flow one at a time in this process: while one
   is in flight, the others wait for it (an in-process "single flight").
2. Every press first reads, in one round trip on the raw driver, the task's committed status and
   whether the person is an approved volunteer of its community. A task that is no longer open is
   answered "taken" there and then; a person who may not claim is told so; only a press that can
   still win runs the full flow, which decides with its conditional UPDATE as before.

So the answers are always from committed data: a "taken" is never said of a task that was open
when its press was read, and nothing is written outside `shared.volunteering.claim`. Presses the
lane cannot judge (an unknown person, one who has not finished onboarding, one marked unreachable,
a database error) go to the full flow unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from shared.domain.tasks import TaskStatus
from shared.flows.reply import Reply
from shared.i18n import normalize_locale, t

log = logging.getLogger("linju.claims")

Full = Callable[[], Awaitable[list[Reply]]]
CLAIM_ACTION = re.compile(r"tk:claim:([0-9]{1,17})")

# One round trip: the task, the person this account acts as (a linked account's user wins, as in
# shared.repo.users.find_user) and whether they are an approved volunteer of the task's community.
READ = """
SELECT t.id IS NOT NULL AS task_exists, t.status, t.title,
       p.id AS person_id, p.locale,
       p.consent_at IS NOT NULL AND p.community_code IS NOT NULL AS onboarded,
       p.unreachable_since IS NOT NULL AS unreachable,
       EXISTS (SELECT 1 FROM volunteers v
               WHERE v.user_id = p.id AND v.status = 'approved' AND v.community_code = t.community_code) AS allowed
FROM (SELECT 1) AS one
LEFT JOIN tasks t ON t.id = $3
LEFT JOIN LATERAL (
    SELECT u.id, u.locale, u.consent_at, u.community_code, u.unreachable_since FROM users u
    WHERE (u.platform = $1 AND u.external_id = $2)
       OR u.id IN (SELECT l.user_id FROM identity_links l WHERE l.platform = $1 AND l.external_id = $2)
    ORDER BY (u.platform = $1 AND u.external_id = $2) ASC
    LIMIT 1
) p ON true
"""


def claimed_task_id(data: str | None) -> int | None:
    """The task of a Claim button's callback data, or None for anything else."""
    match = CLAIM_ACTION.fullmatch(data or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Press:
    task_exists: bool
    status: str | None
    title: str | None
    person_id: int | None
    locale: str | None
    onboarded: bool
    unreachable: bool
    allowed: bool

    def answer(self) -> Reply | None:
        """The lane's own answer, or None when the full flow must judge this press."""
        if self.person_id is None or not self.onboarded or self.unreachable:
            return None  # onboarding, or marking them reachable again, is the full flow's business
        locale = normalize_locale(self.locale)
        if not self.task_exists:
            return Reply(t(locale, "errors.stale_button"))
        if not self.allowed:
            return Reply(t(locale, "tasks.not_volunteer"))
        if self.status != TaskStatus.OPEN:
            return Reply(t(locale, "tasks.already_taken", title=self.title))
        return None


def asyncpg_dsn(database_url: str) -> str | None:
    """The raw driver's DSN for a PostgreSQL URL; None for any other database (no lane there)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """The lane only reads, outside any transaction, and never changes session settings: a pooled
    connection needs no reset query (a round trip on every release) before its next read."""


class ClaimLane:
    """Answers the presses it can from one read; runs the rest through `full`, one per task at a time."""

    def __init__(self, dsn: str, *, connections: int = 4):
        self._dsn = dsn
        self._connections = connections
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None
        self._in_flight: dict[int, asyncio.Future[None]] = {}

    async def _read(self, platform: str, external_id: str, task_id: int) -> Press:
        if self._pool is None:
            self._opening = self._opening or asyncio.Lock()
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._connections,
                                                           reset=_nothing_to_reset)
        row = await self._pool.fetchrow(READ, platform, external_id, task_id)
        return Press(**dict(row))

    async def press(self, platform: str, external_id: str, task_id: int, full: Full) -> list[Reply]:
        """The replies to one press of Claim; `full` runs the whole flow for it (the bot's handler)."""
        while True:
            running = self._in_flight.get(task_id)
            if running is not None:
                await asyncio.shield(running)  # its outcome is committed (or it failed) when this returns
            try:
                press = await self._read(platform, external_id, task_id)
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                log.warning("claim lane unavailable; the full flow answers", extra={"error": type(exc).__name__})
                return await full()
            answer = press.answer()
            if answer is not None:
                return [answer]
            if task_id in self._in_flight:
                continue  # another press for this task started while we read: wait for it, read again
            return await self._run_alone(task_id, full)

    async def _run_alone(self, task_id: int, full: Full) -> list[Reply]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[task_id] = done
        try:
            return await full()
        finally:
            del self._in_flight[task_id]
            done.set_result(None)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
