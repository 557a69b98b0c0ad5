"""Long polling that confirms an update to Telegram only once it has been handled.

aiogram's own polling confirms every update it has read at its next getUpdates call, while the
update is still being handled in a task of its own: a bot killed at that moment (kill -9, the
machine going down) loses the message, and Telegram never sends it again. Here the offset sent
to Telegram is the lowest update still in hand, so after a crash Telegram hands back whatever
was not finished; one that was finished but not yet confirmed changes nothing the second time
(requests carry the idempotency key `tg:<chat>:<message>`, buttons are conditional updates).

While updates are in hand Telegram answers getUpdates at once with the unconfirmed ones, so the
loop asks again only when one of them finishes, or after `IN_HAND_POLL_SECONDS` for new ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates
from aiogram.utils.backoff import Backoff, BackoffConfig

log = logging.getLogger("linju.bot.polling")

LONG_POLL_SECONDS = 10
IN_HAND_POLL_SECONDS = 0.05
STOP_GRACE_SECONDS = 10.0
BACKOFF = BackoffConfig(min_delay=0.5, max_delay=5.0, factor=1.5, jitter=0.1)


class UpdateLedger:
    """Which updates are in hand and which are done, and the offset that confirms only finished ones.

    Two limits keep one stuck update from stalling the bot: it stops holding the offset back after
    `HOLD_SECONDS` (it goes on running; if the bot dies meanwhile it is lost, as with aiogram's own
    polling), and no more than `MAX_UNCONFIRMED` updates are left unconfirmed, because Telegram
    hands back only the earliest 100 and newer ones would never be fetched.
    """

    HOLD_SECONDS = 30.0
    MAX_UNCONFIRMED = 90

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.in_hand: dict[int, asyncio.Task] = {}
        self._since: dict[int, float] = {}
        self._done: set[int] = set()   # finished, not yet below the offset
        self.offset: int | None = None
        self._clock = clock

    def is_new(self, update_id: int) -> bool:
        return (update_id not in self.in_hand and update_id not in self._done
                and (self.offset is None or update_id >= self.offset))

    def take(self, update_id: int, task: asyncio.Task) -> None:
        self.in_hand[update_id] = task
        self._since[update_id] = self._clock()

    def settle(self) -> None:
        for update_id, task in list(self.in_hand.items()):
            if task.done():
                del self.in_hand[update_id], self._since[update_id]
                self._done.add(update_id)
        now = self._clock()
        holding = [u for u in self.in_hand if now - self._since[u] < self.HOLD_SECONDS]
        seen = sorted({*self.in_hand, *self._done})
        if not seen:
            return
        offset = min(holding) if holding else seen[-1] + 1
        unconfirmed = [u for u in seen if u >= offset]
        if len(unconfirmed) > self.MAX_UNCONFIRMED:
            offset = unconfirmed[len(unconfirmed) - self.MAX_UNCONFIRMED]
        self.offset = max(offset, self.offset or offset)   # a confirmation cannot be taken back
        self._done = {u for u in self._done if u >= self.offset}


async def _handle(dispatcher: Dispatcher, bot: Bot, update) -> None:  # type: ignore[no-untyped-def]
    try:
        await dispatcher.feed_update(bot, update)
    except Exception as exc:  # noqa: BLE001 - a poison update is done, not handed back for ever
        log.error("update failed", extra={"update_id": update.update_id, "error": type(exc).__name__})
        log.debug("update failed", exc_info=True)


async def poll(bot: Bot, dispatcher: Dispatcher, stop: asyncio.Event, *,
               allowed_updates: Sequence[str] | None = None) -> None:
    """Handle updates until `stop` is set; then finish what is in hand and confirm it."""
    ledger = UpdateLedger()
    allowed = list(allowed_updates) if allowed_updates is not None else None
    backoff = Backoff(config=BACKOFF)
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            timeout = 0 if ledger.in_hand else LONG_POLL_SECONDS
            fetch = asyncio.create_task(bot(GetUpdates(offset=ledger.offset, timeout=timeout,
                                                       allowed_updates=allowed),
                                            request_timeout=timeout + 30))
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not fetch.done():
                fetch.cancel()
                break
            try:
                updates = fetch.result()
            except Exception as exc:  # noqa: BLE001 - Telegram unreachable: try again after a pause
                log.warning("getUpdates failed", extra={"error": type(exc).__name__, "retry_in": backoff.next_delay})
                await backoff.asleep()
                continue
            backoff.reset()
            for update in updates:
                if ledger.is_new(update.update_id):
                    ledger.take(update.update_id, asyncio.create_task(_handle(dispatcher, bot, update)))
            if ledger.in_hand:
                await asyncio.wait(ledger.in_hand.values(), timeout=IN_HAND_POLL_SECONDS,
                                   return_when=asyncio.FIRST_COMPLETED)
            ledger.settle()
    finally:
        stopping.cancel()
        if ledger.in_hand:
            await asyncio.wait(ledger.in_hand.values(), timeout=STOP_GRACE_SECONDS)
        ledger.settle()
        if ledger.offset is not None:
            try:  # confirm what was finished, so a clean restart is not handed it again
                await bot(GetUpdates(offset=ledger.offset, timeout=0, limit=1), request_timeout=5)
            except Exception as exc:  # noqa: BLE001 - harmless: the next start is handed them, and they change nothing
                log.warning("could not confirm the last updates", extra={"error": type(exc).__name__})
