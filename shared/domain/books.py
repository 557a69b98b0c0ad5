"""Pure rules of the book exchange (凤翮筑梦书屋, 以书换绿): ISBN, search keys, holds, points.

No framework imports: used by flows, sweeps, the scheduler and the benchmark alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

CONDITIONS = ("new", "good", "fair", "worn")
LOCATIONS = ("house", "owner")
TITLE_LIMIT = 120
AUTHOR_LIMIT = 80
MIN_QUERY = 2


class BookStatus(StrEnum):
    AVAILABLE = "available"   # listed, nobody holds it
    HELD = "held"             # held for one requester (others queue)
    GIVEN = "given"           # handed over: leaves the stock
    WITHDRAWN = "withdrawn"   # the owner took it back


class HoldStatus(StrEnum):
    QUEUED = "queued"       # waiting behind the current holder
    HELD = "held"           # the book is kept for this person until expires_at
    HANDED = "handed"       # handed over (points moved)
    EXPIRED = "expired"     # lapsed: the next in the queue is offered the book
    CANCELLED = "cancelled"  # the requester gave up


ACTIVE_HOLDS = (HoldStatus.QUEUED, HoldStatus.HELD)
SEARCHABLE = (BookStatus.AVAILABLE, BookStatus.HELD)


# --- ISBN ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IsbnCheck:
    """The outcome of validating what someone typed as an ISBN."""

    isbn13: str | None            # normalised ISBN-13 when valid
    error: str | None = None      # "length" | "chars" | "checksum"
    expected: str | None = None   # the check digit the rest of the number calls for
    given: str | None = None      # the check digit typed

    @property
    def ok(self) -> bool:
        return self.isbn13 is not None


_SEPARATORS = re.compile(r"[\s\-‐‑‒–—]")
_ISBN_PREFIX = re.compile(r"^isbn(?:-1[03])?:?", re.IGNORECASE)


def isbn10_check_digit(first9: str) -> str:
    total = sum((10 - i) * int(d) for i, d in enumerate(first9))
    value = (11 - total % 11) % 11
    return "X" if value == 10 else str(value)


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_to_13(isbn10: str) -> str:
    core = "978" + isbn10[:9]
    return core + isbn13_check_digit(core)


def compact_isbn(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").strip()
    return _SEPARATORS.sub("", _ISBN_PREFIX.sub("", text)).upper()


def looks_like_isbn(text: str) -> bool:
    """Digits (and X), hyphens and spaces only, with enough digits to be meant as an ISBN."""
    compact = compact_isbn(text)
    return bool(re.fullmatch(r"[0-9X]+", compact)) and sum(c.isdigit() for c in compact) >= 9


def check_isbn(text: str) -> IsbnCheck:
    compact = compact_isbn(text)
    if not re.fullmatch(r"[0-9X]+", compact or "-"):
        return IsbnCheck(None, "chars")
    if len(compact) == 10:
        if "X" in compact[:9]:
            return IsbnCheck(None, "chars")
        expected = isbn10_check_digit(compact[:9])
        if compact[9] != expected:
            return IsbnCheck(None, "checksum", expected, compact[9])
        return IsbnCheck(isbn10_to_13(compact))
    if len(compact) == 13:
        if "X" in compact:
            return IsbnCheck(None, "chars")
        if not compact.startswith(("978", "979")):
            return IsbnCheck(None, "chars")
        expected = isbn13_check_digit(compact[:12])
        if compact[12] != expected:
            return IsbnCheck(None, "checksum", expected, compact[12])
        return IsbnCheck(compact)
    return IsbnCheck(None, "length")


# --- title and author --------------------------------------------------------------------------

_BOOK_MARKS = re.compile(r"《(.+?)》")
_SPLIT = re.compile(r"\s*(?:\n|/|／|\||——|—|--| by |，作者[:：]?|,\s*author[:：]?|作者[:：])\s*", re.IGNORECASE)


def parse_title_author(text: str) -> tuple[str, str | None]:
    """`《红楼梦》曹雪芹`, `红楼梦 / 曹雪芹`, `title\\nauthor`, `Title by Author` → (title, author)."""
    text = text.strip()
    marked = _BOOK_MARKS.search(text)
    if marked:
        title = marked.group(1).strip()
        rest = (text[: marked.start()] + " " + text[marked.end():]).strip(" ,，、:：/—-\n")
        rest = re.sub(r"^(?:作者[:：]?|by\s+)", "", rest, flags=re.IGNORECASE).strip()
        return title, rest or None
    parts = [p.strip() for p in _SPLIT.split(text, maxsplit=1)]
    title = parts[0]
    author = parts[1] if len(parts) > 1 and parts[1] else None
    return title, author


# --- search keys ---------------------------------------------------------------------------

# Traditional → simplified for characters common in titles and names: cheap, and enough for
# 「紅樓夢」 to find 红楼梦. (A full converter such as OpenCC would be a heavy dependency.)
_T2S_PAIRS = (
    "紅红樓楼夢梦書书國国學学說说語语記记風风雲云長长門门開开東东車车馬马魚鱼鳥鸟龍龙"
    "華华萬万與与來来時时間间問问題题變变愛爱親亲見见觀观經经濟济會会們们個个這这過过"
    "還还進进運运動动發发現现無无為为從从對对將将爾尔歲岁歷历麗丽傳传戰战論论詩诗詞词"
    "畫画聖圣靈灵藝艺術术認认識识讀读寫写聽听師师飛飞熱热氣气線线紀纪約约結结給给"
    "絲丝紅红綠绿藍蓝黃黄實实寶宝寫写專专業业歡欢樂乐漢汉臺台灣湾廣广州州鄉乡遊游戲戏"
    "貓猫獅狮雞鸡狀状態态嗎吗邊边裡里裏里後后幾几麼么雜杂誌志醫医藥药養养應应該该"
    "張张陳陈劉刘楊杨趙赵吳吴孫孙馮冯鄭郑蕭萧錢钱譚谭韓韩鄧邓許许謝谢羅罗魯鲁遲迟"
    "亞亚歐欧蘇苏義义聯联軍军黨党議议團团園园島岛嶺岭橋桥鐵铁銀银錄录鋼钢鏡镜鐘钟"
    "頭头題题顏颜願愿類类體体樹树葉叶轉转輪轮邊边遠远選选鄰邻鬥斗兒儿媽妈爺爷孫孙"
)
T2S = {_T2S_PAIRS[i]: _T2S_PAIRS[i + 1] for i in range(0, len(_T2S_PAIRS) - 1, 2)}


def normalize(text: str) -> str:
    """The search key: NFKC (full-width → half-width), lower case, simplified, letters and digits only."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    out = []
    for ch in text:
        ch = T2S.get(ch, ch)
        if unicodedata.category(ch)[0] in "LN":
            out.append(ch)
    return "".join(out)


def grams(key: str) -> set[str]:
    """Search postings of a key: character bigrams, plus skip-grams (`a_c` from `abc`).

    Skip-grams keep a short Chinese title with one wrong middle character findable:
    「红搂梦」 shares no bigram with 红楼梦 but shares 「红_梦」.
    """
    if len(key) < 2:
        return set()
    out = {key[i : i + 2] for i in range(len(key) - 1)}
    out |= {key[i] + "_" + key[i + 2] for i in range(len(key) - 2)}
    return out


def needed_hits(query_key: str) -> int:
    """How many of the query's grams a match must share so that one wrong character still matches.

    A wrong character kills the two bigrams around it and the skip-grams ending on it: at most
    four, and fewer in short keys (2 of a 3-character key's 3 grams, 3 of a 4-character key's 5).
    """
    total = len(grams(query_key))
    return max(1, total - min(4, len(query_key) - 1))


def match_score(query_key: str, book_key: str, hits: int) -> float:
    """Rank: the exact phrase first, then the share of the query's grams found."""
    return (1.0 if query_key in book_key else 0.0) + hits / max(len(grams(query_key)), 1)


def matches(query_key: str, book_key: str) -> bool:
    """The same test the database search applies, for one book (used for wish lists)."""
    if len(query_key) < MIN_QUERY:
        return False
    if query_key in book_key:
        return True
    return len(grams(query_key) & grams(book_key)) >= needed_hits(query_key)


# --- handover days -------------------------------------------------------------------------------

_DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def open_days(spec: dict[str, str]) -> dict[int, tuple[time, time]]:
    """`{"tue-sat": "09:00-17:00", "sun": "10:00-12:00"}` → weekday → (opens, closes)."""
    days: dict[int, tuple[time, time]] = {}
    for key, hours in spec.items():
        first, _, last = key.partition("-")
        start, end = _DAY_CODES.index(first), _DAY_CODES.index(last or first)
        opens, closes = (time.fromisoformat(h) for h in hours.split("-"))
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        for day in span:
            days[day] = (opens, closes)
    return days


def handover_days(spec: dict[str, str], today: date, until: date, limit: int = 6) -> list[date]:
    """Open days of the book house from today to `until` (the end of the hold)."""
    days = open_days(spec)
    out, day = [], today
    while day <= until and len(out) < limit:
        if day.weekday() in days:
            out.append(day)
        day += timedelta(days=1)
    return out


def hold_expiry(now: datetime, hold_days: int) -> datetime:
    return now + timedelta(days=hold_days)


def can_take(balance: int, pending: int, floor: int) -> bool:
    """Taking a book costs a point; the balance, after every hold already promised, stays ≥ floor."""
    return balance - pending - 1 >= floor
