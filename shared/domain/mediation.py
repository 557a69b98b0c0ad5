"""Mediation cases (毛大姐调解室): statuses, levels, parties, sessions and agreements. Pure rules.

A `mediation` request becomes a case handled at one level of a community's ladder
(building informant → compound → residents' committee). The lead mediator escalates a
level with a reason; an agreement accepted by every party is followed up some weeks later,
and "it does not hold" reopens the case at the same level.

No framework imports: used by flows, the scheduler sweep and the tests alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any


class CaseStatus(StrEnum):
    OPEN = "open"            # being mediated at its current level (parties invited, sessions held)
    PROPOSED = "proposed"    # an agreement is written down; waiting for every party to accept it
    AGREED = "agreed"        # every party accepted; the follow-up comes after some weeks
    FOLLOWUP = "followup"    # the parties were asked whether the agreement holds
    RESOLVED = "resolved"    # the agreement held at follow-up (or nobody answered: not counted as held)
    REFERRED = "referred"    # no agreement: referred to legal aid
    CLOSED = "closed"        # no agreement: closed by the lead


class PartyStatus(StrEnum):
    INVITED = "invited"      # name only; waiting for the person's consent
    CONSENTED = "consented"  # agreed in the bot to take part
    RECORDED = "recorded"    # no chat account: the mediator records them (consent given in person)
    DECLINED = "declined"    # said no: nothing more is stored about them


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    CANCELLED = "cancelled"


class AgreementStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"    # every party accepted
    DECLINED = "declined"    # a party declined it; the case is open again


class StageOutcome(StrEnum):
    """How one stint of a case at one level ended (the per-level statistics come from these)."""

    ESCALATED = "escalated"
    AGREED = "agreed"
    REFERRED = "referred"
    CLOSED = "closed"


LEVELS = ("building_informant", "compound", "residents_committee")
FINAL = frozenset({CaseStatus.RESOLVED, CaseStatus.REFERRED, CaseStatus.CLOSED})
ACTIVE = frozenset({CaseStatus.OPEN, CaseStatus.PROPOSED, CaseStatus.AGREED, CaseStatus.FOLLOWUP})
TAKING_PART = frozenset({PartyStatus.CONSENTED, PartyStatus.RECORDED})

_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    # OPEN → OPEN is an escalation to the next level.
    CaseStatus.OPEN: frozenset({CaseStatus.OPEN, CaseStatus.PROPOSED, CaseStatus.REFERRED, CaseStatus.CLOSED}),
    # A party declines the agreement (or the lead withdraws it): back to mediation.
    CaseStatus.PROPOSED: frozenset({CaseStatus.AGREED, CaseStatus.OPEN}),
    CaseStatus.AGREED: frozenset({CaseStatus.FOLLOWUP}),
    # "It does not hold" reopens the case at the same level.
    CaseStatus.FOLLOWUP: frozenset({CaseStatus.RESOLVED, CaseStatus.OPEN}),
    CaseStatus.RESOLVED: frozenset(),
    CaseStatus.REFERRED: frozenset(),
    CaseStatus.CLOSED: frozenset(),
}

NAME_LIMIT = 40
PLACE_LIMIT = 100
NOTE_LIMIT = 2000
AGREEMENT_LIMIT = 2000
REASON_LIMIT = 300
INVITE_DAYS = 7
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I/L: read out over the phone
CODE_LENGTH = 8


class TransitionError(ValueError):
    """A change the case lifecycle does not allow."""


def can_transition(current: str, target: str) -> bool:
    return CaseStatus(target) in _TRANSITIONS[CaseStatus(current)]


def sources_of(target: str) -> frozenset[CaseStatus]:
    """Statuses from which `target` may be reached (used in conditional UPDATEs)."""
    goal = CaseStatus(target)
    return frozenset(s for s, targets in _TRANSITIONS.items() if goal in targets)


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise TransitionError(f"a case cannot go from {current} to {target}")


# --- levels -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ladder:
    """A community's mediation set-up (from its `kind: mediation` programme, else the defaults)."""

    levels: tuple[str, ...] = LEVELS
    followup_days: int = 28          # ask whether the agreement holds this long after it was accepted
    reminder_hours: int = 24         # remind parties and mediators this long before a session
    followup_remind_days: int = 7    # remind unanswered parties once
    followup_close_days: int = 14    # then close the case without counting it as holding

    def name_of(self, index: int) -> str:
        return self.levels[index]

    def can_escalate(self, index: int) -> bool:
        return 0 <= index < len(self.levels) - 1

    def escalate(self, index: int) -> int:
        if not self.can_escalate(index):
            raise TransitionError("already at the highest level")
        return index + 1


def ladder_from(programme_extra: dict[str, Any] | None) -> Ladder:
    """Read a programme's extra fields; unknown levels or bad numbers raise ValueError (a config mistake)."""
    extra = programme_extra or {}
    levels = tuple(extra.get("levels") or LEVELS)
    unknown = [level for level in levels if level not in LEVELS]
    if unknown or len(set(levels)) != len(levels):
        raise ValueError(f"mediation levels must be distinct, from {', '.join(LEVELS)}; got {list(levels)}")
    values = {}
    for key, low, high in (("followup_days", 1, 365), ("reminder_hours", 1, 168),
                           ("followup_remind_days", 1, 60), ("followup_close_days", 1, 120)):
        if key in extra:
            value = extra[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"mediation {key} must be a whole number from {low} to {high}; got {value!r}")
            values[key] = value
    if "followup_weeks" in extra and "followup_days" not in values:
        weeks = extra["followup_weeks"]
        if not isinstance(weeks, int) or isinstance(weeks, bool) or not 1 <= weeks <= 52:
            raise ValueError(f"mediation followup_weeks must be a whole number from 1 to 52; got {weeks!r}")
        values["followup_days"] = 7 * weeks
    return Ladder(levels=levels, **values)


# --- parties ------------------------------------------------------------------------------------

def side_label_index(existing_sides: Iterable[int]) -> int:
    """The next free side number (1 = 甲方, 2 = 乙方, …)."""
    taken = set(existing_sides)
    side = 1
    while side in taken:
        side += 1
    return side


def normalize_code(text: str | None) -> str | None:
    """What someone typed as an invitation code → the canonical code, or None when it cannot be one."""
    value = unicodedata.normalize("NFKC", text or "").strip().upper()
    value = re.sub(r"[\s\-]", "", value)
    if value.startswith("MD"):
        value = value[2:]
    if len(value) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in value):
        return None
    return value


def all_answered_yes(parties: Sequence[int], answers: dict[int, bool]) -> bool:
    return bool(parties) and all(answers.get(p) is True for p in parties)


def any_answered_no(answers: dict[int, bool]) -> bool:
    return any(value is False for value in answers.values())


# --- sessions --------------------------------------------------------------------------------------

_WHEN = re.compile(r"^\s*(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?\s*(\d{1,2})[:：点](\d{2})?分?\s*(.*)$", re.S)


@dataclass(frozen=True)
class SessionInput:
    """A session the lead typed: local date and time, and the place."""

    when: datetime | None       # naive local time
    place: str
    error: str | None = None    # "format" | "date" | "past" | "far" | "place"


def parse_session(text: str, today: date, now_local: datetime, *, horizon_days: int = 90) -> SessionInput:
    """`12-05 19:30 社区调解室` or `2026-12-05 19:30 …` → when and where (local time)."""
    match = _WHEN.match(unicodedata.normalize("NFKC", text or ""))
    if not match:
        return SessionInput(None, "", "format")
    year_s, month_s, day_s, hour_s, minute_s, place = match.groups()
    place = place.strip()
    try:
        year = int(year_s) if year_s else today.year
        day = date(year, int(month_s), int(day_s))
        if not year_s and day < today:
            day = date(year + 1, day.month, day.day)  # "01-05" typed in December means next year
        at = datetime.combine(day, time(int(hour_s), int(minute_s or 0)))
    except ValueError:
        return SessionInput(None, place, "date")
    if at <= now_local:
        return SessionInput(None, place, "past")
    if at > now_local + timedelta(days=horizon_days):
        return SessionInput(None, place, "far")
    if not place or len(place) > PLACE_LIMIT or not any(unicodedata.category(c)[0] in "LN" for c in place):
        return SessionInput(None, place, "place")
    return SessionInput(at, place)


def reminder_due(starts_at: datetime, now: datetime, reminder_hours: int) -> bool:
    """The day-before reminder: inside the window before the session, never after it started."""
    return starts_at - timedelta(hours=reminder_hours) <= now < starts_at


# --- statistics -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LevelStats:
    handled: int       # cases handled at this level (opened there or escalated into it)
    agreed: int        # agreements accepted at this level
    escalated: int     # passed on to the next level
    followed_up: int   # agreements whose follow-up was answered
    holding: int       # … of which every party said it holds

    @property
    def success_pct(self) -> int | None:
        """The share of followed-up agreements that hold: the room's "success rate", measured."""
        return round(100 * self.holding / self.followed_up) if self.followed_up else None


def level_stats(stages: Iterable[tuple[int, int, str | None]], agreements: Iterable[tuple[int, int, bool | None]],
                level: int) -> LevelStats:
    """`stages`: (case id, level, outcome); `agreements`: (case id, level, held) of accepted agreements."""
    stages = list(stages)
    handled = {case for case, lvl, _ in stages if lvl == level}
    agreed = [case for case, lvl, outcome in stages if lvl == level and outcome == StageOutcome.AGREED]
    escalated = {case for case, lvl, outcome in stages if lvl == level and outcome == StageOutcome.ESCALATED}
    answered = [held for _, lvl, held in agreements if lvl == level and held is not None]
    return LevelStats(len(handled), len(agreed), len(escalated), len(answered), sum(1 for held in answered if held))
