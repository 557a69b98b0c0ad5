"""Time helpers: everything is stored in UTC; SQLite hands back naive datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_clock(value: datetime, timezone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as people read it: on the community's wall clock."""
    return as_utc(value).astimezone(_zone(timezone)).strftime(fmt)
