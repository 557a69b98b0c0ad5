"""The shared fridge (爱心共享冰箱): item states, drop-off slots, shifts, dates. Pure rules, no framework.

Every time here is explicit: callers pass `now` (UTC) and the community's time zone, so
"today", open hours, quiet hours and shift times are always the community's local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class ItemStatus(StrEnum):
    PLEDGED = "pledged"      # booked for a drop-off slot, not yet in the fridge
    IN_FRIDGE = "in_fridge"  # received by the shift volunteer (or staff)
    TO_REMOVE = "to_remove"  # past its best-before date: the shift volunteer must take it out
    TAKEN = "taken"          # all of it was taken
    REMOVED = "removed"      # taken out by the shift volunteer or staff
    REFUSED = "refused"      # not accepted at the fridge (with a reason)
    CANCELLED = "cancelled"  # the donor cancelled before drop-off
    LAPSED = "lapsed"        # never brought: the slot passed


_TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.PLEDGED: frozenset({ItemStatus.IN_FRIDGE, ItemStatus.REFUSED, ItemStatus.CANCELLED, ItemStatus.LAPSED}),
    ItemStatus.IN_FRIDGE: frozenset({ItemStatus.TO_REMOVE, ItemStatus.TAKEN, ItemStatus.REMOVED}),
    ItemStatus.TO_REMOVE: frozenset({ItemStatus.REMOVED, ItemStatus.TAKEN}),
    ItemStatus.TAKEN: frozenset(),
    ItemStatus.REMOVED: frozenset(),
    ItemStatus.REFUSED: frozenset(),
    ItemStatus.CANCELLED: frozenset(),
    ItemStatus.LAPSED: frozenset(),
}

# What occupies room in the fridge, now or soon (pledged items have a slot booked).
OCCUPYING = frozenset({ItemStatus.PLEDGED, ItemStatus.IN_FRIDGE, ItemStatus.TO_REMOVE})
KINDS = ("cooked", "bread", "produce", "drinks", "dairy", "packaged", "other")
REFUSE_REASONS = ("raw_meat", "opened", "no_date", "expired", "spoiled", "full", "other")
BEST_BEFORE_CHOICES = {"today": 0, "tomorrow": 1, "d3": 3}
QUANTITY_CHOICES = (1, 2, 3, 5, 10)
MAX_QUANTITY = 50
MAX_DAYS_AHEAD = 366
NAME_LIMIT = 40
# A pledge whose slot ended this long ago without a drop-off is released.
LAPSE_AFTER = timedelta(hours=2)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def can_transition(current: str, target: str) -> bool:
    return ItemStatus(target) in _TRANSITIONS[ItemStatus(current)]


def sources_of(target: str) -> frozenset[str]:
    goal = ItemStatus(target)
    return frozenset(str(s) for s, targets in _TRANSITIONS.items() if goal in targets)


# --- local time --------------------------------------------------------------------------------

def local(now: datetime, tz: str) -> datetime:
    value = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    return value.astimezone(ZoneInfo(tz))


def local_today(now: datetime, tz: str) -> date:
    return local(now, tz).date()


def at_local(day: date, clock: time, tz: str) -> datetime:
    """A local wall-clock time on a day, in UTC (how every time is stored)."""
    return datetime.combine(day, clock, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def parse_span(text: str) -> tuple[time, time]:
    """"07:00-21:00" → (07:00, 21:00). An end of 24:00 means midnight."""
    start, end = text.split("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1, m1), (time(23, 59, 59) if (h2, m2) == (24, 0) else time(h2, m2))


def day_set(spec: str) -> set[int]:
    """"mon-sun", "tue-sat", "mon,wed,fri", "sat" → weekdays (0 = Monday)."""
    days: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            first, last = (DAYS.index(x) for x in part.split("-"))
            span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
            days.update(span)
        else:
            days.add(DAYS.index(part))
    return days


def valid_day_spec(spec: str) -> bool:
    try:
        day_set(spec)
    except ValueError:
        return False
    return True


def hours_on(open_hours: dict[str, str], day: date) -> tuple[time, time] | None:
    for spec, span in open_hours.items():
        if day.weekday() in day_set(spec):
            return parse_span(span)
    return None


def in_quiet_hours(quiet: str | None, now: datetime, tz: str) -> bool:
    """Quiet hours like "22:00-07:00" may cross midnight."""
    if not quiet:
        return False
    start, end = parse_span(quiet)
    clock = local(now, tz).time()
    return (start <= clock < end) if start <= end else (clock >= start or clock < end)


# --- what a donor types ------------------------------------------------------------------------

_DATE_PATTERNS = (
    re.compile(r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?$"),
    re.compile(r"^(?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})[日号]?$"),
)
_NUMBER = re.compile(r"^\s*(\d{1,4})\s*(?:份|个|件|盒|袋|瓶|箱|斤|包|pcs?|items?|x)?\s*$", re.IGNORECASE)


def best_before_for(choice: str, today: date) -> date | None:
    days = BEST_BEFORE_CHOICES.get(choice)
    return None if days is None else today + timedelta(days=days)


def parse_date(text: str, today: date) -> date | None:
    """A typed best-before date: 2026-12-01, 2026/12/1, 12-01, 12月1日. Year optional (this or next)."""
    cleaned = text.strip().replace(" ", "")
    for pattern in _DATE_PATTERNS:
        match = pattern.match(cleaned)
        if not match:
            continue
        parts = match.groupdict()
        year = int(parts["y"]) if parts.get("y") else today.year
        try:
            value = date(year, int(parts["m"]), int(parts["d"]))
        except ValueError:
            return None
        if not parts.get("y") and value < today - timedelta(days=31):
            value = value.replace(year=year + 1)  # "1月5日" typed in December means next January
        return value
    return None


def date_problem(value: date | None, today: date) -> str | None:
    """Why a best-before date cannot be used (a catalogue key suffix), or None."""
    if value is None:
        return "date_invalid"
    if value < today:
        return "date_past"
    if value > today + timedelta(days=MAX_DAYS_AHEAD):
        return "date_far"
    return None


def parse_quantity(text: str) -> int | None:
    match = _NUMBER.match(text or "")
    if not match:
        return None
    value = int(match.group(1))
    return value if 1 <= value <= MAX_QUANTITY else None


def parse_temperature(text: str) -> float | None:
    match = re.search(r"-?\d+(?:[.,]\d+)?", (text or "").replace("－", "-").replace("−", "-"))
    if not match:
        return None
    value = float(match.group(0).replace(",", "."))
    return value if -40 <= value <= 60 else None


# --- drop-off slots ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    start: datetime  # UTC
    end: datetime

    @property
    def code(self) -> str:
        return self.start.strftime("%Y%m%d%H%M")


def slot_from_code(code: str) -> datetime | None:
    if not re.fullmatch(r"\d{12}", code):
        return None
    try:
        return datetime.strptime(code, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def candidate_slots(open_hours: dict[str, str], now: datetime, tz: str, *, slot_minutes: int, days: int,
                    last_day: date) -> list[Slot]:
    """Slots inside open hours from now on, for `days` local days, none after `last_day` (best-before)."""
    today = local_today(now, tz)
    step = timedelta(minutes=slot_minutes)
    slots: list[Slot] = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        if day > last_day:
            break
        span = hours_on(open_hours, day)
        if span is None:
            continue
        cursor, close = at_local(day, span[0], tz), at_local(day, span[1], tz)
        while cursor + step <= close:
            # A slot already under way is still offered while at least half of it is left.
            if cursor + step / 2 > now:
                slots.append(Slot(cursor, cursor + step))
            cursor += step
    return slots


def offerable_slots(candidates: list[Slot], *, quantity: int, capacity: int, occupied: int,
                    booked: dict[datetime, int], slot_limit: int, limit: int) -> list[Slot]:
    """Never a slot past capacity: the whole fridge (stock + pledges) and each slot's own drop-off limit."""
    if occupied + quantity > capacity:
        return []
    return [s for s in candidates if booked.get(s.start, 0) + quantity <= slot_limit][:limit]


# --- shifts ------------------------------------------------------------------------------------

def shift_occurrences(shift_times: list[str], open_hours: dict[str, str], now: datetime, tz: str,
                      days: int) -> list[tuple[datetime, datetime]]:
    """Shifts for the next `days` local days (today included) on open days, not already over."""
    today = local_today(now, tz)
    out = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        if hours_on(open_hours, day) is None:
            continue
        for span in shift_times:
            start, end = parse_span(span)
            begins, ends = at_local(day, start, tz), at_local(day, end, tz)
            if ends > now:
                out.append((begins, ends))
    return out


def temperature_ok(value: float, low: float, high: float) -> bool:
    return low <= value <= high
