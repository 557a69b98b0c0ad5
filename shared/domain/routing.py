"""Where a classified request goes: team, due time, redirect. Pure rules over the config."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config import CommunitiesConfig

# Urgent requests are due within this many hours whatever the category's SLA.
URGENT_SLA_HOURS = 1.0


@dataclass(frozen=True)
class RoutingDecision:
    label: str
    team: str | None
    due_at: datetime | None
    redirect: str | None        # "fridge" | "books" | "volunteer" | "menu" | None
    volunteer_task: bool

    @property
    def opens_request(self) -> bool:
        return self.redirect is None


def decide_route(
    config: CommunitiesConfig, community_code: str, label: str, *, urgent: bool, now: datetime
) -> RoutingDecision:
    route = config.route(community_code, label)
    if urgent and route.team is None:
        # An urgent message never ends in a menu or a programme flow: the grid/safety team takes it.
        route = config.route(community_code, "safety")
    due_at = None
    if route.team is not None and route.sla_hours is not None:
        hours = min(route.sla_hours, URGENT_SLA_HOURS) if urgent else route.sla_hours
        due_at = now + timedelta(hours=hours)
    return RoutingDecision(
        label=label, team=route.team, due_at=due_at, redirect=route.redirect, volunteer_task=route.volunteer_task
    )
