"""One update at a time per conversation: a burst from one person is handled in order, not at once.

aiogram handles polled updates concurrently. Without isolation, forty messages sent at once by
one person all pass the hourly request limit before the first is stored, and two quick button
presses read the same conversation state and overwrite each other. aiogram's own
`SimpleEventIsolation` does the same but keeps a lock per person forever; this one drops a lock
when nobody holds or waits for it. In-process, which is what polling is (one bot process).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Hashable
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey


class PersonIsolation(BaseEventIsolation):
    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock, holders = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, holders + 1)
        try:
            async with lock:
                yield
        finally:
            lock, holders = self._locks[key]
            if holders <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, holders - 1)

    @property
    def held(self) -> int:
        """Conversations with an update in hand or waiting (a lock exists for each, and only then)."""
        return len(self._locks)

    async def close(self) -> None:
        self._locks.clear()
