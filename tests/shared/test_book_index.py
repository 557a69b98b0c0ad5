"""The book search index (postings lists) and the match threshold it applies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shared import book_index, books
from shared.config import BookHouse
from shared.db.models import BookPosting
from shared.domain import books as rules


@pytest.mark.parametrize("key, need", [("红楼", 1), ("红楼梦", 1), ("平凡世界", 2), ("十万个为什么", 5), ("abcdefgh", 9)])
def test_needed_hits_by_length(key, need):
    assert rules.needed_hits(key) == need


CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF)


@settings(max_examples=300, deadline=None)
@given(st.lists(CJK, min_size=3, max_size=12), st.data())
def test_one_wrong_character_still_finds_the_book(chars, data):
    """The threshold is exact: whatever single character is mistyped, the grams left still reach it."""
    key = "".join(chars)
    position = data.draw(st.integers(0, len(chars) - 1))
    typo = data.draw(CJK.filter(lambda c: c != chars[position]))
    query = key[:position] + typo + key[position + 1:]
    assert len(rules.grams(query) & rules.grams(key)) >= rules.needed_hits(query)


def test_best_orders_by_hits_then_newest_and_applies_the_threshold():
    lists = [np.array(ids, dtype="<i8") for ids in ([1, 2, 3, 7], [2, 3, 7], [3, 9], [7])]
    ids, hits = book_index.best(lists, need=2)
    assert ids.tolist() == [7, 3, 2] and hits.tolist() == [3, 3, 2]
    assert book_index.best([], need=1)[0].size == 0


def test_encode_sorts_and_drops_duplicates():
    assert book_index.decode(book_index.encode([5, 1, 5, 3])).tolist() == [1, 3, 5]


def test_the_points_floor_is_never_below_zero():
    fields = dict(code="x", name={"zh": "书屋"}, place={"zh": "二楼"}, open_hours={"tue-sat": "09:00-17:00"})
    assert BookHouse(**fields).points_floor == 0
    with pytest.raises(ValueError):
        BookHouse(**fields, points_floor=-1)
    with pytest.raises(ValueError):
        BookHouse(**fields, shifts=["13:00-09:00"])
    with pytest.raises(ValueError):
        BookHouse(**{**fields, "open_hours": {"someday": "09:00-17:00"}})


async def test_index_add_remove_and_search(db, config):
    house = books.house_for(config, "zjy")
    async with db.sessions() as session:
        dream = await books.add_book(session, house, None, title="红楼梦", author="曹雪芹", isbn=None,
                                     condition="good", location="house", photo=None)
        other = await books.add_book(session, house, None, title="红楼梦魇", author="张爱玲", isbn=None,
                                     condition="good", location="house", photo=None)
        await book_index.index(session, house.code, [(dream.id, dream.search_key)])   # indexing twice is harmless
        await session.commit()
        found = await books.search(session, house.code, "红楼梦")
        assert [b.id for b in found.books] == [other.id, dream.id] and found.total == 2   # newest first on a tie
        assert [b.id for b in (await books.search(session, house.code, "曹雪芹")).books] == [dream.id]
        assert (await books.search(session, "elsewhere", "红楼梦")).total == 0
        assert await books.search(session, house.code, "红") is None
        await book_index.unindex(session, house.code, [(dream.id, dream.search_key), (other.id, other.search_key)])
        await session.commit()
        assert (await books.search(session, house.code, "红楼梦")).total == 0
        assert list(await session.scalars(select(BookPosting.gram))) == []   # empty lists are dropped


def test_migration_0007_moves_the_index_to_postings_lists_and_back(tmp_path):
    """Books listed before 0007 stay findable after it; going back rebuilds the old postings."""
    import sqlite3

    from shared.db.migrate import downgrade, upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0006")
    db = sqlite3.connect(tmp_path / "m.db")
    db.execute("INSERT INTO communities (code, name_zh, name_en) VALUES ('zjy', '张家园', 'Zhangjiayuan')")
    for book_id, title, status in ((1, "红楼梦曹雪芹", "available"), (2, "活着余华", "given")):
        db.execute("INSERT INTO books (id, house_code, community_code, title, condition, location, status, search_key, "
                   "wish_stage, created_at) VALUES (?, 'fenghe', 'zjy', ?, 'good', 'house', ?, ?, 1, '2026-11-01')",
                   (book_id, title, status, title))
        db.executemany("INSERT INTO book_grams (gram, book_id) VALUES (?, ?)", [(g, book_id) for g in rules.grams(title)])
    db.commit()
    upgrade(url)
    lists = {gram: book_index.decode(ids).tolist() for gram, ids in db.execute("SELECT gram, ids FROM book_postings")}
    assert lists == {gram: [1] for gram in rules.grams("红楼梦曹雪芹")}      # the given book is not indexed
    downgrade(url, "0006")
    assert sorted(db.execute("SELECT gram, book_id FROM book_grams")) == sorted((g, 1) for g in rules.grams("红楼梦曹雪芹"))
    db.close()
