"""Requests (诉求): statuses, allowed transitions and public numbering.

Pure domain rules: no framework, no database. Every service uses these.
"""

from __future__ import annotations

import re
from enum import StrEnum


class RequestStatus(StrEnum):
    RECEIVED = "received"            # stored by the bot, waiting for intake
    NEEDS_CATEGORY = "needs_category"  # intake was unsure; the resident picks a category
    ROUTED = "routed"                # a team has it, with a due time
    IN_PROGRESS = "in_progress"      # someone on the team took it
    RESOLVED = "resolved"            # the team says it is done; follow-up pending
    CLOSED = "closed"                # finished (after follow-up, or not a request at all)
    WITHDRAWN = "withdrawn"          # the resident withdrew it


OPEN_STATUSES = frozenset(
    {RequestStatus.RECEIVED, RequestStatus.NEEDS_CATEGORY, RequestStatus.ROUTED, RequestStatus.IN_PROGRESS}
)

_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.RECEIVED: frozenset(
        {RequestStatus.NEEDS_CATEGORY, RequestStatus.ROUTED, RequestStatus.CLOSED, RequestStatus.WITHDRAWN}
    ),
    RequestStatus.NEEDS_CATEGORY: frozenset({RequestStatus.ROUTED, RequestStatus.CLOSED, RequestStatus.WITHDRAWN}),
    # → CLOSED from an open status only when merged into another request (a duplicate).
    RequestStatus.ROUTED: frozenset(
        {RequestStatus.ROUTED, RequestStatus.IN_PROGRESS, RequestStatus.RESOLVED, RequestStatus.WITHDRAWN,
         RequestStatus.CLOSED}
    ),
    RequestStatus.IN_PROGRESS: frozenset(
        {RequestStatus.ROUTED, RequestStatus.RESOLVED, RequestStatus.WITHDRAWN, RequestStatus.CLOSED}
    ),
    RequestStatus.RESOLVED: frozenset({RequestStatus.CLOSED, RequestStatus.IN_PROGRESS}),
    RequestStatus.CLOSED: frozenset(),
    RequestStatus.WITHDRAWN: frozenset(),
}


class TransitionError(ValueError):
    """A status change the request lifecycle does not allow."""


def can_transition(current: str, target: str) -> bool:
    return RequestStatus(target) in _TRANSITIONS[RequestStatus(current)]


def allowed_sources(target: str) -> frozenset[RequestStatus]:
    """Statuses from which `target` may be reached (used in conditional UPDATEs)."""
    goal = RequestStatus(target)
    return frozenset(status for status, targets in _TRANSITIONS.items() if goal in targets)


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise TransitionError(f"request cannot go from {current} to {target}")


_NUMBER = re.compile(r"^([A-Z]{2,8})-(\d{4})-(\d{5,})$")


def format_number(community_code: str, year: int, sequence: int) -> str:
    """`ZJY-2026-00042`: community prefix, year, sequence within that community and year."""
    if sequence < 1:
        raise ValueError("sequence starts at 1")
    return f"{community_code.upper()}-{year:04d}-{sequence:05d}"


def parse_number(text: str) -> tuple[str, int, int] | None:
    """Inverse of `format_number`, tolerant of case and spaces; None if it is not a number."""
    match = _NUMBER.match(text.strip().upper())
    if not match:
        return None
    return match.group(1).lower(), int(match.group(2)), int(match.group(3))
