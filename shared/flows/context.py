"""What a flow needs to act: the database session, config, the person, and a way to enqueue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import CommunitiesConfig
from shared.db.models import User

# (contract, payload) → None; the channel decides how to enqueue without blocking.
Enqueue = Callable[[Any, Any], Awaitable[None]]


@dataclass
class FlowContext:
    session: AsyncSession
    config: CommunitiesConfig
    user: User
    enqueue: Enqueue
    platform: str = "telegram"
    max_requests_per_hour: int = 10
    state: dict[str, Any] = field(default_factory=dict)   # conversation state, persisted by the channel
    # The bot's public username, for t.me deep links (None when the channel has none or cannot tell).
    bot_username: Callable[[], Awaitable[str | None]] | None = None

    @property
    def locale(self) -> str:
        return self.user.locale or "zh"
