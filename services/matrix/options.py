"""Options without buttons: a numbered list under the text, answered by number or by the option's words."""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass

from shared.flows.reply import Reply

# Longer than any option list a flow offers; a bigger number is no answer, not a lookup.
MAX_OPTIONS = 40


def flat(reply: Reply) -> list[dict[str, str]]:
    """The options of a reply in reading order, as stored: [{"text", "action"}]."""
    return [{"text": b.text, "action": b.action} for row in reply.buttons for b in row][:MAX_OPTIONS]


def content(reply: Reply) -> dict[str, object]:
    """An `m.room.message` content: plain body with "1. …" lines, and the same as an HTML list."""
    options = flat(reply)
    body = reply.text
    formatted = html.escape(reply.text).replace("\n", "<br>")
    if options:
        body += "\n\n" + "\n".join(f"{i}. {o['text']}" for i, o in enumerate(options, 1))
        formatted += "<ol>" + "".join(f"<li>{html.escape(o['text'])}</li>" for o in options) + "</ol>"
    return {"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": formatted}


def edit_content(event_id: str, reply: Reply) -> dict[str, object]:
    """An edit (`m.replace`) of the message `event_id` to say `reply`."""
    new = content(reply)
    return {**new, "body": "* " + str(new["body"]), "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class Choice:
    action: str | None          # the chosen option's action
    number: int | None = None   # a number that names no option (out of range)


def choose(answer: str, options: list[dict[str, str]]) -> Choice | None:
    """What an answer picks: an option (by number, full-width digits too, or by its words),
    a number out of range, or None when the answer is not about the options at all."""
    text = _norm(answer).rstrip(".。)")
    if text.isdigit() and len(text) <= 3:
        number = int(text)
        if 1 <= number <= len(options):
            return Choice(options[number - 1]["action"], number)
        return Choice(None, number)
    for option in options:
        if _norm(option["text"]) == text:
            return Choice(option["action"])
    return None


def strip_reply_fallback(body: str) -> str:
    """A Matrix reply quotes the replied-to message as "> …" lines before the answer; drop them."""
    lines = body.split("\n")
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    return "\n".join(lines).strip()


_KEYCAPS = {f"{d}\ufe0f\u20e3": d for d in range(10)} | {f"{d}\u20e3": d for d in range(10)} | {"\U0001f51f": 10}


def reaction_number(key: str) -> int | None:
    """The option a reaction names: a keycap emoji (1️⃣ … 🔟) or a plain number."""
    key = key.strip()
    if key in _KEYCAPS:
        return _KEYCAPS[key]
    text = unicodedata.normalize("NFKC", key)
    return int(text) if text.isdigit() and len(text) <= 2 else None
