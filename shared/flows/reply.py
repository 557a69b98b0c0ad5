"""What a flow says: text plus rows of options, each option an action string."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Button:
    text: str
    action: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    # Replace the message whose button was pressed (toggles in a form) instead of sending a new one.
    replace: bool = False

    def options_json(self) -> list[list[dict[str, str]]]:
        """The form stored in the outbox and read back by the delivery worker."""
        return [[{"text": b.text, "action": b.action} for b in row] for row in self.buttons]

    @classmethod
    def from_stored(cls, text: str, options: list[list[dict[str, Any]]] | None) -> "Reply":
        rows = tuple(tuple(Button(str(b["text"]), str(b["action"])) for b in row) for row in (options or []))
        return cls(text=text, buttons=rows)


def rows(*buttons: Button, per_row: int = 2) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))
