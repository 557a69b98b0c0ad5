"""Small formatting helpers shared by flows and notifications (all text from catalogues)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.clock import as_utc
from shared.config import CommunitiesConfig
from shared.i18n import normalize_locale, t

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def category_name(locale: str, label: str | None) -> str:
    return t(locale, f"category.{label or 'other'}")


def status_name(locale: str, status: str) -> str:
    return t(locale, f"status.{status}")


def community_name(config: CommunitiesConfig, code: str, locale: str) -> str:
    names = config.community(code).name
    return names.get(normalize_locale(locale)) or names["zh"]


def brand_name(config: CommunitiesConfig, code: str, locale: str) -> str:
    names = config.community(code).brand
    return names.get(normalize_locale(locale)) or names["zh"]


def format_due(config: CommunitiesConfig, locale: str, when: datetime) -> str:
    local = as_utc(when).astimezone(ZoneInfo(config.defaults.timezone))
    return t(
        locale,
        "time.due",
        month=local.month,
        month_name=_MONTHS[local.month - 1],
        day=local.day,
        hour=local.hour,
        minute=local.minute,
    )
