"""How alike two short requests are: character bigrams, which suit Chinese without word splitting."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


# Chinese numerals as digits ("三单元" = "3单元"); particles that carry no meaning are dropped.
_NUMERALS = str.maketrans("零一二两三四五六七八九", "01223456789")
_FILLERS = set("的了啊呢吧哈呀嘛吗哦")


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().translate(_NUMERALS)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN" and ch not in _FILLERS)


@lru_cache(maxsize=8192)
def bigrams(text: str) -> frozenset[str]:
    # Remembered: a new request is compared with the same open requests as the one before it.
    text = _normal(text)
    return frozenset({text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set()))


def dice(x: frozenset[str], y: frozenset[str]) -> float:
    """Dice coefficient of two bigram sets, 0..1 (kinder than Jaccard to short messages)."""
    if not x or not y:
        return 0.0
    return 2 * len(x & y) / (len(x) + len(y))


def similarity(a: str, b: str) -> float:
    """How alike two texts are: the Dice coefficient of their character bigrams."""
    return dice(bigrams(a), bigrams(b))
