"""The `activities:` parts of config/communities.yaml: activities per community, and their defaults.

Validated with the rest of the file (shared.config), so a mistake names its line and field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain import activities as rules

Localized = dict[Literal["zh", "en"], str]
DayCode = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _span(value: str) -> str:
    if rules.parse_span(value) is None:
        raise ValueError(f"time must look like 16:30-18:00 (start before end), got {value!r}")
    return value


class ActivityDates(_Strict):
    """One-off sessions: a date and a time span each."""

    date: date
    time: str

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return _span(value)


class ActivityWeekly(_Strict):
    """A weekly recurrence: these weekdays at this time, from `first` to `last`, minus `skip` (holidays)."""

    days: list[DayCode] = Field(min_length=1)
    time: str
    first: date
    last: date
    skip: list[date] = Field(default_factory=list)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return _span(value)

    @model_validator(mode="after")
    def _range(self) -> "ActivityWeekly":
        if self.first > self.last:
            raise ValueError("weekly: first must not be after last")
        if (self.last - self.first).days > rules.MAX_SPAN_DAYS:
            raise ValueError(f"weekly: a recurrence runs at most {rules.MAX_SPAN_DAYS} days")
        return self

    def slots(self) -> list[rules.Slot]:
        start, end = rules.parse_span(self.time)  # type: ignore[misc]
        return rules.weekly([rules.DAY_CODES.index(d) for d in self.days], start, end, self.first, self.last,
                            frozenset(self.skip))


class ActivityConfig(_Strict):
    code: str = Field(pattern=r"^[a-z0-9_]{2,24}$")
    title: Localized
    description: Localized | None = None
    organiser: Localized | None = None          # who runs it, as residents know them
    programme: str | None = None                # the programme code it belongs to (e.g. four_thirty)
    audience: Literal["children", "seniors", "everyone"]
    age_min: int | None = Field(default=None, ge=rules.CHILD_AGE[0], le=120)
    age_max: int | None = Field(default=None, ge=rules.CHILD_AGE[0], le=120)
    place: Localized
    capacity: int = Field(gt=0, le=rules.MAX_CAPACITY)
    fee: float = Field(default=0, ge=0, le=rules.MAX_FEE)   # yuan per term; 0 = free
    enrol_opens: date | None = None
    enrol_closes: date | None = None                      # last day to enrol (inclusive)
    sessions: list[ActivityDates] = Field(default_factory=list)
    weekly: ActivityWeekly | None = None
    keywords: list[str] = Field(default_factory=list)     # words in a request that point here (intake)
    open_to_all: bool = False                             # residents of other communities may enrol

    @field_validator("title", "place")
    @classmethod
    def _zh(cls, value: dict[str, str]) -> dict[str, str]:
        if not (value.get("zh") or "").strip():
            raise ValueError("needs a zh text")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ActivityConfig":
        if not self.sessions and self.weekly is None:
            raise ValueError("give sessions (one-off dates) or weekly (a recurrence), or both")
        if self.audience == "children" and (self.age_min is None or self.age_max is None):
            raise ValueError("a children's activity needs age_min and age_max")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError("age_min must not be above age_max")
        if self.enrol_opens and self.enrol_closes and self.enrol_opens > self.enrol_closes:
            raise ValueError("enrol_opens must not be after enrol_closes")
        if len(self.all_slots()) > rules.MAX_SESSIONS:
            raise ValueError(f"at most {rules.MAX_SESSIONS} sessions per activity")
        return self

    def all_slots(self) -> list[rules.Slot]:
        slots = [rules.Slot(s.date, *rules.parse_span(s.time)) for s in self.sessions]  # type: ignore[misc]
        if self.weekly is not None:
            slots += self.weekly.slots()
        return sorted(set(slots), key=lambda s: (s.day, s.start))


class ActivityDefaults(_Strict):
    reminder_hours: float = Field(default=24, gt=0, le=168)    # remind participants this long before a session
    offer_hours: float = Field(default=24, gt=0, le=168)       # a freed place is kept this long for the next in line
    quiet_hours: str | None = "21:30-07:30"                     # no reminders or offers in these local hours

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^\d{2}:\d{2}-\d{2}:\d{2}$", value):
            raise ValueError(f"quiet hours must look like 21:30-07:30, got {value!r}")
        return value


def check_activities(communities: list) -> None:  # type: ignore[type-arg]
    """Cross-community rules: activity codes are unique everywhere."""
    seen: set[str] = set()
    for community in communities:
        for activity in community.activities:
            if activity.code in seen:
                raise ValueError(f"activity code {activity.code!r} is used twice")
            seen.add(activity.code)
            programmes = {p.code for p in community.programmes}
            if activity.programme and activity.programme not in programmes:
                raise ValueError(f"{community.code}: activity {activity.code!r} names unknown programme "
                                 f"{activity.programme!r}")
