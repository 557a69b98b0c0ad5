"""Delivery of outbox rows with platform "matrix" (plugged into the one delivery worker).

- A row's `chat_id` is a person's Matrix id (`@…`: sent to their direct room, created
  when there is none) or a room id (`!…`: a configured staff or volunteer room).
- The transaction id is derived from the outbox key, so if a worker dies after the
  homeserver accepted the message but before the row was marked sent, the resend is
  answered with the first event and nobody sees the message twice (Telegram has no such
  guarantee; see docs/matrix.md for the limits of it).
- Rows with `edit_message_id` are Matrix edits (`m.replace`), e.g. an offer now "taken".
- Limits: the bot account's own budget on its homeserver (one limiter per homeserver,
  shared through Redis like Telegram's), per room, and per group room.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlparse

import dramatiq

from services.matrix.api import MatrixApi, txn_id
from services.matrix.store import create_store
from shared.flows.reply import Reply
from shared.queue.ratelimit import DeliveryLimits, Limiter, create_limiter
from shared.settings import Settings


def matrix_limits(settings: Settings) -> DeliveryLimits:
    host = urlparse(settings.matrix_homeserver or "").netloc or "matrix"
    return DeliveryLimits(bot_per_second=settings.matrix_messages_per_second, bot_burst=settings.matrix_burst,
                          chat_per_second=settings.matrix_room_per_second,
                          group_per_minute=settings.matrix_group_per_minute,
                          namespace=f"linju:ratelimit:matrix:{host}", _env_file=None)


class MatrixSender:
    platform = "matrix"

    def __init__(self, settings: Settings, broker: dramatiq.Broker, api: MatrixApi | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self._api = api
        self._limiter: Limiter | None = None

    @property
    def api(self) -> MatrixApi:
        if self._api is None:  # created on the worker's event loop, on first use
            self._api = MatrixApi(self.settings, create_store(self.settings.redis_url, str(self.settings.matrix_user_id)))
        return self._api

    @property
    def limiter(self) -> Limiter:
        if self._limiter is None:
            self._limiter = create_limiter(self.broker, self.settings.redis_url, matrix_limits(self.settings),
                                           str(self.settings.matrix_user_id))
        return self._limiter

    def chat_key(self, chat_id: str) -> int:
        number = int.from_bytes(hashlib.sha256(chat_id.encode()).digest()[:6], "big") + 1
        return -number if chat_id.startswith("!") else number   # rooms count as groups

    async def send(self, row: Any) -> str:
        reply = Reply.from_stored(row.text, row.options)
        person = row.chat_id if row.chat_id.startswith("@") else None
        room_id = await self.api.direct_room(person) if person else row.chat_id
        txn = txn_id(row.key)
        if row.edit_message_id:
            await self.api.edit(room_id, row.edit_message_id, reply, for_user=person, txn=txn)
            return str(row.edit_message_id)
        return await self.api.send(room_id, reply, for_user=person, txn=txn)

    async def close(self) -> None:
        if self._limiter is not None:
            await self._limiter.close()
        if self._api is not None:
            await self._api.close()
            await self._api.store.close()


def senders_for(settings: Settings, broker: dramatiq.Broker) -> dict[str, MatrixSender]:
    """The extra senders a delivery worker of this deployment needs: Matrix when it is configured."""
    return {"matrix": MatrixSender(settings, broker)} if settings.matrix_enabled else {}
