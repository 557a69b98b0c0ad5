"""Cleaning what people type before it is stored or classified."""

from __future__ import annotations

import re
import unicodedata

MAX_REQUEST_CHARS = 4096

# Zero-width and bidi control characters carry no meaning in a request but can hide text.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def clean_text(text: str | None) -> str:
    """Drop invisible and control characters (keeping newlines); trim whitespace."""
    if not text:
        return ""
    text = _INVISIBLE.sub("", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return text.strip()


def has_words(text: str) -> bool:
    """True when the text has at least one letter or digit (emoji-only or punctuation-only is not a request)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)
