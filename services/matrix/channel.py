"""The Matrix channel: one room event in, the channel-neutral flows, replies out.

The counterpart of the Telegram bot's middleware and handlers:

- a direct room (the bot and one person) is the private chat: commands (`!menu` or `/menu`),
  answers to the numbered options, free text, photos and locations (`events.py`);
- the configured staff and volunteer rooms of a community are the groups: there an answer
  to an offered option acts (as the person who answered, checked by the flow), and
  everything else is conversation between people and is left alone;
- replies always go to the person's direct room, never to a group (as on Telegram);
- an end-to-end encrypted room, which the bot cannot read, is told so once (`encrypted_room`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.matrix import events
from services.matrix import options as opts
from services.matrix.api import MatrixApi
from services.matrix.store import Offered, Store
from shared.config import CommunitiesConfig
from shared.flows.context import Enqueue, FlowContext
from shared.flows.dispatch import handle_action, handle_command, handle_text
from shared.flows.reply import Reply
from shared.i18n import t
from shared.outbound import RetryLater
from shared.repo.users import find_user, get_or_create_user

log = logging.getLogger("linju.matrix")

PLATFORM = "matrix"
# The same commands as the Telegram bot's private chat.
COMMANDS = ("start", "menu", "help", "cancel", "queue", "mine", "request", "requests", "merge", "announce", "stats",
            "volunteer", "mytasks", "hours", "task", "mydata", "forgetme", "fridge", "books", "points", "bookstock",
            "link")
# A Matrix event may be up to 64 KiB; flows refuse long requests kindly, this only bounds the work.
MAX_BODY_CHARS = 20_000
# The homeserver's 429 on a direct answer: retry this many times, waiting at most this long each time.
PATIENCE = 5
MAX_PATIENCE_WAIT = 10.0


@dataclass(frozen=True)
class Room:
    kind: str                 # "direct", "staff", "volunteer" or "other"
    community: str | None = None


def group_rooms(config: CommunitiesConfig) -> dict[str, Room]:
    rooms: dict[str, Room] = {}
    for community in config.communities:
        if community.matrix_staff_room:
            rooms[community.matrix_staff_room] = Room("staff", community.code)
        if community.matrix_volunteer_room:
            rooms[community.matrix_volunteer_room] = Room("volunteer", community.code)
    return rooms


@dataclass(frozen=True)
class Incoming:
    room_id: str
    sender: str
    event_id: str
    content: dict[str, Any]
    direct: bool   # the room has the bot and at most one other member


class MatrixChannel:
    def __init__(self, api: MatrixApi, store: Store, sessions: async_sessionmaker[AsyncSession],
                 config: CommunitiesConfig, enqueue: Enqueue, max_requests_per_hour: int = 10) -> None:
        self.api = api
        self.store = store
        self.sessions = sessions
        self.config = config
        self.enqueue = enqueue
        self.max_requests_per_hour = max_requests_per_hour
        self.groups = group_rooms(config)

    def room(self, room_id: str, direct: bool) -> Room:
        return self.groups.get(room_id) or (Room("direct") if direct else Room("other"))

    async def handle(self, event: Incoming) -> str:
        """Handle one `m.room.message`; returns what was done (for logs and tests)."""
        if event.sender == self.api.user_id:
            return "own"
        room = self.room(event.room_id, event.direct)
        if room.kind == "other":
            return "ignored"
        content = event.content
        relation = content.get("m.relates_to") or {}
        if relation.get("rel_type") == "m.annotation":
            # A reaction (1️⃣ on an offer) is an answer to that message's options, like a reply with "1".
            number = opts.reaction_number(str(relation.get("key") or ""))
            if number is None or not relation.get("event_id"):
                return "ignored"
            content = {"msgtype": "m.text", "body": str(number),
                       "m.relates_to": {"m.in_reply_to": {"event_id": relation["event_id"]}}}
            event = Incoming(event.room_id, event.sender, event.event_id, content, event.direct)
        if "m.new_content" in content or (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
            return "ignored"   # a person editing their message: the first version already counted
        if not await self.store.first_seen(event.event_id):
            return "duplicate"
        if room.kind == "direct":
            await self.store.set_dm_room(event.sender, event.room_id)
        try:
            return await self._handle(event, room)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.error("event not handled: storage unavailable", extra={"error": type(exc).__name__})
            if room.kind == "direct":
                await self.api.send(event.room_id, Reply(t("zh", "errors.unavailable")), for_user=event.sender)
            return "unavailable"

    async def encrypted_room(self, room_id: str) -> bool:
        """The bot cannot read an end-to-end encrypted room (no libolm): say so there once, in Chinese
        then English, with how to reach it instead. Once per room, across restarts (the store)."""
        if not await self.store.claim_encrypted_notice(room_id):
            return False
        # No room id, no member: which kind of room is all a log needs.
        log.warning("encrypted room: the bot cannot read it, telling the room once",
                    extra={"room_kind": self.room(room_id, False).kind})
        text = "\n\n".join(t(locale, "matrix.encrypted", bot=self.api.user_id) for locale in ("zh", "en"))
        try:
            await _patiently(self.api.notice, room_id, text)
        except Exception:
            await self.store.release_encrypted_notice(room_id)   # the next sync tries again
            raise
        return True

    async def _handle(self, event: Incoming, room: Room) -> str:
        content = event.content
        msgtype = content.get("msgtype")
        body = content.get("body")
        if msgtype in events.MEDIA:
            return await self._media(event, room)
        if msgtype != "m.text" or not isinstance(body, str):
            if room.kind == "direct" and msgtype != "m.notice":
                await self.api.send(event.room_id, Reply(t(await self._locale(event.sender), "report.unsupported")),
                                    for_user=event.sender)
                return "unsupported"
            return "ignored"
        reply_to = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        text = (opts.strip_reply_fallback(body) if reply_to else body.strip())[:MAX_BODY_CHARS]

        offered = await self.store.offered(event.room_id, reply_to) if reply_to else None
        if offered is None and (room.kind == "direct" or not reply_to):
            offered = await self.store.offered(event.room_id)
        if offered is not None and offered.for_user not in (None, event.sender):
            offered = None   # options shown to someone else are not this person's to answer

        async def step(ctx: FlowContext) -> tuple[str, list[Reply]]:
            return await self._dispatch(ctx, event, room, text, offered, reply_to)

        outcome, replies, locale = await self._in_flow(event, step)
        if outcome == "ignored":
            return outcome
        await self._answer(event, room, replies, offered if outcome == "option" else None, locale)
        return outcome

    async def _media(self, event: Incoming, room: Room) -> str:
        """A photo or a location in the direct room: to the flows as attachments, as a Telegram photo
        (with its caption) or location is. Unusable (no mxc URL, a malformed geo URI): a kind reply."""
        if room.kind != "direct":
            return "ignored"
        media = events.media(event.content)
        if media.problem is not None:
            log.info("media event refused", extra={"problem": media.problem})
            await self.api.send(event.room_id, Reply(t(await self._locale(event.sender), media.problem)),
                                for_user=event.sender)
            return "bad_media"

        async def step(ctx: FlowContext) -> tuple[str, list[Reply]]:
            return "media", await handle_text(ctx, media.text, idempotency_key=f"mx:{event.event_id}",
                                              attachments=media.attachments)

        outcome, replies, locale = await self._in_flow(event, step)
        await self._answer(event, room, replies, None, locale)
        return outcome

    async def _locale(self, sender: str) -> str:
        async with self.sessions() as session:
            user = await find_user(session, PLATFORM, sender)
            return (user.locale if user else None) or "zh"

    async def _in_flow(self, event: Incoming, step: Any) -> tuple[str, list[Reply], str]:
        """Run `step(ctx)` as the sender (created on first contact) with their conversation state."""
        async with self.sessions() as session:
            user = await find_user(session, PLATFORM, event.sender)
            if user is None:
                user = await get_or_create_user(session, PLATFORM, event.sender)
                await session.commit()
            stored = await self.store.get_state(event.sender)
            ctx = FlowContext(session=session, config=self.config, user=user, enqueue=self.enqueue,
                              platform=PLATFORM, state=dict(stored), max_requests_per_hour=self.max_requests_per_hour)
            outcome, replies = await step(ctx)
            if ctx.state != stored:
                await self.store.set_state(event.sender, ctx.state)
            return outcome, replies, ctx.locale

    async def _dispatch(self, ctx: FlowContext, event: Incoming, room: Room, text: str, offered: Offered | None,
                        reply_to: str | None) -> tuple[str, list[Reply]]:
        command = _command(text)
        if command is not None and room.kind == "direct":
            return "command", await handle_command(ctx, command[0], command[1])
        choice = opts.choose(text, offered.options) if offered is not None else None
        awaiting_text = bool(ctx.state.get("await")) and room.kind == "direct" and not reply_to
        if choice is not None and awaiting_text and choice.number is not None:
            choice = None   # the flow asked for text ("how many hours?"): a bare number is that text
        if choice is not None and choice.action is not None:
            return "option", await handle_action(ctx, choice.action)
        if room.kind != "direct":
            if reply_to and offered is not None and choice is not None:
                return "no_option", [Reply(t(ctx.locale, "matrix.no_such_option", number=choice.number,
                                             count=len(offered.options)))]
            return "ignored", []
        if choice is not None:   # a number naming no option
            if offered is None or not offered.options:
                return "no_option", [Reply(t(ctx.locale, "matrix.no_options"))]
            return "no_option", [Reply(t(ctx.locale, "matrix.no_such_option", number=choice.number,
                                         count=len(offered.options)))]
        if offered is None and text.isdigit() and len(text) <= 3 and not ctx.state.get("await"):
            return "no_option", [Reply(t(ctx.locale, "matrix.no_options"))]
        return "text", await handle_text(ctx, text, idempotency_key=f"mx:{event.event_id}")

    async def _answer(self, event: Incoming, room: Room, replies: list[Reply], answered: Offered | None,
                      locale: str) -> None:
        """Replies go to the person's direct room; a form's toggle edits the message it came from."""
        room_id = event.room_id if room.kind == "direct" else await self.api.direct_room(event.sender)
        if replies and replies[0].replace and answered is not None and room.kind == "direct":
            await _patiently(self.api.edit, room_id, answered.event_id, replies[0], for_user=event.sender)
            replies = replies[1:]
        for reply in replies:
            await _patiently(self.api.send, room_id, reply, for_user=event.sender)


async def _patiently(call: Any, *args: Any, **kwargs: Any) -> Any:
    """A direct answer is worth waiting for: on the homeserver's 429, wait as told (a few times, briefly)."""
    for attempt in range(PATIENCE):
        try:
            return await call(*args, **kwargs)
        except RetryLater as exc:
            if attempt == PATIENCE - 1:
                raise
            await asyncio.sleep(min(exc.retry_after, MAX_PATIENCE_WAIT))
    return None


def _command(text: str) -> tuple[str, str | None] | None:
    if not text or text[0] not in "!/":
        return None
    word, _, rest = text[1:].partition(" ")
    word = word.split("@")[0].lower()
    if word not in COMMANDS:
        return None
    return word, (rest.strip() or None)
