"""What the delivery worker needs from a channel other than Telegram (Matrix): one small protocol.

The worker (services/bot/delivery.py) claims an outbox row, asks the channel's
limiter for a slot, calls `send`, and records the result. A channel says
"not now" with `RetryLater` and "never" with `Refused`; any other exception
gives the row back for a retry with backoff.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.queue.ratelimit import Limiter


class RetryLater(Exception):
    """The platform asked us to wait (HTTP 429 / M_LIMIT_EXCEEDED)."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """The platform refuses this message for good (no such room, forbidden, too large)."""


class PlatformSender(Protocol):
    platform: str

    @property
    def limiter(self) -> Limiter: ...

    def chat_key(self, chat_id: str) -> int:
        """A stable integer for the limiter: positive for a person, negative for a group room."""

    async def send(self, row: Any) -> str:
        """Send (or edit, when `row.edit_message_id`) and return the platform's message id."""

    async def close(self) -> None: ...
