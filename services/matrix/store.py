"""What the Matrix channel remembers between events and across restarts.

- conversation state per person (the same dict the Telegram bot keeps in its FSM storage);
- the options last offered in each room, and those of each message by event id, so "2"
  (or a reply to an older message) means the option shown there;
- event ids already handled (a redelivered event changes nothing);
- each person's direct room (delivery needs a room for a person's Matrix id);
- the sync token, so a restarted bot resumes where it stopped;
- the encrypted rooms already told that the bot cannot read them (once per room, for good).

Kept in Redis, shared by the bot and every delivery worker. Without Redis (`linju run`
on a laptop, one process) the same API runs in memory, as the Telegram FSM does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

STATE_TTL = 30 * 86400
OPTIONS_TTL = 30 * 86400
SEEN_TTL = 7 * 86400


@dataclass(frozen=True)
class Offered:
    """Options shown in one message: who may answer them (None = anyone in the room) and the choices."""

    event_id: str
    for_user: str | None
    options: list[dict[str, str]]   # [{"text": ..., "action": ...}] in the order numbered


class Store(Protocol):
    async def get_state(self, user_id: str) -> dict[str, Any]: ...
    async def set_state(self, user_id: str, state: dict[str, Any]) -> None: ...
    async def offer(self, room_id: str, offered: Offered) -> None: ...
    async def offered(self, room_id: str, event_id: str | None = None) -> Offered | None: ...
    async def clear_last(self, room_id: str) -> None: ...
    async def first_seen(self, event_id: str) -> bool: ...
    async def dm_room(self, user_id: str) -> str | None: ...
    async def set_dm_room(self, user_id: str, room_id: str) -> None: ...
    async def sync_token(self) -> str | None: ...
    async def set_sync_token(self, token: str) -> None: ...
    async def claim_encrypted_notice(self, room_id: str) -> bool: ...
    async def release_encrypted_notice(self, room_id: str) -> None: ...
    async def close(self) -> None: ...


def _dump(offered: Offered) -> str:
    return json.dumps({"e": offered.event_id, "u": offered.for_user, "o": offered.options}, ensure_ascii=False)


def _load(raw: str | bytes | None) -> Offered | None:
    if not raw:
        return None
    data = json.loads(raw)
    return Offered(data["e"], data["u"], data["o"])


class RedisStore:
    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.ns = namespace

    @classmethod
    def from_url(cls, url: str, bot_user: str) -> "RedisStore":
        import redis.asyncio as redis

        return cls(redis.Redis.from_url(url), f"linju:matrix:{bot_user}")

    async def get_state(self, user_id: str) -> dict[str, Any]:
        raw = await self.client.get(f"{self.ns}:state:{user_id}")
        return json.loads(raw) if raw else {}

    async def set_state(self, user_id: str, state: dict[str, Any]) -> None:
        key = f"{self.ns}:state:{user_id}"
        if state:
            await self.client.set(key, json.dumps(state, ensure_ascii=False), ex=STATE_TTL)
        else:
            await self.client.delete(key)

    async def offer(self, room_id: str, offered: Offered) -> None:
        raw = _dump(offered)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(f"{self.ns}:opt:{room_id}:{offered.event_id}", raw, ex=OPTIONS_TTL)
            pipe.set(f"{self.ns}:last:{room_id}", raw, ex=OPTIONS_TTL)
            await pipe.execute()

    async def offered(self, room_id: str, event_id: str | None = None) -> Offered | None:
        key = f"{self.ns}:opt:{room_id}:{event_id}" if event_id else f"{self.ns}:last:{room_id}"
        return _load(await self.client.get(key))

    async def clear_last(self, room_id: str) -> None:
        await self.client.delete(f"{self.ns}:last:{room_id}")

    async def first_seen(self, event_id: str) -> bool:
        return bool(await self.client.set(f"{self.ns}:seen:{event_id}", b"1", nx=True, ex=SEEN_TTL))

    async def dm_room(self, user_id: str) -> str | None:
        raw = await self.client.get(f"{self.ns}:dm:{user_id}")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def set_dm_room(self, user_id: str, room_id: str) -> None:
        await self.client.set(f"{self.ns}:dm:{user_id}", room_id)

    async def sync_token(self) -> str | None:
        raw = await self.client.get(f"{self.ns}:since")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def set_sync_token(self, token: str) -> None:
        await self.client.set(f"{self.ns}:since", token)

    async def claim_encrypted_notice(self, room_id: str) -> bool:
        """True once per room (no expiry): whoever gets True sends the notice."""
        return bool(await self.client.set(f"{self.ns}:enc:{room_id}", b"1", nx=True))

    async def release_encrypted_notice(self, room_id: str) -> None:
        """The notice could not be sent: the next sync may try again."""
        await self.client.delete(f"{self.ns}:enc:{room_id}")

    async def close(self) -> None:
        await self.client.aclose()


class MemoryStore:
    """One process only (no Redis): the same behaviour, forgotten on restart."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[Any, float | None]] = {}

    def _get(self, key: str) -> Any:
        value, expires = self.values.get(key, (None, None))
        if expires is not None and expires < time.monotonic():
            self.values.pop(key, None)
            return None
        return value

    def _set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self.values[key] = (value, None if ttl is None else time.monotonic() + ttl)

    async def get_state(self, user_id: str) -> dict[str, Any]:
        return json.loads(self._get(f"state:{user_id}") or "{}")

    async def set_state(self, user_id: str, state: dict[str, Any]) -> None:
        self._set(f"state:{user_id}", json.dumps(state), STATE_TTL)

    async def offer(self, room_id: str, offered: Offered) -> None:
        self._set(f"opt:{room_id}:{offered.event_id}", _dump(offered), OPTIONS_TTL)
        self._set(f"last:{room_id}", _dump(offered), OPTIONS_TTL)

    async def offered(self, room_id: str, event_id: str | None = None) -> Offered | None:
        return _load(self._get(f"opt:{room_id}:{event_id}" if event_id else f"last:{room_id}"))

    async def clear_last(self, room_id: str) -> None:
        self.values.pop(f"last:{room_id}", None)

    async def first_seen(self, event_id: str) -> bool:
        if self._get(f"seen:{event_id}"):
            return False
        self._set(f"seen:{event_id}", True, SEEN_TTL)
        return True

    async def dm_room(self, user_id: str) -> str | None:
        return self._get(f"dm:{user_id}")

    async def set_dm_room(self, user_id: str, room_id: str) -> None:
        self._set(f"dm:{user_id}", room_id)

    async def sync_token(self) -> str | None:
        return self._get("since")

    async def set_sync_token(self, token: str) -> None:
        self._set("since", token)

    async def claim_encrypted_notice(self, room_id: str) -> bool:
        if self._get(f"enc:{room_id}"):
            return False
        self._set(f"enc:{room_id}", True)
        return True

    async def release_encrypted_notice(self, room_id: str) -> None:
        self.values.pop(f"enc:{room_id}", None)

    async def close(self) -> None:
        return None


_MEMORY: dict[str, MemoryStore] = {}


def create_store(redis_url: str | None, bot_user: str) -> Store:
    """Redis when it answers (every process shares it); else one in-memory store per process."""
    from shared.queue.broker import redis_answers

    if redis_url and redis_answers(redis_url):
        return RedisStore.from_url(redis_url, bot_user)
    # The bot and the delivery worker of `linju run` live in one process: they share this one.
    return _MEMORY.setdefault(bot_user, MemoryStore())
