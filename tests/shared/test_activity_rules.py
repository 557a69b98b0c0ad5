"""Pure activity rules: audience and age fit, window, places, recurrence, schedules typed by staff, pick-up names."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import ConfigError, parse_communities
from shared.domain import activities as rules
from shared.settings import REPO_ROOT

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_who_fits_audience():
    assert rules.who_fits("children", for_child=False) == "child_needed"
    assert rules.who_fits("children", for_child=True) is None
    assert rules.who_fits("seniors", for_child=True) == "self_only"
    assert rules.who_fits("seniors", for_child=False) is None
    assert rules.who_fits("everyone", for_child=True) is None and rules.who_fits("everyone", for_child=False) is None


@pytest.mark.parametrize("age, low, high, fits", [
    (6, 6, 12, True), (12, 6, 12, True), (5, 6, 12, False), (13, 6, 12, False),
    (30, None, None, True), (None, None, None, True), (None, 6, 12, False), (70, 60, None, True), (59, 60, None, False),
])
def test_age_fits(age, low, high, fits):
    assert rules.age_fits(age, low, high) is fits


def test_window_state_edges():
    opens, closes = NOW, NOW + timedelta(days=2)
    assert rules.window_state(NOW - timedelta(seconds=1), opens, closes) == "not_yet"
    assert rules.window_state(NOW, opens, closes) == "open"
    assert rules.window_state(closes - timedelta(seconds=1), opens, closes) == "open"
    assert rules.window_state(closes, opens, closes) == "closed"
    assert rules.window_state(NOW, None, None) == "open"


def test_places_and_offers():
    assert rules.place_free(19, 20) and not rules.place_free(20, 20) and not rules.place_free(21, 20)
    assert rules.places_to_offer(18, 20, 5) == 2
    assert rules.places_to_offer(18, 20, 1) == 1
    assert rules.places_to_offer(20, 20, 5) == 0
    assert rules.places_to_offer(22, 20, 5) == 0     # capacity lowered below those enrolled: nobody is offered


def test_offer_expiry_never_past_the_next_session():
    assert rules.offer_expiry(NOW, 24, None) == NOW + timedelta(hours=24)
    soon = NOW + timedelta(hours=5)
    assert rules.offer_expiry(NOW, 24, soon) == soon
    assert rules.offer_expiry(NOW, 24, NOW + timedelta(hours=48)) == NOW + timedelta(hours=24)
    # A session about to start: the offer keeps its full time (it is for the sessions after).
    assert rules.offer_expiry(NOW, 24, NOW + timedelta(minutes=10)) == NOW + timedelta(hours=24)


def test_reminder_window():
    start = NOW + timedelta(hours=10)
    assert rules.reminder_due(start, NOW, 24) and not rules.reminder_due(start, NOW, 2)
    assert not rules.reminder_due(start, start, 24)        # started: too late


def test_weekly_recurrence_across_a_month_with_holidays():
    slots = rules.weekly([0, 2, 4], time(16, 30), time(18, 30), date(2026, 12, 1), date(2026, 12, 31),
                         skip={date(2026, 12, 25)})
    days = [s.day for s in slots]
    assert days[0] == date(2026, 12, 2) and days[-1] == date(2026, 12, 30)
    assert date(2026, 12, 25) not in days
    assert all(d.weekday() in (0, 2, 4) for d in days)
    assert len(days) == 13 - 1   # 13 Mon/Wed/Fri in December 2026, minus Christmas
    assert rules.weekly([1], time(9), time(10), date(2026, 12, 5), date(2026, 12, 1)) == []


def test_slot_to_utc_uses_the_community_timezone():
    start, end = rules.Slot(date(2026, 12, 2), time(16, 30), time(18, 0)).utc("Asia/Shanghai")
    assert start == datetime(2026, 12, 2, 8, 30, tzinfo=UTC) and end == datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, count, first", [
    ("2026-12-05 14:00-16:00", 1, date(2026, 12, 5)),
    ("2026年12月5日 14:00-16:00；2026-12-12 14:00-16:00", 2, date(2026, 12, 5)),
    ("每周三 16:30-18:00 2026-12-01~2026-12-31", 5, date(2026, 12, 2)),
    ("每周一三五 16:30-18:30 2026-12-01至2026-12-13", 5, date(2026, 12, 2)),
    ("weekly mon,wed 16:30-18:00 2026-12-01..2026-12-14", 4, date(2026, 12, 2)),
    ("２０２６－１２－０５ １４：００－１６：００", 1, date(2026, 12, 5)),   # full-width
])
def test_parse_schedule(text, count, first):
    slots, error = rules.parse_schedule(text, date(2026, 12, 1))
    assert error is None and len(slots) == count and slots[0].day == first


@pytest.mark.parametrize("text, error", [
    ("", "format"), ("下周三下午", "format"), ("2026-13-05 14:00-16:00", "date"), ("2026-12-05 16:00-14:00", "span"),
    ("2026-12-05 25:00-26:00", "span"), ("2026-11-05 14:00-16:00", "past"),
    ("每周三 16:30-18:00 2026-12-31~2026-12-01", "date"), ("每周三 16:30-18:00 2026-12-01~2028-12-01", "too_many"),
    ("weekly fun 16:30-18:00 2026-12-01..2026-12-14", "format"), ("x" * 5000, "format"),
])
def test_parse_schedule_rejects(text, error):
    assert rules.parse_schedule(text, date(2026, 12, 1)) == ([], error)


@pytest.mark.parametrize("text, low, high, value", [
    ("8", 1, 18, 8), ("８岁", 1, 18, 8), ("8 years", 1, 18, 8), ("0", 1, 18, None), ("19", 1, 18, None),
    ("eight", 1, 18, None), ("-3", 1, 18, None), ("", 1, 18, None), ("20人", 1, 500, 20),
])
def test_parse_int(text, low, high, value):
    assert rules.parse_int(text, low, high) == value


def test_parse_age_range():
    assert rules.parse_age_range("6-12") == (6, 12) and rules.parse_age_range("6到12岁") == (6, 12)
    assert rules.parse_age_range("12-6") is None and rules.parse_age_range("0-30") is None
    assert rules.parse_age_range("six") is None


def test_pickup_names_and_check():
    names = rules.parse_names("妈妈 王芳、爷爷 李建国，妈妈王芳")
    assert names == ["妈妈 王芳", "爷爷 李建国"]
    assert rules.parse_names("") is None and rules.parse_names("🙂") is None
    assert rules.parse_names("、".join(f"人{i}" for i in range(6))) is None
    assert rules.pickup_allowed("王芳", names) and rules.pickup_allowed("王 芳", names)
    assert rules.pickup_allowed("爷爷李建国", names)
    assert not rules.pickup_allowed("张三", names) and not rules.pickup_allowed("王", names)
    assert not rules.pickup_allowed("", names)
    assert rules.parse_names("<b>王芳</b>") is None and rules.parse_names("{{7*7}}") is None
    assert rules.valid_name("王芳（妈妈）") and rules.valid_name("Ma Li") and not rules.valid_name("王芳; --")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True), st.integers(0, 200), st.integers(0, 120))
def test_weekly_properties(days, offset, length):
    first = date(2026, 1, 1) + timedelta(days=offset)
    last = first + timedelta(days=length)
    slots = rules.weekly(days, time(9), time(10), first, last)
    assert all(first <= s.day <= last and s.day.weekday() in days for s in slots)
    expected = sum(1 for i in range(length + 1) if (first + timedelta(days=i)).weekday() in days)
    assert len(slots) == min(expected, rules.MAX_SESSIONS)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parsers_never_crash(text):
    rules.parse_schedule(text, date(2026, 12, 1))
    rules.parse_int(text, 1, 18)
    rules.parse_names(text)
    rules.pickup_allowed(text, ["王芳"])
    rules.parse_age_range(text)


# --- config validation -------------------------------------------------------------------------------

def _config_with(activity_yaml: str) -> str:
    text = (REPO_ROOT / "config" / "communities.yaml").read_text(encoding="utf-8")
    anchor = "    compounds: [互助巷]\n"
    assert anchor in text
    return text.replace(anchor, anchor + "    activities:\n" + activity_yaml, 1)


def test_shipped_config_has_the_article_programmes(config):
    codes = {a.code: a for c in config.communities for a in c.activities}
    assert {"cjx_four_thirty", "cjx_holiday_class", "yjy_taichi", "yjy_calligraphy", "yjy_knitting", "yjy_aroma"} <= set(codes)
    assert codes["cjx_four_thirty"].audience == "children" and codes["yjy_taichi"].audience == "seniors"
    assert len(codes["cjx_four_thirty"].all_slots()) > 20


@pytest.mark.parametrize("snippet, message", [
    ("      - {code: x1, title: {zh: 课}, audience: children, place: {zh: 室}, capacity: 5,"
     " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n", "age_min and age_max"),
    ("      - {code: x2, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 5}\n", "sessions"),
    ("      - {code: x3, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 0,"
     " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n", "capacity"),
    ("      - {code: x4, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 5,"
     " sessions: [{date: 2026-12-05, time: '16:00-14:00'}]}\n", "16:30-18:00"),
    ("      - {code: x5, title: {zh: 课}, audience: grandparents, place: {zh: 室}, capacity: 5,"
     " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n", "audience"),
    ("      - {code: x6, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 5,"
     " weekly: {days: [mon], time: '09:00-10:00', first: 2027-01-01, last: 2026-01-01}}\n", "first must not be after last"),
    ("      - {code: x7, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 5, colour: red,"
     " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n", "colour"),
    ("      - {code: yjy_taichi, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 5,"
     " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n", "used twice"),
    ("      - {code: x8, programme: nope, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: 5,"
     " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n", "unknown programme"),
])
def test_config_errors_name_line_and_field(snippet, message):
    with pytest.raises(ConfigError) as error:
        parse_communities(_config_with(snippet))
    assert message in str(error.value) and "line " in str(error.value)


def test_config_error_points_at_the_activity_line():
    text = _config_with("      - {code: x1, title: {zh: 课}, audience: seniors, place: {zh: 室}, capacity: -1,"
                        " sessions: [{date: 2026-12-05, time: '14:00-16:00'}]}\n")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "code: x1" in row)
    with pytest.raises(ConfigError) as error:
        parse_communities(text)
    assert f"line {line}" in str(error.value) and "activities.0.capacity" in str(error.value)
