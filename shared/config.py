"""`config/communities.yaml`: communities, teams, routing and programmes.

Loaded and validated once at start-up. A bad file raises `ConfigError` naming
the line and the field, because the operator edits it by hand.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from datetime import date
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.activity_config import ActivityConfig, ActivityDefaults, check_activities
from shared.taxonomy import LABELS

Localized = dict[Literal["zh", "en"], str]
_HOURS = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")


def _check_shifts(spans: list[str], shape: str) -> list[str]:
    """Shift spans `HH:MM-HH:MM`, each starting before it ends."""
    for span in spans:
        if not _HOURS.match(span) or span.split("-")[0] >= span.split("-")[1]:
            raise ValueError(f"{shape} (start before end), got {span!r}")
    return spans


class ConfigError(ValueError):
    """The YAML file is wrong; the message names file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Strict):
    team: str | None = None
    sla_hours: float | None = Field(default=None, gt=0)
    volunteer_task: bool = False
    task_skill: str | None = None  # the skill a volunteer task from this label needs
    redirect: Literal["fridge", "books", "volunteer", "menu"] | None = None

    @model_validator(mode="after")
    def _team_or_redirect(self) -> "Route":
        if (self.team is None) == (self.redirect is None):
            raise ValueError("give either team (with sla_hours) or redirect")
        if self.team is not None and self.sla_hours is None:
            raise ValueError("a team route needs sla_hours")
        return self


class Programme(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    code: str
    kind: str
    name: Localized


class Fridge(_Strict):
    code: str
    name: Localized
    place: Localized
    open_hours: dict[str, str]
    capacity_items: int = Field(gt=0)
    quiet_hours: str | None = None
    rules: Localized
    # Check/clean/restock shifts planned a week ahead as fridge_duty volunteer tasks (local times).
    shifts: list[str] = Field(default_factory=lambda: ["08:00-08:30", "20:00-20:30"])
    # Drop-off slots offered to donors, and how many items one slot may bring in.
    slot_minutes: int = Field(default=60, ge=15, le=240)
    slot_items: int = Field(default=20, gt=0)
    # At most this many items per person per day taken through the bot; None = no limit.
    fair_share: int | None = Field(default=None, gt=0)
    # Safe temperature range (°C); a reading outside it warns staff.
    temperature_min: float = 0.0
    temperature_max: float = 8.0
    # New-food alerts wait this long to collect a batch; the daily summary goes out at this local time.
    alert_batch_minutes: int = Field(default=15, ge=0)
    summary_at: str = "21:30"

    @field_validator("open_hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        from shared.domain.fridge import valid_day_spec

        for days, hours in value.items():
            if not _HOURS.match(hours):
                raise ValueError(f"open hours for {days!r} must look like 07:00-21:00, got {hours!r}")
            if not valid_day_spec(days):
                raise ValueError(f"open hours: {days!r} must name days like mon-sun, tue-sat or mon,wed")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None and not _HOURS.match(value):
            raise ValueError(f"quiet hours must look like 22:00-07:00, got {value!r}")
        return value

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, value: list[str]) -> list[str]:
        return _check_shifts(value, "a shift must look like 08:00-08:30")

    @field_validator("summary_at")
    @classmethod
    def _summary_at(cls, value: str) -> str:
        if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
            raise ValueError(f"summary_at must look like 21:30, got {value!r}")
        return value

    @model_validator(mode="after")
    def _ranges(self) -> "Fridge":
        if self.temperature_min >= self.temperature_max:
            raise ValueError("temperature_min must be below temperature_max")
        return self


class BookHouse(_Strict):
    code: str
    name: Localized
    place: Localized
    open_hours: dict[str, str]
    hold_days: int = Field(default=3, gt=0)
    swap_day: Localized | None = None
    # 以书换绿 swap days (ISO dates) with their hours; the scheduler announces them.
    swap_days: list[date] = Field(default_factory=list)
    swap_hours: str = "09:00-12:00"
    # No balance may go below this (giving a book earns 1, taking one costs 1, seedlings cost points).
    # Never below 0: points are earned before they are spent, nobody runs into debt.
    points_floor: int = Field(default=0, ge=0)
    # Volunteer shifts on open days (local times, within the open hours), planned a week ahead as
    # book_duty tasks; empty: one shift spanning each open day's hours. Swap days get a shift of their own.
    shifts: list[str] = Field(default_factory=list)
    # 以书换绿: at most this many seedlings per person per swap day (one exchange each day).
    seedling_limit: int = Field(default=3, ge=1, le=20)
    # The monthly summary of the past month goes to the staff group from this local time on the 1st.
    summary_at: str = "09:00"

    @field_validator("open_hours")
    @classmethod
    def _open_hours(cls, value: dict[str, str]) -> dict[str, str]:
        from shared.domain.fridge import valid_day_spec

        for days, hours in value.items():
            if not _HOURS.match(hours) or not valid_day_spec(days):
                raise ValueError(f"book house open hours must look like tue-sat: 09:00-17:00, got {days!r}: {hours!r}")
        return value

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, value: list[str]) -> list[str]:
        return _check_shifts(value, "a book-house shift must look like 09:00-13:00")

    @field_validator("swap_hours")
    @classmethod
    def _swap_hours(cls, value: str) -> str:
        if not _HOURS.match(value):
            raise ValueError(f"swap_hours must look like 09:00-12:00, got {value!r}")
        return value

    @field_validator("summary_at")
    @classmethod
    def _summary_at(cls, value: str) -> str:
        if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
            raise ValueError(f"summary_at must look like 09:00, got {value!r}")
        return value


class Community(_Strict):
    code: str = Field(pattern=r"^[a-z]{2,8}$")
    name: Localized
    brand: Localized
    staff_chat_id: int | None = None
    volunteer_chat_id: int | None = None
    # Matrix rooms playing the staff and volunteer groups (docs/matrix.md), e.g. "!abc:example.org".
    matrix_staff_room: str | None = Field(default=None, pattern=r"^!.+:.+$")
    matrix_volunteer_room: str | None = Field(default=None, pattern=r"^!.+:.+$")
    teams: dict[str, Localized] = Field(default_factory=dict)
    routing: dict[str, Route] = Field(default_factory=dict)
    compounds: list[str] = Field(default_factory=list)
    programmes: list[Programme] = Field(default_factory=list)
    fridges: list[Fridge] = Field(default_factory=list)
    book_house: BookHouse | None = None
    activities: list[ActivityConfig] = Field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.code.upper()


class Skill(_Strict):
    code: str = Field(pattern=r"^[a-z_]{1,24}$")
    name: Localized


class ReferralBody(_Strict):
    code: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    name: Localized
    deadline_days: float = Field(default=5, gt=0)


class Deliberation(_Strict):
    """Deliberation (议事四步法) settings shared by every community."""

    # A topic with this many supporters is flagged to the community's staff group.
    support_threshold: int = Field(default=5, gt=0)
    # The quorum (votes cast) offered first when staff open a vote.
    default_quorum: int = Field(default=5, gt=0)
    # Supporters are reminded of a meeting (议事会) this many hours before it.
    meeting_reminder_hours: float = Field(default=24, gt=0)


class Defaults(_Strict):
    timezone: str = "Asia/Shanghai"
    # A request past its due time: reminder at once, escalation to the staff group after this grace.
    sla_escalate_after_hours: float = Field(default=4, gt=0)
    # Follow-up (回访): a reminder after this many days without an answer, then closed as unrated.
    followup_remind_after_days: float = Field(default=3, gt=0)
    followup_close_after_days: float = Field(default=3, gt=0)
    # What volunteers can offer; tasks need one of these.
    volunteer_skills: list[Skill] = Field(default_factory=list)
    # Tasks: remind the claimer this long before the window; re-offer an untaken task this long before.
    task_reminder_hours: float = Field(default=2, gt=0)
    task_reoffer_hours: float = Field(default=3, gt=0)
    # Bodies outside the community that staff refer requests to; chased past their deadline.
    referral_bodies: list[ReferralBody] = Field(default_factory=list)
    # An open request of the same community and category this similar (0..1) is offered as a duplicate.
    duplicate_similarity: float = Field(default=0.4, gt=0, le=1)
    deliberation: Deliberation = Field(default_factory=Deliberation)
    activities: ActivityDefaults = Field(default_factory=ActivityDefaults)
    emergency_numbers: dict[str, str]
    routing: dict[str, Route]
    teams: dict[str, Localized]

    @field_validator("routing")
    @classmethod
    def _every_label(cls, value: dict[str, Route]) -> dict[str, Route]:
        missing = [label for label in LABELS if label not in value]
        if missing:
            raise ValueError(f"routing must cover every label; missing: {', '.join(missing)}")
        return value


class CommunitiesConfig(_Strict):
    defaults: Defaults
    communities: list[Community]

    @model_validator(mode="after")
    def _consistent(self) -> "CommunitiesConfig":
        codes = [c.code for c in self.communities]
        if len(codes) != len(set(codes)):
            raise ValueError("community codes must be unique")
        for community in self.communities:
            for label, route in community.routing.items():
                if label not in LABELS:
                    raise ValueError(f"{community.code}: routing names unknown label {label!r}")
            for route in [*self.defaults.routing.values(), *community.routing.values()]:
                if route.team and route.team not in self.defaults.teams and route.team not in community.teams:
                    raise ValueError(f"{community.code}: routing names unknown team {route.team!r}")
        check_activities(self.communities)
        fridge_codes = [f.code for c in self.communities for f in c.fridges]
        if len(fridge_codes) != len(set(fridge_codes)):
            raise ValueError("fridge codes must be unique across communities")
        for code in fridge_codes:
            if not re.fullmatch(r"[A-Za-z0-9_\-]{1,24}", code):
                raise ValueError(f"fridge code {code!r} may use only letters, digits, - and _ (at most 24)")
        for label, route in self.defaults.routing.items():
            if label not in LABELS:
                raise ValueError(f"routing names unknown label {label!r}")
            skills = {s.code for s in self.defaults.volunteer_skills}
            if route.task_skill and route.task_skill not in skills:
                raise ValueError(f"routing of {label!r} names unknown skill {route.task_skill!r}")
        return self

    def community(self, code: str) -> Community:
        for community in self.communities:
            if community.code == code:
                return community
        raise KeyError(code)

    def fridge(self, code: str) -> tuple[Community, Fridge] | None:
        for community in self.communities:
            for fridge in community.fridges:
                if fridge.code == code:
                    return community, fridge
        return None

    def has_community(self, code: str) -> bool:
        return any(c.code == code for c in self.communities)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.communities]

    def route(self, community_code: str, label: str) -> Route:
        community = self.community(community_code)
        return community.routing.get(label) or self.defaults.routing[label]

    def skill(self, code: str) -> Skill | None:
        return next((s for s in self.defaults.volunteer_skills if s.code == code), None)

    def referral_body(self, code: str) -> ReferralBody | None:
        return next((b for b in self.defaults.referral_bodies if b.code == code), None)

    def team_name(self, community_code: str, team: str, locale: str) -> str:
        names = self.community(community_code).teams.get(team) or self.defaults.teams[team]
        return names.get(locale) or names["zh"]


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == key), None)
            if match is None:
                key_node = next((k for k, _ in node.value), None)
                return key_node.start_mark.line + 1 if key_node is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_communities(text: str, source: str = "communities.yaml") -> CommunitiesConfig:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "unknown line"
        raise ConfigError(f"{source}: {where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: line 1: the file must be a mapping with 'defaults' and 'communities'")
    try:
        return CommunitiesConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
            field = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{source}: line {_line_of(root, loc)}: {field}: {error['msg']}")
        raise ConfigError("\n".join(problems)) from None


def load_communities(path: Path) -> CommunitiesConfig:
    return parse_communities(Path(path).read_text(encoding="utf-8"), source=str(path))


@lru_cache(maxsize=4)
def cached_communities(path: str) -> CommunitiesConfig:
    return load_communities(Path(path))
