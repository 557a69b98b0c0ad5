"""Volunteer tasks: statuses and allowed transitions. Pure rules, no framework."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    OPEN = "open"            # offered, nobody has it
    CLAIMED = "claimed"      # one volunteer has it
    STARTED = "started"      # the volunteer is on it
    DONE = "done"            # the volunteer says it is done, with hours
    CONFIRMED = "confirmed"  # staff confirmed the hours
    CANCELLED = "cancelled"  # staff withdrew it
    EXPIRED = "expired"      # nobody took it before its window ended


_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.CLAIMED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}),
    # "released" is the move back to OPEN.
    TaskStatus.CLAIMED: frozenset({TaskStatus.OPEN, TaskStatus.STARTED, TaskStatus.DONE, TaskStatus.CANCELLED}),
    TaskStatus.STARTED: frozenset({TaskStatus.OPEN, TaskStatus.DONE, TaskStatus.CANCELLED}),
    TaskStatus.DONE: frozenset({TaskStatus.CONFIRMED}),
    TaskStatus.CONFIRMED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
    TaskStatus.EXPIRED: frozenset(),
}

ACTIVE = frozenset({TaskStatus.OPEN, TaskStatus.CLAIMED, TaskStatus.STARTED})
MAX_HOURS = 24.0


def can_transition(current: str, target: str) -> bool:
    return TaskStatus(target) in _TRANSITIONS[TaskStatus(current)]


def sources_of(target: str) -> frozenset[TaskStatus]:
    goal = TaskStatus(target)
    return frozenset(s for s, targets in _TRANSITIONS.items() if goal in targets)


def valid_hours(value: float) -> bool:
    return 0 < value <= MAX_HOURS


# Weekly availability: a volunteer picks days and parts of the day.
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PARTS = ("am", "pm", "eve")


def part_of_day(hour: int) -> str:
    return "am" if hour < 12 else "pm" if hour < 18 else "eve"


def available(days: list[str], parts: list[str], weekday: int, hour: int) -> bool:
    """Does a weekly availability (days × parts) cover this local weekday (0=Mon) and hour?"""
    return DAYS[weekday] in days and part_of_day(hour) in parts
