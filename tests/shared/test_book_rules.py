"""Pure book-exchange rules: ISBN validation (table and properties), title parsing, search keys, days."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import books as rules


@pytest.mark.parametrize("text, isbn13", [
    ("9787020002207", "9787020002207"),          # 红楼梦, 人民文学出版社
    ("978-7-02-000220-7", "9787020002207"),
    ("978 7 02 000220 7", "9787020002207"),
    ("ISBN 978-7-5442-4540-1", "9787544245401"),
    ("ISBN-13: 978-0-306-40615-7", "9780306406157"),
    ("0-306-40615-2", "9780306406157"),          # ISBN-10 → ISBN-13
    ("0306406152", "9780306406157"),
    ("0-8044-2957-X", "9780804429573"),          # ISBN-10 with X
    ("080442957x", "9780804429573"),
    ("１２３４５６７８９Ｘ", "9781234567897"),         # full-width digits
    ("979-10-90636-07-1", "9791090636071"),
])
def test_valid_isbns(text, isbn13):
    check = rules.check_isbn(text)
    assert check.ok and check.isbn13 == isbn13


@pytest.mark.parametrize("text, error, expected, given_digit", [
    ("9787020002208", "checksum", "7", "8"),
    ("978-0-306-40615-6", "checksum", "7", "6"),
    ("0-306-40615-3", "checksum", "2", "3"),
    ("0-8044-2957-5", "checksum", "X", "5"),
    ("97870200022", "length", None, None),
    ("97870200022077", "length", None, None),
    ("X306406152", "chars", None, None),
    ("978702000220X", "chars", None, None),
    ("1237020002207", "chars", None, None),     # 13 digits must start 978/979
    ("978-7-02-00022a-7", "chars", None, None),
    ("", "chars", None, None),
])
def test_invalid_isbns_say_why(text, error, expected, given_digit):
    check = rules.check_isbn(text)
    assert not check.ok
    assert (check.error, check.expected, check.given) == (error, expected, given_digit)


DIGITS = st.text(alphabet="0123456789", min_size=9, max_size=9)


@settings(max_examples=300)
@given(DIGITS, st.sampled_from(["", "-", " "]))
def test_every_isbn10_with_its_check_digit_is_valid_and_converts(first9, sep):
    isbn10 = first9 + rules.isbn10_check_digit(first9)
    check = rules.check_isbn(sep.join(isbn10))
    assert check.ok and check.isbn13.startswith("978") and rules.check_isbn(check.isbn13).isbn13 == check.isbn13


@settings(max_examples=300)
@given(st.sampled_from(["978", "979"]), st.text(alphabet="0123456789", min_size=9, max_size=9),
       st.integers(min_value=0, max_value=12), st.integers(min_value=1, max_value=9))
def test_any_single_digit_error_in_an_isbn13_is_caught(prefix, body, position, shift):
    core = prefix + body
    isbn = core + rules.isbn13_check_digit(core)
    assert rules.check_isbn(isbn).ok
    wrong = isbn[:position] + str((int(isbn[position]) + shift) % 10) + isbn[position + 1:]
    if wrong[:3] in ("978", "979"):
        assert not rules.check_isbn(wrong).ok


@settings(max_examples=300)
@given(DIGITS, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=9))
def test_any_single_digit_error_in_an_isbn10_is_caught(first9, position, shift):
    isbn = first9 + rules.isbn10_check_digit(first9)
    wrong = isbn[:position] + str((int(isbn[position]) + shift) % 10) + isbn[position + 1:]
    assert not rules.check_isbn(wrong).ok


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_check_isbn_never_raises(text):
    check = rules.check_isbn(text)
    assert check.ok == (check.error is None)


@pytest.mark.parametrize("text, title, author", [
    ("《红楼梦》曹雪芹", "红楼梦", "曹雪芹"),
    ("《红楼梦》 作者：曹雪芹", "红楼梦", "曹雪芹"),
    ("红楼梦 / 曹雪芹", "红楼梦", "曹雪芹"),
    ("红楼梦\n曹雪芹", "红楼梦", "曹雪芹"),
    ("活着——余华", "活着", "余华"),
    ("The Little Prince by Antoine de Saint-Exupéry", "The Little Prince", "Antoine de Saint-Exupéry"),
    ("平凡的世界", "平凡的世界", None),
])
def test_title_and_author(text, title, author):
    assert rules.parse_title_author(text) == (title, author)


def test_normalize_folds_width_case_punctuation_and_traditional():
    assert rules.normalize("《紅樓夢》 曹雪芹") == rules.normalize("红楼梦曹雪芹") == "红楼梦曹雪芹"
    assert rules.normalize("Ｈａｒｒｙ  Potter!") == "harrypotter"


@pytest.mark.parametrize("query, key, hit", [
    ("红楼", "红楼梦曹雪芹", True),            # partial
    ("红搂梦", "红楼梦曹雪芹", True),           # one wrong character
    ("曹雪芹", "红楼梦曹雪芹", True),           # author only
    ("紅樓夢", rules.normalize("红楼梦"), True),  # traditional
    ("harry poter", "harrypotterandthephilosophersstonejkrowling", True),
    ("西游记", "红楼梦曹雪芹", False),
    ("红楼梦", "西游记吴承恩", False),
    ("红", "红楼梦", False),                   # too short to mean anything
])
def test_matches(query, key, hit):
    assert rules.matches(rules.normalize(query), key) is hit


def test_handover_days_follow_open_hours():
    spec = {"tue-sat": "09:00-17:00"}
    # 2026-03-02 is a Monday: the house is closed on Mondays and Sundays.
    days = rules.handover_days(spec, date(2026, 3, 2), date(2026, 3, 10))
    assert [d.weekday() for d in days] == [1, 2, 3, 4, 5, 1]
    assert rules.open_days({"sat-mon": "10:00-12:00"}).keys() == {5, 6, 0}


@pytest.mark.parametrize("balance, pending, floor, ok", [(0, 0, 0, False), (1, 0, 0, True), (1, 1, 0, False),
                                                         (0, 0, -2, True), (-2, 0, -2, False)])
def test_can_take_keeps_the_floor(balance, pending, floor, ok):
    assert rules.can_take(balance, pending, floor) is ok
