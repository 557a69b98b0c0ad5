"""Pure rules of activities and enrolment (四点半课堂, 假期小课堂, 老年大学, clubs).

Audience and age fit, the enrolment window, who takes a free place, weekly recurrence,
what a staff member types as a schedule, pick-up names. No framework imports: used by
flows, the scheduler sweep, config validation and the benchmark alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SESSIONS = 120          # one activity's sessions (a school year of weekly classes fits)
MAX_SPAN_DAYS = 366         # a recurrence runs at most a year
CHILD_AGE = (1, 18)
NAME_LIMIT = 40
CLASS_LIMIT = 30
MAX_PICKUP = 5
TITLE_LIMIT = 60
PLACE_LIMIT = 80
MAX_CAPACITY = 500
MAX_FEE = 10000


class Audience(StrEnum):
    CHILDREN = "children"   # enrolled by a guardian, one child at a time, age range checked
    SENIORS = "seniors"     # 老年大学: people enrol themselves
    EVERYONE = "everyone"   # lectures, clubs: oneself or a child


class ActivityStatus(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    HELD = "held"           # the organiser finished the roll call


class EnrolmentStatus(StrEnum):
    ENROLLED = "enrolled"   # has a place
    WAITING = "waiting"     # in line, by queue time
    OFFERED = "offered"     # a freed place is kept for them until offer_expires_at
    CANCELLED = "cancelled"  # gave up (or the organiser cancelled the activity)
    DECLINED = "declined"   # said no to an offered place
    EXPIRED = "expired"     # let an offer lapse


HOLDS_PLACE = (EnrolmentStatus.ENROLLED, EnrolmentStatus.OFFERED)
ACTIVE = (EnrolmentStatus.ENROLLED, EnrolmentStatus.OFFERED, EnrolmentStatus.WAITING)
ENDED = (EnrolmentStatus.CANCELLED, EnrolmentStatus.DECLINED, EnrolmentStatus.EXPIRED)


# --- eligibility ----------------------------------------------------------------------------------

def who_key(child_id: int | None) -> str:
    """One enrolment per person per activity: yourself ("self") or one of your children ("c<id>")."""
    return "self" if child_id is None else f"c{child_id}"


def who_fits(audience: str, for_child: bool) -> str | None:
    """None when allowed; else why not: children's activities need a child, seniors' courses the person."""
    if audience == Audience.CHILDREN and not for_child:
        return "child_needed"
    if audience == Audience.SENIORS and for_child:
        return "self_only"
    return None


def age_fits(age: int | None, age_min: int | None, age_max: int | None) -> bool:
    if age is None:
        return age_min is None and age_max is None
    return (age_min is None or age >= age_min) and (age_max is None or age <= age_max)


def window_state(now: datetime, opens: datetime | None, closes: datetime | None) -> str:
    """"open", "not_yet" or "closed" (closes is exclusive)."""
    if opens is not None and now < opens:
        return "not_yet"
    if closes is not None and now >= closes:
        return "closed"
    return "open"


def place_free(holding: int, capacity: int) -> bool:
    """Is there a place for one more? `holding` counts the enrolled and those with an offer open."""
    return holding < capacity


def places_to_offer(holding: int, capacity: int, waiting: int) -> int:
    """How many of those waiting are offered a place now."""
    return max(0, min(capacity - holding, waiting))


def offer_expiry(now: datetime, hours: float, next_start: datetime | None) -> datetime:
    """An offered place is kept `hours`, but never past the start of the next session (then it is moot)."""
    limit = now + timedelta(hours=hours)
    if next_start is not None and now + timedelta(minutes=30) < next_start < limit:
        return next_start
    return limit


def reminder_due(starts_at: datetime, now: datetime, hours: float) -> bool:
    """Inside the reminder window: not yet started, at most `hours` away."""
    return starts_at - timedelta(hours=hours) <= now < starts_at


def attendance_rate(present: int, held: int) -> float:
    return 0.0 if held <= 0 else present / held


# --- sessions -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    """One session in local time."""

    day: date
    start: time
    end: time

    def utc(self, tz: str) -> tuple[datetime, datetime]:
        zone = ZoneInfo(tz)
        return (datetime.combine(self.day, self.start, zone).astimezone(ZoneInfo("UTC")),
                datetime.combine(self.day, self.end, zone).astimezone(ZoneInfo("UTC")))


def parse_span(text: str) -> tuple[time, time] | None:
    """"16:30-18:00" → (16:30, 18:00); None unless it is a valid span that ends after it starts."""
    match = re.fullmatch(r"\s*(\d{1,2})[:：](\d{2})\s*[-–~～至到]\s*(\d{1,2})[:：](\d{2})\s*", text or "")
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        return None
    start, end = time(h1, m1), time(h2, m2)
    return (start, end) if start < end else None


def weekly(days: list[int], start: time, end: time, first: date, last: date,
           skip: frozenset[date] | set[date] = frozenset()) -> list[Slot]:
    """Every chosen weekday (0 = Monday) from `first` to `last` inclusive, minus `skip` (holidays)."""
    if first > last or not days:
        return []
    out: list[Slot] = []
    day = first
    wanted = set(days)
    while day <= last and len(out) < MAX_SESSIONS:
        if day.weekday() in wanted and day not in skip:
            out.append(Slot(day, start, end))
        day += timedelta(days=1)
    return out


# What staff type as a schedule:
#   2026-12-05 14:00-16:00                    one session (several separated by ; or new lines)
#   每周三 16:30-18:00 2026-12-01~2027-01-15   weekly; 每周一三五 for several days
#   weekly mon,wed 16:30-18:00 2026-12-01..2027-01-15
_CN_DAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0, "2": 1, "3": 2,
            "4": 3, "5": 4, "6": 5, "7": 6}
_DATE = r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
_SPAN = r"(\d{1,2}[:：]\d{2}\s*[-–~～至到]\s*\d{1,2}[:：]\d{2})"
_ONE_OFF = re.compile(rf"^{_DATE}\s+{_SPAN}$")
_WEEKLY_CN = re.compile(rf"^(?:每周|每星期|周|星期)([一二三四五六日天1-7、,，]+)\s*{_SPAN}\s+{_DATE}\s*(?:~|～|至|到|-|\.\.)\s*{_DATE}$")
_WEEKLY_EN = re.compile(rf"^weekly\s+([a-z,\s]+?)\s+{_SPAN}\s+{_DATE}\s*(?:~|\.\.|to|-)\s*{_DATE}$", re.IGNORECASE)


def _date(y: str, m: str, d: str) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def parse_schedule(text: str, today: date) -> tuple[list[Slot], str | None]:
    """Sessions from what staff typed, or ([], reason): "format", "date", "span", "past", "too_many"."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    parts = [p.strip() for p in re.split(r"[;；\n]+", text) if p.strip()]
    if not parts or len(parts) > 20:
        return [], "format"
    slots: list[Slot] = []
    for part in parts:
        one = _ONE_OFF.match(part)
        cn = _WEEKLY_CN.match(part)
        en = _WEEKLY_EN.match(part)
        if one:
            day = _date(*one.groups()[:3])
            span = parse_span(one.group(4))
            if day is None:
                return [], "date"
            if span is None:
                return [], "span"
            slots.append(Slot(day, *span))
            continue
        if cn or en:
            match = cn or en
            if cn:
                days = sorted({_CN_DAYS[c] for c in match.group(1) if c in _CN_DAYS})
            else:
                names = [w.strip().lower()[:3] for w in re.split(r"[,\s]+", match.group(1)) if w.strip()]
                if any(n not in DAY_CODES for n in names):
                    return [], "format"
                days = sorted({DAY_CODES.index(n) for n in names})
            span = parse_span(match.group(2))
            first, last = _date(*match.groups()[2:5]), _date(*match.groups()[5:8])
            if first is None or last is None or first > last:
                return [], "date"
            if span is None:
                return [], "span"
            if (last - first).days > MAX_SPAN_DAYS:
                return [], "too_many"
            slots.extend(weekly(days, *span, first, last))
            continue
        return [], "format"
    if not slots:
        return [], "date"
    if len(slots) > MAX_SESSIONS:
        return [], "too_many"
    if any(s.day < today for s in slots):
        return [], "past"
    return sorted(set(slots), key=lambda s: (s.day, s.start)), None


# --- what people type ---------------------------------------------------------------------------

def parse_int(text: str | None, low: int, high: int) -> int | None:
    """"8", "８岁", "8 years" → 8 within [low, high]; else None."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    match = re.fullmatch(r"(\d{1,4})\s*(?:岁|周岁|人|个|名|位|元|块|years?|yrs?|people|yuan)?", text, re.IGNORECASE)
    if not match:
        return None
    value = int(match.group(1))
    return value if low <= value <= high else None


def parse_age_range(text: str | None) -> tuple[int, int] | None:
    """"6-12", "6到12岁" → (6, 12) within the child age bounds."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    match = re.fullmatch(r"(\d{1,2})\s*(?:-|~|至|到|–)\s*(\d{1,2})\s*(?:岁|周岁)?", text)
    if not match:
        return None
    low, high = int(match.group(1)), int(match.group(2))
    if not (CHILD_AGE[0] <= low <= high <= CHILD_AGE[1]):
        return None
    return low, high


def name_key(name: str) -> str:
    """Comparable form of a person's name: NFKC, no spaces or punctuation, case-folded."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


_MARKUP = re.compile(r"[<>{}\[\]=;$\\|`]")


def plain(text: str) -> bool:
    """Words a person would type for a name or a class: no markup or code characters."""
    return not _MARKUP.search(unicodedata.normalize("NFKC", text or ""))


def valid_name(name: str) -> bool:
    key = name_key(name)
    return 1 <= len(key) and len(name.strip()) <= NAME_LIMIT and plain(name)


def parse_names(text: str | None) -> list[str] | None:
    """Authorised pick-up people: "妈妈 王芳、爷爷 李建国" → up to MAX_PICKUP names; None if none valid."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    parts = [p.strip() for p in re.split(r"[,，、;；/\n]+", text) if p.strip()]
    if not parts or len(parts) > MAX_PICKUP or not all(valid_name(p) for p in parts):
        return None
    out: list[str] = []
    for part in parts:
        if name_key(part) not in {name_key(o) for o in out}:
            out.append(part)
    return out


def pickup_allowed(given: str, authorised: list[str]) -> bool:
    """The person collecting a child must be on the authorised list (a name, or a name with a relation)."""
    key = name_key(given)
    if not key:
        return False
    for name in authorised:
        other = name_key(name)
        if key == other or (len(key) >= 2 and (key in other or other in key)):
            return True
    return False


def keyword_hits(text: str, keywords: list[str]) -> int:
    """How many of an activity's keywords a request mentions (used to rank offers at intake)."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return sum(1 for k in keywords if k and unicodedata.normalize("NFKC", k).casefold() in folded)
