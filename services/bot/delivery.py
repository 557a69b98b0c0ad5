"""Notification delivery: the one path outgoing messages take (`linju deliver`).

One dramatiq message carries one outbox id. The worker

1. claims the row with a conditional UPDATE (`shared.repo.outbox.claim`), so a
   row is being sent by one worker at most and a sent row is never sent again;
2. asks the shared rate limiter (`shared.queue.ratelimit`, in Redis) for a
   slot that respects the bot-wide, per-chat and per-group limits of every
   delivery process together, and sleeps until it (at most `max_wait`); a slot
   further ahead gives the row back and re-enqueues the message with that delay;
3. sends (or edits, for rows with `edit_message_id`) through aiogram's `Bot`;
4. marks the row sent, or on Telegram's 429 records `retry_after` for the chat
   and re-enqueues after it, or on a permanent refusal (403 blocked, 400 chat
   not found …) marks it failed for good, or on anything else (5xx, network,
   database) gives the row back and lets dramatiq retry with backoff. A 403 in
   a private chat also marks the person unreachable (`users.unreachable_since`):
   their later notifications are marked failed at step 1, without a send, until
   they write to the bot again.

See docs/delivery.md.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (TelegramBadRequest, TelegramEntityTooLarge, TelegramForbiddenError,
                                TelegramMigrateToChat, TelegramRetryAfter)
from aiogram.methods import EditMessageText, Response, SendLocation, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import TelegramType
from dramatiq.brokers.stub import StubBroker

from services.bot.render import edit_reply, send_reply
from shared.clock import utcnow
from shared.flows.reply import Reply
from shared.outbound import PlatformSender, Refused, RetryLater
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from shared.queue.ratelimit import Decision, DeliveryLimits, Limiter, Outcome, create_limiter
from shared.repo import outbox, users
from shared.runtime import Database
from shared.settings import Settings
from shared.telegram_bot import create_bot

log = logging.getLogger("linju.delivery")

# Telegram refuses these for good: retrying cannot help (the row is marked failed).
PERMANENT = (TelegramForbiddenError, TelegramBadRequest, TelegramMigrateToChat, TelegramEntityTooLarge)

# last_error of a notification not attempted because its person blocked the bot.
UNREACHABLE = "unreachable: the person blocked the bot"

# aiogram parses every answer with `Response[<result type>]`, a pydantic generic class that pydantic
# caches only weakly: the garbage collector drops it and the next call rebuilds it (~8 ms of CPU,
# measured on one in six sends). Holding the classes we use keeps them built.
_RESPONSE_TYPES = [Response[m.__returning__] for m in (SendMessage, EditMessageText)]  # type: ignore[misc]


class SentNotRecorded(RuntimeError):
    """Telegram accepted the message but the database could not record it (it stays `sending`)."""


class Deliverer:
    """Holds the loop-bound resources (DB engine, Bot, limiter) of the worker's event loop."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker, bot: Bot | None = None,
                 limits: DeliveryLimits | None = None, senders: dict[str, PlatformSender] | None = None):
        self.settings = settings
        self.broker = broker
        self.limits = limits or DeliveryLimits()
        # Rows of other platforms (Matrix) go through their sender, with the same claim/limit/record steps.
        self.senders = senders or {}
        self._bot = bot
        self._database: Database | None = None
        self._limiter: Limiter | None = None

    # Connections kept open: at least the worker threads that may be delivering at once
    # (`linju deliver --threads`, 8 by default). A smaller pool opens and closes a connection
    # for every delivery beyond it, which costs more CPU than the delivery itself.
    POOL_SIZE = 10

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.connect(self.settings, pool_size=self.POOL_SIZE)
        return self._database

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            self._bot = create_bot(self.settings)
        return self._bot

    @property
    def limiter(self) -> Limiter:
        if self._limiter is None:
            self._limiter = create_limiter(self.broker, self.settings.redis_url, self.limits, self.bot.id)
        return self._limiter

    async def deliver(self, outbox_id: int) -> str:
        """Send one outbox row; returns what happened: sent, skipped, postponed or failed."""
        async with self.database.sessions() as session:
            row = await outbox.claim(session, outbox_id)
            unreachable = row is not None and await users.is_unreachable(session, row.platform, row.chat_id)
            if unreachable:
                # The person blocked the bot: another attempt would only cost another 403.
                await outbox.mark_failed(session, outbox_id, UNREACHABLE)
            await session.commit()
        if row is None:
            return "skipped"  # already sent, being sent, cancelled, or failed for good
        if unreachable:
            log.info("notification not sent: the person blocked the bot", extra={"outbox_id": outbox_id})
            return "failed"
        if (row.platform or "telegram") != "telegram":
            return await self._deliver_elsewhere(row, outbox_id)
        try:
            chat_id = int(row.chat_id)
        except ValueError:
            await self._fail(outbox_id, f"not a Telegram chat id: {row.chat_id[:40]}")
            return "failed"

        try:
            return await self._deliver_claimed(row, outbox_id, chat_id)
        except SentNotRecorded:
            raise  # Telegram has it: giving the row back would send it again at once
        except BaseException as exc:
            # Redis, the network, Telegram's 5xx, a stopping worker: give the row back (it is still
            # unsent) and let dramatiq retry with backoff.
            await asyncio.shield(self._release(outbox_id, type(exc).__name__))
            raise

    async def _deliver_claimed(self, row: Any, outbox_id: int, chat_id: int) -> str:
        decision = await self.limiter.acquire(chat_id, outbox_id)
        if decision.outcome is Outcome.EARLY:
            # A copy of this message holding the row's reserved slot is already on its way.
            await self._release(outbox_id, "waiting for its reserved slot", tried=False)
            return "skipped"
        if not decision.granted:
            await self._postpone(outbox_id, self._comeback(decision), "rate limited", tried=False)
            log.debug("delivery postponed", extra={"outbox_id": outbox_id, "outcome": decision.outcome.name,
                                                   "wait_s": round(decision.wait, 3)})
            return "postponed"
        if decision.wait > 0:
            await asyncio.sleep(decision.wait)

        try:
            message_id = await self._send(row, chat_id)
        except TelegramRetryAfter as exc:
            await self.limiter.penalize(chat_id, exc.retry_after)
            await self._postpone(outbox_id, exc.retry_after, f"429 retry after {exc.retry_after}")
            log.info("delivery postponed by Telegram", extra={"outbox_id": outbox_id, "retry_after": exc.retry_after})
            return "postponed"
        except PERMANENT as exc:
            # 403 in a private chat (positive id = the person's own): blocked, deactivated, never
            # started the bot. The person is unreachable until they write again; in a group it is
            # only this chat that refuses.
            blocked = isinstance(exc, TelegramForbiddenError) and chat_id > 0
            await self._fail(outbox_id, f"{type(exc).__name__}: {exc.message}",
                             unreachable=(row.platform, row.chat_id) if blocked else None)
            log.warning("delivery failed for good", extra={"outbox_id": outbox_id, "error": type(exc).__name__,
                                                           "person_unreachable": blocked})
            return "failed"
        await self._mark_sent(outbox_id, message_id)
        log.debug("notification sent", extra={"outbox_id": outbox_id})
        return "sent"

    async def _deliver_elsewhere(self, row: Any, outbox_id: int) -> str:
        """A row for another platform: the same steps as for Telegram, through that platform's sender."""
        sender = self.senders.get(row.platform)
        if sender is None:
            # This worker cannot send it; a worker configured for that platform will (or an operator
            # notices the pending row). Giving it back keeps it pending, never failed.
            await self._postpone(outbox_id, 60.0, f"no {row.platform} sender in this worker", tried=False)
            return "postponed"
        try:
            key = sender.chat_key(row.chat_id)
            decision = await sender.limiter.acquire(key, outbox_id)
            if decision.outcome is Outcome.EARLY:
                await self._release(outbox_id, "waiting for its reserved slot", tried=False)
                return "skipped"
            if not decision.granted:
                await self._postpone(outbox_id, self._comeback(decision), "rate limited", tried=False)
                return "postponed"
            if decision.wait > 0:
                await asyncio.sleep(decision.wait)
            try:
                message_id = await sender.send(row)
            except RetryLater as exc:
                await sender.limiter.penalize(key, exc.retry_after)
                await self._postpone(outbox_id, exc.retry_after, f"{row.platform} retry after {exc.retry_after}")
                log.info("delivery postponed by the homeserver", extra={"outbox_id": outbox_id,
                                                                        "retry_after": exc.retry_after})
                return "postponed"
            except Refused as exc:
                await self._fail(outbox_id, f"{row.platform}: {exc}")
                log.warning("delivery failed for good", extra={"outbox_id": outbox_id, "platform": row.platform})
                return "failed"
        except BaseException as exc:
            await asyncio.shield(self._release(outbox_id, type(exc).__name__))
            raise
        await self._mark_sent(outbox_id, message_id)
        return "sent"

    def _comeback(self, decision: Decision) -> float:
        """When a message the limiter did not let go now should be back.

        A deferred message has its slot booked: it comes back a little early and waits for the
        slot in place, because a delayed queue message can arrive a poll or two late, and a
        late message sent next to an on-time one is a burst Telegram may refuse. A busy bot
        booked nothing, so that message simply comes back when the bot has room."""
        if decision.outcome is not Outcome.DEFER:
            return decision.wait
        lead = min(self.limits.max_wait_seconds / 2, 2 * self.settings.queue_poll_max_ms / 1000)
        return max(0.0, decision.wait - lead)

    async def _mark_sent(self, outbox_id: int, message_id: Any) -> None:
        """Record a sent message, riding out a short database outage: once Telegram has the message,
        a row left `sending` would be sent again when its claim expires."""
        for pause in (0.2, 0.5, 1.0, 2.0, 4.0, None):
            try:
                async with self.database.sessions() as session:
                    await outbox.mark_sent(session, outbox_id, message_id)
                    await session.commit()
                return
            except Exception as exc:
                if pause is None:
                    log.error("sent but not recorded: may be sent again after its claim expires",
                              extra={"outbox_id": outbox_id})
                    raise SentNotRecorded(outbox_id) from exc
                await asyncio.sleep(pause)

    async def _send(self, row: Any, chat_id: int) -> Any:
        reply = Reply.from_stored(row.text, row.options)
        if row.edit_message_id:
            await edit_reply(self.bot, chat_id, row.edit_message_id, reply)
            return row.edit_message_id
        message = await send_reply(self.bot, chat_id, reply)
        return message.message_id

    async def _release(self, outbox_id: int, reason: str, *, tried: bool = True,
                       not_before: datetime | None = None) -> None:
        async with self.database.sessions() as session:
            await outbox.release(session, outbox_id, reason, tried=tried, not_before=not_before)
            await session.commit()

    async def _fail(self, outbox_id: int, error: str, unreachable: tuple[str, str] | None = None) -> None:
        async with self.database.sessions() as session:
            await outbox.mark_failed(session, outbox_id, error)
            if unreachable is not None:
                await users.mark_unreachable(session, *unreachable)
            await session.commit()

    async def _postpone(self, outbox_id: int, seconds: float, reason: str, *, tried: bool = True) -> None:
        """Give the row back and deliver it again after `seconds` (the row stays pending meanwhile)."""
        await self._release(outbox_id, reason, tried=tried, not_before=utcnow() + timedelta(seconds=seconds))
        payload = DELIVER_NOTIFICATION.payload(outbox_id=outbox_id)
        if isinstance(self.broker, StubBroker):
            # The in-process broker hands out delayed messages through a consumer that holds at
            # most 2 × worker threads of them: a few long waits (a busy group) would stall every
            # short one. One process anyway, so this process's loop keeps the time instead.
            asyncio.get_running_loop().call_later(seconds, send, self.broker, DELIVER_NOTIFICATION, payload)
            return
        await asyncio.to_thread(send, self.broker, DELIVER_NOTIFICATION, payload,
                                delay_ms=max(1, int(seconds * 1000) + 1))

    async def close(self) -> None:
        if self._limiter is not None:
            await self._limiter.close()
        if self._database is not None:
            await self._database.close()
        if self._bot is not None:
            await self._bot.session.close()
        for sender in self.senders.values():
            await sender.close()


class CountedReplies(BaseRequestMiddleware):
    """aiogram request middleware for the bot process: its direct replies count against the shared limits.

    The bot answers residents directly (the acknowledgement must not wait); those
    messages use the same Telegram budget, so they are debited from the limiter
    (never waiting), and delivery workers leave room for them.
    Install with `bot.session.middleware(CountedReplies(limiter))`.
    """

    COUNTED = (SendMessage, SendPhoto, SendLocation)

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        if isinstance(method, self.COUNTED):
            try:
                await self.limiter.debit(int(method.chat_id))
            except Exception:  # noqa: BLE001 - counting must never stop a reply
                log.debug("could not count a direct reply", exc_info=True)
        return await make_request(bot, method)


def register(broker: dramatiq.Broker, settings: Settings, bot: Bot | None = None,
             limits: DeliveryLimits | None = None, senders: dict[str, PlatformSender] | None = None) -> Deliverer:
    """Declare the delivery actor on `broker`; `limits` defaults to the `DELIVERY_*` environment;
    `senders` adds other platforms (the Matrix sender, given by whoever composes the worker)."""
    deliverer = Deliverer(settings, broker, bot, limits, senders)

    async def deliver_notification(payload: DeliverNotification) -> None:
        await deliverer.deliver(payload.outbox_id)

    DELIVER_NOTIFICATION.declare(broker, deliver_notification, min_backoff=500, max_backoff=60_000)
    return deliverer
