"""Telegram's flood limits, shared by every delivery worker process.

Telegram allows a bot about 30 messages/s overall, about 1 message/s per chat
(short bursts are tolerated) and 20 messages/min per group. Every process that
sends must see the same counters, so the state lives in Redis and one Lua
script decides atomically over all the limits that apply to a message:

- the bot and each chat are GCRA token buckets (one key holding the
  "theoretical arrival time"; rate = 1 / interval, burst = tolerance);
- each group is a sliding window (a sorted set of send times), like Telegram's
  "20 in any minute".

The script never says only "no": it answers *when* the message may go, using
Redis's own clock (`TIME`), so workers on other machines agree without clock
sync and nobody polls. What a caller does with the answer:

- GRANT(wait): a slot at now + wait (wait <= `max_wait`) is taken in every
  limit; sleep `wait`, then send.
- DEFER(wait): the chat (or group) is booked further ahead than `max_wait`.
  The chat/group slot is reserved now and a *ticket* for this outbox row is
  left in Redis; the caller gives the row back and re-enqueues its message with
  that delay. When the message returns, the ticket stands for the reserved
  slot, so a backlog to one group costs one round trip per message, not a
  retry storm.
- EARLY(wait): a ticket exists and its slot is still far ahead: this is a
  second copy of a postponed message (the scheduler re-enqueues pending rows);
  the copy holding the ticket is on its way, so this one is dropped.
  A ticket whose slot has passed by more than `Rates.slot_lateness` is given
  up and the message is booked afresh: sent that late, it would go right next
  to the chat's next booked message, a burst the chat's limit may refuse.
- BUSY(wait): the bot-wide bucket is booked further ahead than `max_wait`
  (more messages in flight than the rate allows); nothing is taken, re-enqueue
  with that delay.

`penalize(chat, retry_after)` records Telegram's 429 for a chat, so every worker
waits it out. `debit(chat)` counts a message sent outside the delivery path
(the bot's direct replies) without waiting, so delivery leaves room for it.

Without Redis (`linju run` with the in-process broker: one process), the same
algorithm runs in memory (`MemoryLimiter`).

Why not dramatiq's `rate_limits`: its limiters answer yes/no (a worker would have
to poll), cannot take three limits atomically (a global slot taken before the
per-chat check fails is wasted), and `BucketRateLimiter` counts per fixed window,
so 30 at the end of one second and 30 at the start of the next reach Telegram
within milliseconds and are refused.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("linju.ratelimit")

US = 1_000_000  # microseconds per second: the script works in integer microseconds


class DeliveryLimits(BaseSettings):
    """`DELIVERY_*` environment variables (and `.env`). Defaults are Telegram's documented limits."""

    model_config = SettingsConfigDict(env_prefix="DELIVERY_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    bot_per_second: float = 30.0
    bot_burst: float = 10.0  # messages that may leave at once after a quiet spell
    chat_per_second: float = 1.0
    chat_burst: float = 2.0
    group_per_minute: float = 20.0
    group_window_seconds: float = 60.0
    # Added to the group window: a reserved group slot may be sent up to `max_wait` late.
    group_margin_seconds: float = 2.0
    # A worker waits (asyncio.sleep, no thread spinning) at most this long for a slot;
    # longer waits re-enqueue the message with a delay instead.
    max_wait_seconds: float = 1.0
    # Multiplies every rate (the playground's `--scale`, for short test and benchmark runs).
    scale: float = 1.0
    namespace: str = "linju:ratelimit"

    def rates(self) -> "Rates":
        s = self.scale
        return Rates(
            bot_interval=1 / (self.bot_per_second * s),
            bot_tolerance=max(0.0, self.bot_burst - 1) / (self.bot_per_second * s),
            chat_interval=1 / (self.chat_per_second * s),
            chat_tolerance=max(0.0, self.chat_burst - 1) / (self.chat_per_second * s),
            group_limit=max(1, int(self.group_per_minute * s)),
            group_window=self.group_window_seconds + self.group_margin_seconds,
            max_wait=self.max_wait_seconds,
        )


@dataclass(frozen=True)
class Rates:
    """The limits in the units the algorithm uses (seconds between messages)."""

    bot_interval: float
    bot_tolerance: float
    chat_interval: float
    chat_tolerance: float
    group_limit: int
    group_window: float
    max_wait: float
    ticket_grace: float = 600.0  # a ticket outlives its slot by this much (then the scheduler's copy proceeds)

    @property
    def slot_lateness(self) -> float:
        """How late after its booked slot a deferred message may still use it (half a chat interval).

        Later than that, it would go too close to the chat's next booked message, so it books a
        new slot instead (Telegram's burst allowance is not documented; half an interval keeps
        a margin below ours)."""
        return self.chat_interval / 2

    @property
    def chat_slack(self) -> float:
        """How far ahead a chat's slot may be and the worker still waits for it in place.

        The bot-wide bucket is booked at the moment a message will really go, so waiting
        for a busy chat in place makes the bot skip its free slots meanwhile; two slots at
        most. Longer chat waits are booked and re-enqueued (DEFER).
        """
        return min(self.max_wait, 2 * self.bot_interval)


class Outcome(IntEnum):
    GRANT = 1
    DEFER = 2
    EARLY = 3
    BUSY = 4


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    wait: float  # seconds

    @property
    def granted(self) -> bool:
        return self.outcome is Outcome.GRANT


class Limiter(Protocol):
    rates: Rates

    async def acquire(self, chat_id: int, ticket: int | str) -> Decision: ...

    async def debit(self, chat_id: int) -> float: ...

    async def penalize(self, chat_id: int, retry_after: float) -> None: ...

    async def close(self) -> None: ...


def is_group(chat_id: int) -> bool:
    return chat_id < 0  # Telegram: users are positive, groups and supergroups negative


# --------------------------------------------------------------------------------------------------------------
# Redis: one script, atomic across every worker process.

_ACQUIRE = """
-- KEYS: bot, chat, group window, ticket.  ARGV: see RedisLimiter._args.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local bi, btol = tonumber(ARGV[1]), tonumber(ARGV[2])
local ci, ctol = tonumber(ARGV[3]), tonumber(ARGV[4])
local group = ARGV[5] == '1'
local glimit, gwin = tonumber(ARGV[6]), tonumber(ARGV[7])
local maxw, grace = tonumber(ARGV[8]), tonumber(ARGV[9])
local mode, member = ARGV[10], ARGV[11]
local slack = tonumber(ARGV[12])
local lateness = tonumber(ARGV[13])

local function get(key)
  local v = redis.call('GET', key)
  if v then return tonumber(v) end
  return nil
end
local function ttl_ms(until_us) return math.floor((until_us - now) / 1000) + 1000 end
local function set_tat(key, tat) redis.call('SET', key, string.format('%d', tat), 'PX', ttl_ms(tat)) end
local function book_group(at)
  redis.call('ZADD', KEYS[3], at, member)
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[3], ttl_ms(tonumber(last[2]) + gwin))
end

local bot_tat = math.max(get(KEYS[1]) or now, now)
local chat_tat = math.max(get(KEYS[2]) or now, now)
local prepaid = nil
if mode == 'send' then prepaid = get(KEYS[4]) end
if prepaid and now - prepaid > lateness then
  -- back too late for its booked slot: give the slot up and book afresh
  redis.call('DEL', KEYS[4])
  prepaid = nil
end

local chat_at
if prepaid then
  chat_at = prepaid
else
  chat_at = math.max(now, chat_tat - ctol)
  if group then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - gwin)
    local n = redis.call('ZCARD', KEYS[3])
    if n >= glimit then
      local e = redis.call('ZRANGE', KEYS[3], n - glimit, n - glimit, 'WITHSCORES')
      chat_at = math.max(chat_at, tonumber(e[2]) + gwin)
    end
  end
end
local bot_at = math.max(now, bot_tat - btol)

if mode == 'debit' then
  set_tat(KEYS[1], bot_tat + bi)
  set_tat(KEYS[2], chat_tat + ci)
  if group then book_group(now) end
  return {1, math.max(chat_at, bot_at) - now}
end
if prepaid then
  -- a postponed message back for its booked chat slot; a copy arriving far too early steps aside
  if chat_at - now > maxw then return {3, chat_at - now} end
elseif chat_at - now > slack then
  -- the chat (or group) is busy: book its next slot, leave a ticket, come back then
  set_tat(KEYS[2], math.max(chat_tat, chat_at) + ci)
  if group then book_group(chat_at) end
  redis.call('SET', KEYS[4], string.format('%d', chat_at), 'PX', ttl_ms(chat_at + grace))
  return {2, chat_at - now}
end
if bot_at - now > maxw then return {4, bot_at - now} end
local at = math.max(chat_at, bot_at)
set_tat(KEYS[1], math.max(bot_tat, at) + bi)
if prepaid then
  redis.call('DEL', KEYS[4])
else
  set_tat(KEYS[2], math.max(chat_tat, at) + ci)
  if group then book_group(at) end
end
return {1, at - now}
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
if want > tat then
  redis.call('SET', KEYS[1], string.format('%d', want), 'PX', math.floor((want - now) / 1000) + 1000)
end
return 1
"""


class RedisLimiter:
    """The limits in Redis: correct across any number of worker processes and machines."""

    def __init__(self, client: Any, rates: Rates, namespace: str, bot_id: int | str) -> None:
        self.client = client  # redis.asyncio.Redis
        self.rates = rates
        self.prefix = f"{namespace}:{bot_id}"
        self._acquire = client.register_script(_ACQUIRE)
        self._penalize = client.register_script(_PENALIZE)

    @classmethod
    def from_url(cls, url: str, rates: Rates, namespace: str, bot_id: int | str) -> "RedisLimiter":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
        return cls(client, rates, namespace, bot_id)

    def _keys(self, chat_id: int, ticket: int | str) -> list[str]:
        p = self.prefix
        return [f"{p}:bot", f"{p}:chat:{chat_id}", f"{p}:group:{chat_id}", f"{p}:ticket:{ticket}"]

    def _args(self, chat_id: int, mode: str) -> list[Any]:
        r = self.rates
        return [round(r.bot_interval * US), round(r.bot_tolerance * US), round(r.chat_interval * US),
                round(r.chat_tolerance * US), "1" if is_group(chat_id) else "0", r.group_limit,
                round(r.group_window * US), round(r.max_wait * US), round(r.ticket_grace * US), mode,
                uuid.uuid4().hex, round(r.chat_slack * US), round(r.slot_lateness * US)]

    async def acquire(self, chat_id: int, ticket: int | str) -> Decision:
        code, wait = await self._acquire(keys=self._keys(chat_id, ticket), args=self._args(chat_id, "send"))
        return Decision(Outcome(int(code)), max(0, int(wait)) / US)

    async def debit(self, chat_id: int) -> float:
        _, wait = await self._acquire(keys=self._keys(chat_id, "-"), args=self._args(chat_id, "debit"))
        return max(0, int(wait)) / US

    async def penalize(self, chat_id: int, retry_after: float) -> None:
        await self._penalize(keys=[f"{self.prefix}:chat:{chat_id}"],
                             args=[round(retry_after * US), round(self.rates.chat_tolerance * US)])

    async def close(self) -> None:
        await self.client.aclose()


# --------------------------------------------------------------------------------------------------------------
# In memory: the same algorithm for a single process (the in-process broker of `linju run` without Redis).


class MemoryLimiter:
    PRUNE_EVERY = 1000  # calls; forgets chats and tickets that no longer matter, as Redis keys expire

    def __init__(self, rates: Rates, clock: Any = time.time) -> None:
        self.rates = rates
        self.clock = clock
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}
        self._groups: dict[int, list[float]] = {}
        self._tickets: dict[str, float] = {}
        self._calls = 0

    def _prune(self, now: float) -> None:
        r = self.rates
        self._tat = {k: v for k, v in self._tat.items() if v > now - r.bot_tolerance - r.chat_tolerance}
        self._groups = {k: w for k, w in self._groups.items() if w and max(w) > now - r.group_window}
        self._tickets = {k: v for k, v in self._tickets.items() if v > now - r.ticket_grace}

    def _decide(self, chat_id: int, ticket: str | None, mode: str) -> Decision:
        r, now = self.rates, self.clock()
        self._calls += 1
        if self._calls % self.PRUNE_EVERY == 0:
            self._prune(now)
        group = is_group(chat_id)
        chat_key = f"chat:{chat_id}"
        bot_tat = max(self._tat.get("bot", now), now)
        chat_tat = max(self._tat.get(chat_key, now), now)
        prepaid = self._tickets.get(ticket) if (mode == "send" and ticket is not None) else None
        if prepaid is not None and now - prepaid > r.slot_lateness:
            del self._tickets[ticket]  # type: ignore[arg-type]
            prepaid = None
        window = self._groups.setdefault(chat_id, []) if group else []
        if group:
            window[:] = [e for e in window if e > now - r.group_window]
            window.sort()
        if prepaid is not None:
            chat_at = prepaid
        else:
            chat_at = max(now, chat_tat - r.chat_tolerance)
            if group and len(window) >= r.group_limit:
                chat_at = max(chat_at, window[len(window) - r.group_limit] + r.group_window)
        bot_at = max(now, bot_tat - r.bot_tolerance)
        if mode == "debit":
            self._tat["bot"] = bot_tat + r.bot_interval
            self._tat[chat_key] = chat_tat + r.chat_interval
            if group:
                window.append(now)
            return Decision(Outcome.GRANT, max(chat_at, bot_at) - now)
        if prepaid is not None:
            if chat_at - now > r.max_wait:
                return Decision(Outcome.EARLY, chat_at - now)
        elif chat_at - now > r.chat_slack:
            self._tat[chat_key] = max(chat_tat, chat_at) + r.chat_interval
            if group:
                window.append(chat_at)
            self._tickets[ticket] = chat_at  # type: ignore[index]
            return Decision(Outcome.DEFER, chat_at - now)
        if bot_at - now > r.max_wait:
            return Decision(Outcome.BUSY, bot_at - now)
        at = max(chat_at, bot_at)
        self._tat["bot"] = max(bot_tat, at) + r.bot_interval
        if prepaid is not None:
            del self._tickets[ticket]  # type: ignore[arg-type]
        else:
            self._tat[chat_key] = max(chat_tat, at) + r.chat_interval
            if group:
                window.append(at)
        return Decision(Outcome.GRANT, at - now)

    async def acquire(self, chat_id: int, ticket: int | str) -> Decision:
        with self._lock:
            return self._decide(chat_id, str(ticket), "send")

    async def debit(self, chat_id: int) -> float:
        with self._lock:
            return self._decide(chat_id, None, "debit").wait

    async def penalize(self, chat_id: int, retry_after: float) -> None:
        with self._lock:
            key = f"chat:{chat_id}"
            want = self.clock() + retry_after + self.rates.chat_tolerance
            self._tat[key] = max(self._tat.get(key, 0.0), want)

    async def close(self) -> None:
        pass


def scaled(limits: DeliveryLimits, factor: float) -> DeliveryLimits:
    """The same limits with every rate multiplied (as the playground's `--scale`)."""
    return limits.model_copy(update={"scale": limits.scale * factor})


__all__ = ["Decision", "DeliveryLimits", "Limiter", "MemoryLimiter", "Outcome", "Rates", "RedisLimiter",
           "create_limiter", "is_group", "scaled"]


def create_limiter(broker: Any, redis_url: str | None, limits: DeliveryLimits, bot_id: int | str) -> Limiter:
    """The limiter every delivery process of a deployment shares.

    - in-process broker: one process, so memory is enough;
    - Redis broker: Redis at `redis_url`, else the broker's own Redis server;
    - any other broker (RabbitMQ): Redis at `redis_url` when it answers, else memory with a
      warning (the limits then hold per process only).
    """
    from dramatiq.brokers.stub import StubBroker

    rates = limits.rates()
    if isinstance(broker, StubBroker):
        return MemoryLimiter(rates)
    url = redis_url
    if url is None:
        client = getattr(broker, "client", None)
        kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
        if kwargs and "host" in kwargs:
            auth = ""
            if kwargs.get("password"):
                auth = f"{kwargs.get('username') or ''}:{kwargs['password']}@"
            url = f"redis://{auth}{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_answers

    if url and (isinstance(broker, RedisBroker) or redis_answers(url)):
        return RedisLimiter.from_url(url, rates, limits.namespace, bot_id)
    log.warning("delivery rate limits are kept in memory: they hold per process only (no Redis answers)")
    return MemoryLimiter(rates)
