"""Telegram-like flood limits (off unless asked for).

As Telegram's documentation describes the limits: about 30 messages per second
for the bot overall and about 1 per second per chat with a small burst (token
buckets), and at most 20 messages in any minute per group (a sliding window).
``scale`` multiplies every rate (and the sizes that are rates too) so short test
runs can exercise the limits.  A refused message consumes nothing and is
answered with 429 and retry_after.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    BOT_PER_SECOND = 30.0
    CHAT_PER_SECOND = 1.0
    CHAT_BURST = 3.0
    GROUP_PER_MINUTE = 20.0

    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.buckets: dict[tuple[str, int], Bucket] = {}
        self.windows: dict[int, deque[float]] = {}

    def _bucket(self, key: tuple[str, int], rate: float, capacity: float, now: float) -> Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            capacity = max(1.0, capacity)
            bucket = self.buckets[key] = Bucket(rate, capacity, capacity, now)
        bucket.refill(now)
        return bucket

    def acquire(self, chat_id: int, is_group: bool) -> int:
        """0 if the message may go now (and it is counted), else the retry_after in whole seconds."""
        now = self.clock()
        s = self.scale
        buckets = [
            self._bucket(("bot", 0), self.BOT_PER_SECOND * s, self.BOT_PER_SECOND * s, now),
            self._bucket(("chat", chat_id), self.CHAT_PER_SECOND * s, self.CHAT_BURST, now),
        ]
        wait = max(bucket.wait_time() for bucket in buckets)
        window = None
        if is_group:
            window = self.windows.setdefault(chat_id, deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= max(1.0, self.GROUP_PER_MINUTE * s):
                wait = max(wait, window[0] + 60 - now)
        if wait > 0:
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1
        if window is not None:
            window.append(now)
        return 0
