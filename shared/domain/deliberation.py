"""Pure rules of deliberation (议事四步法, 畅谈客厅): stages, eligibility, vote counting, quorum, parsing.

Four steps: propose (提议) → discuss (商议) → decide (决议) → carry out and report (执行与监督).
No framework imports: used by the service, the flows, the sweeps and the tests alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

TITLE_LIMIT = 60
DESCRIPTION_LIMIT = 2000
COMMENT_LIMIT = 500
OPTION_LIMIT = 40
MIN_OPTIONS, MAX_OPTIONS = 2, 6
PLACE_LIMIT = 100
REPORT_LIMIT = 2000
ACTION_TITLE_LIMIT = 100
OWNER_LIMIT = 40
MAX_QUORUM = 10000
VOTE_HOURS = (24, 48, 72, 168)
QUORUM_CHOICES = (3, 5, 10, 20, 50)
HIDE_REASONS = ("offtopic", "abusive", "private")
MEETING_HORIZON = timedelta(days=180)
ACTION_HORIZON = timedelta(days=730)


class Stage(StrEnum):
    PROPOSED = "proposed"          # step 1: waiting for staff to accept it as a topic
    DISCUSSING = "discussing"      # step 2: support, comments, meetings
    VOTING = "voting"              # step 3: a vote is open
    DECIDED = "decided"            # step 3 done: the vote decided; actions not yet planned
    CARRYING_OUT = "carrying_out"  # step 4: actions with owners and dates
    CLOSED = "closed"              # step 4 done: closing report published, residents rate it
    ANSWERED = "answered"          # step 1 ended otherwise: staff handle it as a normal request


class IllegalTransition(ValueError):
    """A stage change the four-step method does not allow."""


# operation → (stages it may start from, stage it leads to)
TRANSITIONS: dict[str, tuple[frozenset[Stage], Stage]] = {
    "accept": (frozenset({Stage.PROPOSED}), Stage.DISCUSSING),
    "answer": (frozenset({Stage.PROPOSED}), Stage.ANSWERED),
    "open_vote": (frozenset({Stage.DISCUSSING}), Stage.VOTING),
    "vote_decided": (frozenset({Stage.VOTING}), Stage.DECIDED),
    "vote_failed": (frozenset({Stage.VOTING}), Stage.DISCUSSING),   # no quorum or a tie: discuss again
    "plan_action": (frozenset({Stage.DECIDED, Stage.CARRYING_OUT}), Stage.CARRYING_OUT),
    "close": (frozenset({Stage.DISCUSSING, Stage.DECIDED, Stage.CARRYING_OUT}), Stage.CLOSED),
}

# Residents may support and comment while the topic is alive after acceptance.
OPEN_STAGES = frozenset({Stage.DISCUSSING, Stage.VOTING, Stage.DECIDED, Stage.CARRYING_OUT})
# Staff may schedule a meeting (议事会) in these stages (the 井儿街 case needed four).
MEETING_STAGES = frozenset({Stage.DISCUSSING, Stage.VOTING, Stage.DECIDED, Stage.CARRYING_OUT})
FINAL_STAGES = frozenset({Stage.CLOSED, Stage.ANSWERED})

# Which of the four steps a stage belongs to (the board lists topics by step).
STEP_OF: dict[Stage, int] = {
    Stage.PROPOSED: 1, Stage.ANSWERED: 1, Stage.DISCUSSING: 2, Stage.VOTING: 3, Stage.DECIDED: 3,
    Stage.CARRYING_OUT: 4, Stage.CLOSED: 4,
}


def sources(operation: str) -> frozenset[Stage]:
    """Stages from which `operation` may start (used in conditional UPDATEs)."""
    return TRANSITIONS[operation][0]


def next_stage(current: str, operation: str) -> Stage:
    """The stage after `operation`; raises IllegalTransition when the method does not allow it."""
    if operation not in TRANSITIONS:
        raise IllegalTransition(f"unknown operation {operation!r}")
    allowed, target = TRANSITIONS[operation]
    if Stage(current) not in allowed:
        raise IllegalTransition(f"a topic cannot {operation} while {current}")
    return target


def can(current: str, operation: str) -> bool:
    try:
        next_stage(current, operation)
    except (IllegalTransition, ValueError):
        return False
    return True


# --- who may take part -------------------------------------------------------------------------

def eligible(user_community: str | None, user_compound: str | None, topic_community: str,
             topic_compound: str | None) -> bool:
    """Residents of the topic's community; for a compound topic, only residents of that compound."""
    if not user_community or user_community != topic_community:
        return False
    return topic_compound is None or user_compound == topic_compound


# --- the vote -----------------------------------------------------------------------------------

class Result(StrEnum):
    DECIDED = "decided"      # one option has the most votes and the quorum is met
    TIE = "tie"              # two or more options share the most votes
    NO_QUORUM = "no_quorum"  # fewer votes than the quorum (or none at all)


@dataclass(frozen=True)
class Outcome:
    result: Result
    counts: tuple[int, ...]
    turnout: int
    quorum: int
    winner: int | None = None   # option index when decided


def tally(choices: Iterable[int], options: int) -> tuple[int, ...]:
    """Votes per option. A choice outside the options is a bug upstream, not a vote to drop silently."""
    counts = [0] * options
    for choice in choices:
        if not 0 <= choice < options:
            raise ValueError(f"choice {choice} outside {options} options")
        counts[choice] += 1
    return tuple(counts)


def decide(counts: Sequence[int], quorum: int) -> Outcome:
    """Plurality with a quorum of votes cast: turnout below the quorum decides nothing; a tie decides nothing."""
    if quorum < 1:
        raise ValueError("the quorum is at least one vote")
    counts = tuple(counts)
    turnout = sum(counts)
    if turnout < quorum:
        return Outcome(Result.NO_QUORUM, counts, turnout, quorum)
    top = max(counts)
    leaders = [i for i, c in enumerate(counts) if c == top]
    if len(leaders) > 1:
        return Outcome(Result.TIE, counts, turnout, quorum)
    return Outcome(Result.DECIDED, counts, turnout, quorum, leaders[0])


def can_cast(closes_at: datetime, closed: bool, now: datetime) -> bool:
    """A vote takes ballots (and changed ballots) until it is closed or its time has come."""
    return not closed and now < closes_at


def parse_options(text: str) -> list[str] | None:
    """Vote options, one per line (or separated by ／ / ；): 2–6 distinct, each at most 40 characters."""
    parts = [p.strip(" \t-•·.、") for p in re.split(r"[\n/／;；|]", text or "")]
    options = [p for p in parts if p]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        return None
    if any(len(o) > OPTION_LIMIT for o in options) or len({o.casefold() for o in options}) != len(options):
        return None
    return options


def parse_quorum(value: str) -> int | None:
    if not value.isdigit() or len(value) > 5:
        return None
    n = int(value)
    return n if 1 <= n <= MAX_QUORUM else None


def parse_hours(value: str) -> int | None:
    return int(value) if value.isdigit() and int(value) in VOTE_HOURS else None


# --- meetings and actions ------------------------------------------------------------------------

_WHEN = re.compile(r"^\s*(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?\s+(\d{1,2})[:：点](\d{2})?分?\s*(.*)$", re.S)


def parse_meeting(text: str, timezone: str, now: datetime) -> tuple[datetime, str] | str:
    """`2026-12-05 19:00 社区议事厅` (the year may be left out) → (UTC start, place), or an error code.

    Error codes: `format`, `past`, `far`, `place`.
    """
    match = _WHEN.match(text or "")
    if not match:
        return "format"
    year_s, month_s, day_s, hour_s, minute_s, place = match.groups()
    tz = ZoneInfo(timezone)
    local_now = now.astimezone(tz)
    year = int(year_s) if year_s else local_now.year
    try:
        local = datetime(year, int(month_s), int(day_s), int(hour_s), int(minute_s or 0), tzinfo=tz)
    except ValueError:
        return "format"
    if not year_s and local < local_now:
        try:
            local = local.replace(year=year + 1)
        except ValueError:
            return "format"
    place = " ".join(place.split())
    if local <= local_now:
        return "past"
    if local - local_now > MEETING_HORIZON:
        return "far"
    if not place or len(place) > PLACE_LIMIT:
        return "place"
    return local.astimezone(ZoneInfo("UTC")), place


def parse_action(text: str, today: date) -> tuple[str, str, date] | str:
    """`修缮下水管 / 物管办 / 2026-12-20` → (title, owner, due date), or an error code.

    Error codes: `format`, `date`, `past`, `far`, `long`.
    """
    parts = [p.strip() for p in re.split(r"[\n/／|]", text or "") if p.strip()]
    if len(parts) != 3:
        return "format"
    title, owner, when = parts
    match = re.fullmatch(r"(\d{4})[-.年](\d{1,2})[-.月](\d{1,2})日?", when)
    if not match:
        return "date"
    try:
        due = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return "date"
    if due < today:
        return "past"
    if due - today > ACTION_HORIZON:
        return "far"
    if len(title) > ACTION_TITLE_LIMIT or len(owner) > OWNER_LIMIT:
        return "long"
    return title, owner, due


def reminder_due(starts_at: datetime, now: datetime, lead: timedelta = timedelta(hours=24)) -> bool:
    """A meeting reminder goes out from `lead` before the start until the start (the day before)."""
    return starts_at - lead <= now < starts_at


def reaches_threshold(supporters: int, threshold: int) -> bool:
    return threshold > 0 and supporters >= threshold


def valid_rating(value: str) -> int | None:
    return int(value) if value in {"1", "2", "3", "4", "5"} else None
