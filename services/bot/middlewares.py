"""Per-update plumbing: a database session, the person, their conversation state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import CallbackQuery, TelegramObject, User as TgUser
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.bot.handlers.callbacks import answer_press
from shared.claim_lane import ClaimLane, claimed_task_id
from shared.config import CommunitiesConfig
from shared.flows.context import Enqueue, FlowContext
from shared.flows.reply import Reply
from shared.i18n import normalize_locale, t
from shared.repo.users import find_user, get_or_create_user, mark_reachable

log = logging.getLogger("linju.bot")


def _username_of(bot: Bot | None):  # type: ignore[no-untyped-def]
    """Asked only by flows that build a t.me link (getMe once per process, cached by aiogram)."""
    async def username() -> str | None:
        try:
            return (await bot.me()).username if bot is not None else None
        except Exception:  # noqa: BLE001 - a link is a convenience; the flow falls back to a code
            return None
    return username


class ClaimLaneMiddleware(BaseMiddleware):
    """Presses of Claim go through the claim lane (shared/claim_lane.py) before anything else: most
    of a crowd is answered from one read, and only presses that can still win reach the full flow
    (`handler`: the session middleware and `on_button`, which answer those presses themselves)."""

    def __init__(self, lane: ClaimLane):
        self.lane = lane

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        task_id = claimed_task_id(event.data) if isinstance(event, CallbackQuery) else None
        if task_id is None or tg_user is None or tg_user.is_bot:
            return await handler(event, data)

        async def full() -> list[Reply]:
            await handler(event, data)
            return []

        replies = await self.lane.press("telegram", str(tg_user.id), task_id, full)
        if replies:
            await answer_press(event, replies)
        return None


class FlowContextMiddleware(BaseMiddleware):
    """Builds a `FlowContext` for every update and saves the conversation state after."""

    @staticmethod
    def _private_state(data: dict[str, Any], user_id: int) -> FSMContext | None:
        """Conversation state lives with the person's private chat, even for a press in a group,
        so several staff replying at once never share or mix a conversation."""
        storage = data.get("fsm_storage")
        bot = data.get("bot")
        if storage is None or bot is None:
            return data.get("state")
        # The storage's own errors, not its degraded answers: an unread state must not be written back.
        storage = getattr(storage, "strict", storage)
        return FSMContext(storage=storage, key=StorageKey(bot_id=bot.id, chat_id=user_id, user_id=user_id))

    @staticmethod
    async def _read_state(state: FSMContext | None) -> dict[str, Any] | None:
        """The stored conversation state, or None when Redis cannot be read (go on without it)."""
        if state is None:
            return {}
        try:
            return await state.get_data()
        except RedisError as exc:
            log.warning("conversation state unavailable; handling the update without it",
                        extra={"error": type(exc).__name__})
            return None

    @staticmethod
    async def _write_state(state: FSMContext | None, stored: dict[str, Any] | None, current: dict[str, Any]) -> None:
        if state is None or stored is None or current == stored:
            return  # unchanged, or never read: writing would overwrite what Redis still holds
        try:
            await state.set_data(current)
        except RedisError as exc:
            log.warning("conversation state not saved", extra={"error": type(exc).__name__})

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], config: CommunitiesConfig, enqueue: Enqueue,
                 max_requests_per_hour: int = 10):
        self.session_factory = session_factory
        self.config = config
        self.enqueue = enqueue
        self.max_requests_per_hour = max_requests_per_hour

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot:
            return None
        state = self._private_state(data, tg_user.id)
        try:
            async with self.session_factory() as session:
                user = await find_user(session, "telegram", str(tg_user.id))
                if user is None:
                    user = await get_or_create_user(
                        session, "telegram", str(tg_user.id), display_name=tg_user.first_name,
                        locale=normalize_locale(tg_user.language_code),
                    )
                    await session.commit()
                elif user.unreachable_since is not None:
                    # They write to us again, so they unblocked the bot: notifications may reach them.
                    mark_reachable(user)
                    await session.commit()
                stored = await self._read_state(state)
                ctx = FlowContext(session=session, config=self.config, user=user, enqueue=self.enqueue,
                                  state=dict(stored or {}), max_requests_per_hour=self.max_requests_per_hour,
                                  bot_username=_username_of(data.get("bot")))
                data["flow"] = ctx
                result = await handler(event, data)
                await self._write_state(state, stored, ctx.state)
                return result
        except (OperationalError, DBAPIError, OSError, RedisError) as exc:
            # The database (or Redis for state) is unreachable: tell the person plainly.
            log.error("update not handled: storage unavailable", extra={"error": type(exc).__name__})
            bot = data.get("bot")
            chat = data.get("event_chat")
            if bot is not None and chat is not None:
                try:
                    await bot.send_message(chat.id, t(normalize_locale(tg_user.language_code), "errors.unavailable"))
                except Exception:  # noqa: BLE001 - nothing more we can do for this update
                    log.warning("could not tell the person we are unavailable")
            return None
