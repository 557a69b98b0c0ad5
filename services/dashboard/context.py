"""What every dashboard handler needs: the runtime pieces and the signed-in viewer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shared.config import CommunitiesConfig
from shared.domain.permissions import is_staff_of
from shared.i18n import normalize_locale, t
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification
from shared.runtime import Database
from shared.settings import Settings

Enqueue = Callable[[Any, Any], Awaitable[None]]


@dataclass
class Dashboard:
    settings: Settings
    database: Database
    config: CommunitiesConfig
    enqueue: Enqueue
    secret: str
    ready: Callable[[], Awaitable[dict[str, bool]]]

    async def deliver(self, outbox_ids: list[int]) -> None:
        """Hand committed notifications to the delivery worker (the scheduler re-enqueues lost ones)."""
        for outbox_id in outbox_ids:
            await self.enqueue(DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))


DASHBOARD = web.AppKey("dashboard", Dashboard)


@dataclass(frozen=True)
class Viewer:
    """The signed-in staff member or admin, as checked on this very request."""

    user_id: int
    roles: tuple[str, ...]
    community: str | None
    locale: str
    csrf: str
    token_hash: str

    @property
    def admin(self) -> bool:
        return "admin" in self.roles

    @property
    def communities(self) -> frozenset[str] | None:
        """None: every community (admins)."""
        return None if self.admin else frozenset({self.community} if self.community else ())

    def may_see(self, community: str) -> bool:
        return is_staff_of(list(self.roles), self.community, community)

    def t(self, key: str, **params: object) -> str:
        return t(self.locale, key, **params)


def dashboard(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


VIEWER = web.RequestKey("viewer", Viewer)


def viewer(request: web.Request) -> Viewer:
    return request[VIEWER]


async def read_form(request: web.Request):  # type: ignore[no-untyped-def]
    """The posted form; a malformed body (e.g. multipart without a boundary) is a 400, not a crash."""
    try:
        return await request.post()
    except ValueError:
        raise web.HTTPBadRequest(text="malformed form body") from None


def request_locale(request: web.Request, fallback: str | None = None) -> str:
    return normalize_locale(request.cookies.get("lang") or fallback)
