"""Notification delivery: the one path outgoing messages take (`linju deliver`).

A dramatiq actor sends an outbox row through aiogram's `Bot`. The row is claimed
with a conditional UPDATE, so it is sent by one worker only and never twice;
Telegram's 429 puts it back with the delay Telegram asked for.
"""

from __future__ import annotations

import asyncio
import logging

import dramatiq
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter

from services.bot.app import create_bot
from services.bot.render import edit_reply, send_reply
from shared.flows.reply import Reply
from shared.queue.contracts import DELIVER_NOTIFICATION, send
from shared.repo import outbox
from shared.runtime import Database
from shared.settings import Settings

log = logging.getLogger("linju.delivery")


class Deliverer:
    """Holds the loop-bound resources (DB engine, Bot) of the worker's event loop."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker, bot: Bot | None = None):
        self.settings = settings
        self.broker = broker
        self._bot = bot
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.connect(self.settings)
        return self._database

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            self._bot = create_bot(self.settings)
        return self._bot

    async def deliver(self, outbox_id: int) -> str:
        async with self.database.sessions() as session:
            row = await outbox.claim(session, outbox_id)
            await session.commit()
        if row is None:
            return "skipped"  # already sent, being sent, or failed for good
        try:
            reply = Reply.from_stored(row.text, row.options)
            if row.edit_message_id:
                # Edits an earlier message (e.g. an offer now taken); Telegram returns no new message id.
                await edit_reply(self.bot, row.chat_id, row.edit_message_id, reply)
                message_id: object = row.edit_message_id
            else:
                message_id = (await send_reply(self.bot, row.chat_id, reply)).message_id
        except TelegramRetryAfter as exc:
            async with self.database.sessions() as session:
                await outbox.release(session, outbox_id, f"429 retry after {exc.retry_after}")
                await session.commit()
            await asyncio.to_thread(send, self.broker, DELIVER_NOTIFICATION,
                                    DELIVER_NOTIFICATION.payload(outbox_id=outbox_id),
                                    delay_ms=int(exc.retry_after * 1000))
            log.info("delivery postponed by Telegram", extra={"outbox_id": outbox_id, "retry_after": exc.retry_after})
            return "postponed"
        except (TelegramForbiddenError, TelegramBadRequest) as exc:
            async with self.database.sessions() as session:
                await outbox.mark_failed(session, outbox_id, f"{type(exc).__name__}: {exc.message}")
                await session.commit()
            log.warning("delivery failed for good", extra={"outbox_id": outbox_id, "error": type(exc).__name__})
            return "failed"
        except Exception as exc:
            async with self.database.sessions() as session:
                await outbox.release(session, outbox_id, type(exc).__name__)
                await session.commit()
            raise  # dramatiq retries with backoff
        async with self.database.sessions() as session:
            await outbox.mark_sent(session, outbox_id, message_id)
            await session.commit()
        log.info("notification sent", extra={"outbox_id": outbox_id})
        return "sent"

    async def close(self) -> None:
        if self._database is not None:
            await self._database.close()
        if self._bot is not None:
            await self._bot.session.close()


def register(broker: dramatiq.Broker, settings: Settings, bot: Bot | None = None) -> Deliverer:
    deliverer = Deliverer(settings, broker, bot)

    async def deliver_notification(**kwargs: object) -> None:
        payload = DELIVER_NOTIFICATION.parse(kwargs)
        await deliverer.deliver(payload.outbox_id)

    dramatiq.actor(
        deliver_notification,
        broker=broker,
        actor_name=DELIVER_NOTIFICATION.actor_name,
        queue_name=DELIVER_NOTIFICATION.queue_name,
        max_retries=DELIVER_NOTIFICATION.max_retries,
        min_backoff=500,
        max_backoff=60_000,
    )
    return deliverer
