"""The intake taxonomy of SPEC §3.1. The labels are part of the contract."""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "mediation",
    "repair",
    "sanitation",
    "safety",
    "home_service",
    "errand",
    "legal_aid",
    "youth",
    "culture",
    "fridge",
    "books",
    "deliberation",
    "volunteer",
    "other",
)

# Labels that send the person into a flow instead of opening a request.
FLOW_LABELS: frozenset[str] = frozenset({"fridge", "books", "volunteer"})
# The label that gets a friendly menu, not a request.
MENU_LABEL = "other"


def is_label(value: str) -> bool:
    return value in LABELS
