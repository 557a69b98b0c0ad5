"""`linju matrix`: the Matrix bot — log in, join rooms it is invited to, follow the sync stream.

Its own process (like `linju bot` for Telegram), started from the same Settings; the
same intake and delivery workers serve it. See docs/matrix.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import dramatiq
from nio import (
    BadEvent,
    InviteMemberEvent,
    JoinResponse,
    ReactionEvent,
    RoomMessage,
    SyncResponse,
    UnknownBadEvent,
)

from services.matrix import events
from services.matrix.api import PERMANENT, MatrixApi
from services.matrix.channel import Incoming, MatrixChannel
from services.matrix.store import Store, create_store
from shared.config import CommunitiesConfig
from shared.queue.broker import create_broker
from shared.queue.contracts import send_async
from shared.runtime import Database, load_config
from shared.settings import Settings

log = logging.getLogger("linju.matrix")

SYNC_TIMEOUT_MS = 30_000
# Only what the bot acts on: messages in joined rooms, membership (for direct rooms and invites),
# and encryption (a room it cannot read is told so once).
SYNC_FILTER = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {"timeline": {"types": ["m.room.message", "m.reaction", "m.room.member", "m.room.encryption",
                                    "m.room.encrypted"], "limit": 50},
             "state": {"types": ["m.room.member", "m.room.encryption"], "lazy_load_members": False},
             "ephemeral": {"types": []}, "account_data": {"types": []}},
}


class MatrixBot:
    def __init__(self, api: MatrixApi, channel: MatrixChannel, store: Store) -> None:
        self.api = api
        self.channel = channel
        self.store = store
        self.pending_joins: set[str] = set()
        self.told_encrypted: set[str] = set()   # saves asking the store on every sync

    async def _join(self, room_id: str) -> None:
        """Join a room the bot was invited to; a refusal (often the homeserver's 429, which also counts
        joins) is tried again after the next sync, since the invite is not sent again."""
        response = await self.api.client.join(room_id)
        if isinstance(response, JoinResponse):
            self.pending_joins.discard(room_id)
            log.info("joined a room")
        elif getattr(response, "status_code", None) in PERMANENT:
            self.pending_joins.discard(room_id)   # the invite was withdrawn, the room is gone …
            log.warning("could not join a room", extra={"error": response.status_code})
        else:
            self.pending_joins.add(room_id)
            log.warning("could not join a room yet", extra={"error": getattr(response, "status_code", None)})

    def _direct(self, room_id: str) -> bool:
        room = self.api.client.rooms.get(room_id)
        return room is not None and room.member_count <= 2

    async def process(self, response: SyncResponse) -> None:
        for room_id in list(self.pending_joins):
            await self._join(room_id)
        for room_id, invite in response.rooms.invite.items():
            if any(isinstance(e, InviteMemberEvent) and e.state_key == self.api.user_id and e.membership == "invite"
                   for e in invite.invite_state):
                await self._join(room_id)
        for room_id, room in response.rooms.join.items():
            await self._check_encrypted(room_id, room.timeline.events)
            for event in room.timeline.events:
                if not isinstance(event, (RoomMessage, ReactionEvent)) and not _malformed_media(event):
                    continue
                source = event.source
                incoming = Incoming(room_id=room_id, sender=source["sender"], event_id=source["event_id"],
                                    content=dict(source.get("content") or {}), direct=self._direct(room_id))
                try:
                    await self.channel.handle(incoming)
                except Exception:  # noqa: BLE001 - one bad event must not stop the bot
                    log.exception("event not handled", extra={"room_kind": self.channel.room(room_id, False).kind})

    async def _check_encrypted(self, room_id: str, timeline: list[Any]) -> None:
        """A room with encryption on (seen in its state once joined, which covers being invited to one)
        or an encrypted event in it: the channel tells it once that the bot cannot read it."""
        if room_id in self.told_encrypted:
            return
        known = self.api.client.rooms.get(room_id)
        if not ((known is not None and known.encrypted) or any(_encryption(e) for e in timeline)):
            return
        try:
            await self.channel.encrypted_room(room_id)
            self.told_encrypted.add(room_id)
        except Exception as exc:  # noqa: BLE001 - tried again on the next sync that touches the room
            log.warning("could not tell an encrypted room", extra={"error": type(exc).__name__})

    async def run(self, stop: asyncio.Event) -> None:
        await self.api.login()
        since = await self.store.sync_token()
        first = since is None
        pause = 1.0
        while not stop.is_set():
            try:
                # Joins still owed: come back soon rather than after a full long poll.
                wait_ms = 0 if first else (1000 if self.pending_joins else SYNC_TIMEOUT_MS)
                sync = asyncio.create_task(self.api.client.sync(timeout=wait_ms,
                                                                sync_filter=SYNC_FILTER, since=since,
                                                                full_state=first or None))
                stopped = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({sync, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if sync not in done:
                    sync.cancel()
                    break
                stopped.cancel()
                response: Any = sync.result()
                if not isinstance(response, SyncResponse):
                    raise RuntimeError(f"sync failed: {getattr(response, 'status_code', response)}")
                if first:
                    # A new bot (or lost store) does not replay the rooms' history: joins invites only.
                    response.rooms.join.clear()
                await self.process(response)
                since = response.next_batch
                await self.store.set_sync_token(since)
                first, pause = False, 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - homeserver away: try again, slower each time
                log.warning("matrix sync failed", extra={"error": type(exc).__name__})
                try:
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                except TimeoutError:
                    pass
                pause = min(pause * 2, 60.0)


def _malformed_media(event: Any) -> bool:
    """An image or location nio could not parse (an image without its `url`): the resident still
    gets a kind answer, so it goes to the channel like any message."""
    if not isinstance(event, (BadEvent, UnknownBadEvent)):
        return False
    source = event.source if isinstance(event.source, dict) else {}
    content = source.get("content")
    return (source.get("type") == "m.room.message" and isinstance(content, dict)
            and content.get("msgtype") in events.MEDIA and isinstance(source.get("sender"), str)
            and isinstance(source.get("event_id"), str))


def _encryption(event: Any) -> bool:
    """An encrypted event (whatever nio made of it) or the event that turned encryption on."""
    source = getattr(event, "source", None)
    return isinstance(source, dict) and source.get("type") in ("m.room.encrypted", "m.room.encryption")


def create_matrix_bot(settings: Settings, database: Database, broker: dramatiq.Broker,
                      config: CommunitiesConfig | None = None) -> MatrixBot:
    config = config or load_config(settings)
    store = create_store(settings.redis_url, str(settings.matrix_user_id))
    api = MatrixApi(settings, store)

    async def enqueue(contract, payload) -> None:  # type: ignore[no-untyped-def]
        await send_async(broker, contract, payload)

    channel = MatrixChannel(api, store, database.sessions, config, enqueue, settings.max_requests_per_hour)
    return MatrixBot(api, channel, store)


async def run_matrix(settings: Settings, stop: asyncio.Event, *, broker: dramatiq.Broker | None = None) -> None:
    if not settings.matrix_enabled:
        raise RuntimeError("the Matrix bot needs MATRIX_HOMESERVER, MATRIX_USER_ID and a password or access token")
    database = Database.connect(settings)
    broker = broker or create_broker(settings)
    bot = create_matrix_bot(settings, database, broker)
    log.info("matrix bot started")
    try:
        await bot.run(stop)
    finally:
        await bot.api.close()
        await bot.store.close()
        await database.close()
