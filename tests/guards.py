"""Checks every test that drives the bot gets for free (imported as autouse fixtures by conftests).

- No update fails unnoticed. The dispatcher's last-line error handler
  (`services.bot.handlers.errors.answer_unhandled`) turns any exception into a polite
  "temporarily unavailable" answer, which would otherwise hide a bug from a test: its log line
  fails the test, unless the test asks for the `unhandled_updates_expected` fixture.
- No personal data in the logs at INFO or above (SPEC §7): every log record of the test
  (message, extra fields, traceback) is scanned for phone numbers and for the texts and names
  the test's residents sent (`tests.fakes.Updates`); any hit fails the test.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from shared.domain.text import clean_text, has_words
from shared.logs import JsonFormatter
from tests.fakes import Updates

UNHANDLED = "update failed"
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
MIN_TEXT = 4  # shorter texts ("好", "是的", "1") are not a person's data and may occur by chance


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_current: set[str] | None = None


def remember(*values: str) -> None:
    """Personal data a test sends some other way than `Updates.message` (a shared contact, say)."""
    if _current is not None:
        _current.update(values)


@pytest.fixture
def unhandled_updates_expected() -> None:
    """For a test that provokes the last-line error handler on purpose."""


def _secrets(text: str | None, first_name: str | None) -> set[str]:
    found = set(PHONE.findall(text or ""))
    cleaned = clean_text(text)
    # Digits and punctuation alone ("6-12", "12-05 19:30") are not a person's words and occur in every
    # timestamp; phone numbers among them are caught by PHONE above.
    if (len(cleaned) >= MIN_TEXT and has_words(cleaned) and not cleaned.startswith("/")
            and any(ch.isalpha() for ch in cleaned)):
        found.add(cleaned)
    if first_name and len(first_name) >= 2:
        found.add(first_name)
    return found


@pytest.fixture(autouse=True)
def bot_guards(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    global _current
    secrets: set[str] = set()
    _current = secrets
    real_message = Updates.message

    def message(self, user_id, text, **kwargs):  # type: ignore[no-untyped-def]
        secrets.update(_secrets(text, kwargs.get("first_name", "王阿姨")))
        return real_message(self, user_id, text, **kwargs)

    monkeypatch.setattr(Updates, "message", message)
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        _current = None
    failed = [r for r in handler.records if r.name == "linju.bot" and r.getMessage() == UNHANDLED]
    if failed and "unhandled_updates_expected" not in request.fixturenames:
        errors = sorted({str(r.__dict__.get("error")) for r in failed})
        pytest.fail(f"{len(failed)} update(s) failed and were answered 'temporarily unavailable': {errors}")
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in handler.records)
    leaked = sorted(s for s in secrets if s in logged)
    if leaked:
        pytest.fail(f"personal data in the logs at INFO or above: {[s[:40] for s in leaked]}")
