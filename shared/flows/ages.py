"""How old a request is, in words."""

from __future__ import annotations

from datetime import datetime

from shared.clock import as_utc, utcnow
from shared.i18n import t


def age(locale: str, created_at: datetime) -> str:
    hours = int((utcnow() - as_utc(created_at)).total_seconds() // 3600)
    return t(locale, "staff.age_hours", hours=hours) if hours < 48 else t(locale, "staff.age_days", days=hours // 24)
