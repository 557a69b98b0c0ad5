"""The bot account on the homeserver, through matrix-nio: log in, send, edit, find a person's direct room.

Every message with options is recorded in the store under its event id (and as the
room's latest offer), so an answer can be matched to what was shown, by any process.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from nio import AsyncClient, AsyncClientConfig, RoomCreateResponse, RoomPreset, RoomSendResponse

from services.matrix import options as opts
from services.matrix.store import Offered, Store
from shared.flows.reply import Reply
from shared.outbound import Refused, RetryLater
from shared.settings import Settings

log = logging.getLogger("linju.matrix")

# Errors after which sending the same message again cannot succeed.
PERMANENT = {"M_FORBIDDEN", "M_NOT_FOUND", "M_TOO_LARGE", "M_BAD_JSON", "M_NOT_JSON", "M_INVALID_PARAM",
             "M_UNKNOWN"}


def txn_id(key: str) -> str:
    """A transaction id derived from the outbox key: the homeserver answers a resend with the first event."""
    return "linju." + hashlib.sha256(key.encode()).hexdigest()[:40]


def create_client(settings: Settings) -> AsyncClient:
    # nio would retry 429s and timeouts itself, forever by default: the delivery worker decides instead.
    config = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False, max_limit_exceeded=0,
                               max_timeouts=0, request_timeout=60)
    client = AsyncClient(settings.matrix_homeserver, settings.matrix_user_id, device_id=settings.matrix_device_id,
                         config=config)
    return client


class MatrixApi:
    def __init__(self, settings: Settings, store: Store, client: AsyncClient | None = None) -> None:
        self.settings = settings
        self.store = store
        self.client = client or create_client(settings)
        self._logged_in = False

    @property
    def user_id(self) -> str:
        return str(self.settings.matrix_user_id)

    async def login(self) -> None:
        if self._logged_in:
            return
        if self.settings.matrix_access_token:
            self.client.access_token = self.settings.matrix_access_token.get_secret_value()
            self.client.user_id = self.user_id
            self.client.device_id = self.settings.matrix_device_id
        else:
            assert self.settings.matrix_password is not None
            response = await self.client.login(self.settings.matrix_password.get_secret_value(),
                                               device_name="Linju")
            if not getattr(response, "access_token", None):
                raise RuntimeError(f"Matrix login failed: {getattr(response, 'status_code', response)}")
        self._logged_in = True

    @staticmethod
    def _check(response: Any) -> Any:
        if isinstance(response, (RoomSendResponse, RoomCreateResponse)):
            return response
        code = getattr(response, "status_code", None)
        if code == "M_LIMIT_EXCEEDED":
            raise RetryLater((getattr(response, "retry_after_ms", None) or 1000) / 1000)
        if code in PERMANENT:
            raise Refused(code)
        raise RuntimeError(f"homeserver error {code}")

    async def _send_content(self, room_id: str, content: dict[str, Any], txn: str | None) -> str:
        await self.login()
        response = await self.client.room_send(room_id, "m.room.message", content, tx_id=txn,
                                               ignore_unverified_devices=True)
        return self._check(response).event_id

    async def send(self, room_id: str, reply: Reply, *, for_user: str | None, txn: str | None = None) -> str:
        event_id = await self._send_content(room_id, opts.content(reply), txn)
        choices = opts.flat(reply)
        if choices:
            await self.store.offer(room_id, Offered(event_id, for_user, choices))
        return event_id

    async def notice(self, room_id: str, text: str) -> str:
        """A plain `m.notice` (what bots say without expecting an answer; other bots ignore it)."""
        return await self._send_content(room_id, {"msgtype": "m.notice", "body": text}, None)

    async def edit(self, room_id: str, event_id: str, reply: Reply, *, for_user: str | None,
                   txn: str | None = None) -> str:
        """Replace the text (and options) of a message the bot sent; answers to its old options stop working."""
        await self._send_content(room_id, opts.edit_content(event_id, reply), txn)
        choices = opts.flat(reply)
        last = await self.store.offered(room_id)
        if choices:
            await self.store.offer(room_id, Offered(event_id, for_user, choices))
        else:
            await self.store.offer(room_id, Offered(event_id, for_user, []))
            if last is None or last.event_id != event_id:
                # Recording the edit made it the room's latest offer; put the real latest one back.
                if last is None:
                    await self.store.clear_last(room_id)
                else:
                    await self.store.offer(room_id, last)
        return event_id

    async def direct_room(self, user_id: str) -> str:
        """The person's direct room with the bot; created (and the person invited) when there is none."""
        room_id = await self.store.dm_room(user_id)
        if room_id:
            return room_id
        await self.login()
        response = self._check(await self.client.room_create(is_direct=True, invite=[user_id],
                                                             preset=RoomPreset.trusted_private_chat))
        await self.store.set_dm_room(user_id, response.room_id)
        log.info("direct room created")
        return response.room_id

    async def close(self) -> None:
        await self.client.close()
