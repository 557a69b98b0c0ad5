"""The book search index: one postings list per (book house, search gram), searched in memory.

Why postings lists and not a row per (gram, book): a search for a common word (「插图本」, an
author with thousands of books) touched tens of thousands of index entries, each a random heap
visit on PostgreSQL until VACUUM marks the pages all-visible. A postings list is one row per query
gram (a handful of reads, same on SQLite and PostgreSQL); counting the hits of ~30,000 ids with
numpy takes about a millisecond. Lists change only when a book is listed or leaves the shelf
(a few times a day), by read-modify-write under a row lock.

Rules (what matches, how it ranks) stay in shared.domain.books.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Book, BookPosting
from shared.db.upsert import insert_for
from shared.domain import books as rules
from shared.domain.books import SEARCHABLE, BookStatus

CANDIDATES = 200     # best candidates ranked per query (pages are cut from these)
_DTYPE = np.dtype("<i8")


def encode(ids: Iterable[int]) -> bytes:
    return np.unique(np.fromiter(ids, dtype=_DTYPE)).astype(_DTYPE).tobytes()


def decode(blob: bytes | None) -> np.ndarray:
    return np.frombuffer(blob or b"", dtype=_DTYPE)


async def _change(session: AsyncSession, house_code: str, add: dict[str, list[int]],
                  remove: dict[str, list[int]]) -> None:
    """Add and remove ids in the postings lists of some grams: three statements, rows locked in gram order."""
    grams = sorted(set(add) | set(remove))
    if not grams:
        return
    if add:
        await session.execute(insert_for(session, BookPosting).values(
            [{"house_code": house_code, "gram": g, "ids": b""} for g in sorted(add)])
            .on_conflict_do_nothing(index_elements=["house_code", "gram"]))
    current = dict((await session.execute(
        select(BookPosting.gram, BookPosting.ids).where(BookPosting.house_code == house_code, BookPosting.gram.in_(grams))
        .order_by(BookPosting.gram).with_for_update())).all())
    changed, emptied = [], []
    for gram in grams:
        if gram not in current:
            continue
        ids = decode(current[gram])
        if gram in add:
            ids = np.union1d(ids, np.asarray(add[gram], dtype=_DTYPE))
        if gram in remove:
            ids = np.setdiff1d(ids, np.asarray(remove[gram], dtype=_DTYPE))
        if ids.size:
            changed.append({"house_code": house_code, "gram": gram, "ids": ids.astype(_DTYPE).tobytes()})
        else:
            emptied.append(gram)
    if changed:
        await session.execute(update(BookPosting), changed)
    if emptied:
        await session.execute(delete(BookPosting).where(BookPosting.house_code == house_code,
                                                        BookPosting.gram.in_(emptied)))


async def index(session: AsyncSession, house_code: str, keyed: Iterable[tuple[int, str]]) -> None:
    """Make books findable (their id in the list of each gram of their search key)."""
    add: dict[str, list[int]] = defaultdict(list)
    for book_id, key in keyed:
        for gram in rules.grams(key):
            add[gram].append(book_id)
    await _change(session, house_code, add, {})


async def unindex(session: AsyncSession, house_code: str, keyed: Iterable[tuple[int, str]]) -> None:
    """Books that left the shelf (given, withdrawn) are no longer found."""
    remove: dict[str, list[int]] = defaultdict(list)
    for book_id, key in keyed:
        for gram in rules.grams(key):
            remove[gram].append(book_id)
    await _change(session, house_code, {}, remove)


SHOWN = (Book.id, Book.title, Book.author, Book.condition, Book.status, Book.location, Book.search_key)


@dataclass(frozen=True)
class SearchResult:
    books: list[Any]    # rows with the SHOWN columns (id, title, author, condition, status, location)
    total: int          # matches found (capped at CANDIDATES)


def best(lists: list[np.ndarray], need: int, limit: int = CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """Ids that appear in at least `need` lists, the most hits first, then the newest: (ids, hits)."""
    if not lists:
        return np.empty(0, dtype=_DTYPE), np.empty(0, dtype=np.int64)
    ids, hits = np.unique(np.concatenate(lists), return_counts=True)
    keep = hits >= need
    ids, hits = ids[keep], hits[keep]
    order = np.lexsort((-ids, -hits))[:limit]
    return ids[order], hits[order]


async def search(session: AsyncSession, house_code: str, query: str, *, offset: int = 0, limit: int = 5) -> SearchResult | None:
    """Title or author, partial, one wrong character, traditional or simplified. None: query too short.

    Candidates share enough of the query's grams that one wrong character still leaves (one read of
    a postings list per gram); the best CANDIDATES are ranked exact-phrase first, then by the share of
    grams found, books on the shelf before held ones, newest first. Whole rows are loaded for the page only.
    """
    key = rules.normalize(query)[:60]
    if len(key) < rules.MIN_QUERY:
        return None
    wanted = rules.grams(key)
    blobs = list(await session.scalars(select(BookPosting.ids).where(BookPosting.house_code == house_code,
                                                                     BookPosting.gram.in_(wanted))))
    ids, hits = best([decode(b) for b in blobs], rules.needed_hits(key))
    if not ids.size:
        return SearchResult([], 0)
    hit_of = dict(zip(ids.tolist(), hits.tolist(), strict=True))
    # One more round trip: the columns a result line shows, for every candidate (ranked here).
    rows = (await session.execute(select(*SHOWN).where(Book.id.in_(list(hit_of)),
                                                       Book.status.in_([str(s) for s in SEARCHABLE])))).all()
    rows.sort(key=lambda r: (-rules.match_score(key, r.search_key, hit_of[r.id]), r.status != BookStatus.AVAILABLE, -r.id))
    return SearchResult(rows[offset : offset + limit], len(rows))
