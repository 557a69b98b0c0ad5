"""Conversation-state storage that degrades instead of failing while Redis is away.

aiogram's own `FSMContextMiddleware` reads the state of every update from the
dispatcher's storage before any of our code runs. With a bare `RedisStorage`, a
Redis outage makes that read raise and aiogram drops the update unanswered —
although the one thing a resident's free text needs, PostgreSQL, may be up.
`DegradingStorage` wraps the real storage: on `redis.exceptions.RedisError`
reads answer "no state" and writes are skipped, with a warning, so the update
goes on to be stored and acknowledged (its enqueue is retried by the scheduler).

Code that must know whether the state was really read (to avoid writing a
half-known state back) uses `strict`, the wrapped storage, and catches the error
itself (`services.bot.middlewares.FlowContextMiddleware`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from redis.exceptions import RedisError

log = logging.getLogger("linju.bot.storage")

StateType = str | State | None


class DegradingStorage(BaseStorage):
    """Delegates to `inner`; a Redis error reads as empty state and makes writes no-ops."""

    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner

    @property
    def strict(self) -> BaseStorage:
        """The wrapped storage, for callers that handle its errors themselves."""
        return self.inner

    @staticmethod
    def _degraded(operation: str, exc: Exception) -> None:
        log.warning("conversation state unavailable; going on without it",
                    extra={"operation": operation, "error": type(exc).__name__})

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        try:
            await self.inner.set_state(key, state)
        except RedisError as exc:
            self._degraded("set_state", exc)

    async def get_state(self, key: StorageKey) -> str | None:
        try:
            return await self.inner.get_state(key)
        except RedisError as exc:
            self._degraded("get_state", exc)
            return None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        try:
            await self.inner.set_data(key, data)
        except RedisError as exc:
            self._degraded("set_data", exc)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        try:
            return await self.inner.get_data(key)
        except RedisError as exc:
            self._degraded("get_data", exc)
            return {}

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return await self.inner.update_data(key, data)
        except RedisError as exc:
            self._degraded("update_data", exc)
            return dict(data)

    async def close(self) -> None:
        await self.inner.close()
