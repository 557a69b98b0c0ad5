"""Pure fridge rules: local time, slots, capacity, dates, shifts, quiet hours."""

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.config import ConfigError, parse_communities
from shared.domain import fridge as rules
from shared.settings import REPO_ROOT

TZ = "Asia/Shanghai"
HOURS = {"mon-sun": "07:00-21:00"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_today_is_the_community_s_local_day():
    # 16:30 UTC on the 29th is 00:30 on the 30th in Lanzhou.
    assert rules.local_today(utc(2026, 11, 29, 16, 30), TZ) == date(2026, 11, 30)
    assert rules.local_today(utc(2026, 11, 29, 15, 59), TZ) == date(2026, 11, 29)


def test_slots_follow_local_open_hours_and_skip_what_is_over():
    now = utc(2026, 11, 29, 12, 40)  # 20:40 local: the 20:00-21:00 slot has 20 minutes left
    slots = rules.candidate_slots(HOURS, now, TZ, slot_minutes=60, days=2, last_day=date(2026, 12, 31))
    assert slots[0].start == utc(2026, 11, 29, 23, 0)  # tomorrow 07:00 local
    assert len(slots) == 14 and all(s.end - s.start == timedelta(hours=60 / 60) for s in slots)
    # 20:20 local: more than half of the last slot left, so it is still offered.
    early = rules.candidate_slots(HOURS, utc(2026, 11, 29, 12, 20), TZ, slot_minutes=60, days=1,
                                  last_day=date(2026, 12, 31))
    assert [s.start for s in early] == [utc(2026, 11, 29, 12, 0)]


def test_no_slot_after_the_best_before_day():
    now = utc(2026, 11, 29, 12, 40)
    assert rules.candidate_slots(HOURS, now, TZ, slot_minutes=60, days=3, last_day=date(2026, 11, 29)) == []


def test_closed_days_have_no_slots():
    now = utc(2026, 11, 29, 0, 0)  # a Sunday
    slots = rules.candidate_slots({"tue-sat": "09:00-17:00"}, now, TZ, slot_minutes=60, days=3,
                                  last_day=date(2027, 1, 1))
    assert {rules.local(s.start, TZ).weekday() for s in slots} == {1}  # only Tuesday in Sun..Tue


def test_never_a_slot_past_capacity():
    slots = rules.candidate_slots(HOURS, utc(2026, 11, 29, 0, 0), TZ, slot_minutes=60, days=1,
                                  last_day=date(2026, 12, 1))
    assert rules.offerable_slots(slots, quantity=3, capacity=60, occupied=58, booked={}, slot_limit=20, limit=6) == []
    ok = rules.offerable_slots(slots, quantity=2, capacity=60, occupied=58, booked={}, slot_limit=20, limit=6)
    assert len(ok) == 6
    full_first = rules.offerable_slots(slots, quantity=2, capacity=60, occupied=0, booked={slots[0].start: 19},
                                       slot_limit=20, limit=6)
    assert slots[0] not in full_first and slots[1] in full_first


@pytest.mark.parametrize("text, expected", [
    ("2026-12-05", date(2026, 12, 5)), ("2026/12/5", date(2026, 12, 5)), ("12月5日", date(2026, 12, 5)),
    ("12-05", date(2026, 12, 5)), ("1月3日", date(2027, 1, 3)), ("2月30日", None), ("明天", None), ("", None),
    ("9" * 50, None),
])
def test_typed_dates(text, expected):
    assert rules.parse_date(text, date(2026, 11, 29)) == expected


def test_past_and_far_dates_are_refused():
    today = date(2026, 11, 29)
    assert rules.date_problem(date(2026, 11, 28), today) == "date_past"
    assert rules.date_problem(today, today) is None
    assert rules.date_problem(date(2028, 1, 1), today) == "date_far"
    assert rules.date_problem(None, today) == "date_invalid"


@pytest.mark.parametrize("text, expected", [("3", 3), ("5份", 5), (" 10 ", 10), ("0", None), ("51", None),
                                            ("三", None), ("-1", None), ("", None)])
def test_quantities(text, expected):
    assert rules.parse_quantity(text) == expected


def test_quiet_hours_cross_midnight():
    assert rules.in_quiet_hours("22:00-07:00", utc(2026, 11, 29, 15, 0), TZ)      # 23:00 local
    assert rules.in_quiet_hours("22:00-07:00", utc(2026, 11, 29, 22, 30), TZ)     # 06:30 local
    assert not rules.in_quiet_hours("22:00-07:00", utc(2026, 11, 29, 23, 0), TZ)  # 07:00 local
    assert not rules.in_quiet_hours(None, utc(2026, 11, 29, 15, 0), TZ)


def test_shifts_for_a_week_skip_what_is_over():
    now = utc(2026, 11, 29, 4, 0)  # 12:00 local: the morning shift is over
    shifts = rules.shift_occurrences(["08:00-08:30", "20:00-20:30"], HOURS, now, TZ, 7)
    assert len(shifts) == 13 and shifts[0][0] == utc(2026, 11, 29, 12, 0)


def test_item_state_machine():
    assert rules.can_transition("pledged", "in_fridge") and not rules.can_transition("taken", "in_fridge")
    assert rules.sources_of("removed") == {"in_fridge", "to_remove"}


def _yaml(replace: str, by: str) -> str:
    text = (REPO_ROOT / "config" / "communities.yaml").read_text(encoding="utf-8")
    assert replace in text
    return text.replace(replace, by)


@pytest.mark.parametrize("replace, by, field", [
    ('shifts: ["08:00-08:30", "20:00-20:30"]', 'shifts: ["9-10"]', "shifts"),
    ("temperature_max: 8", "temperature_max: -5", "temperature_min"),
    ('summary_at: "21:30"', 'summary_at: "25:00"', "summary_at"),
    ('quiet_hours: "22:00-07:00"', 'quiet_hours: "late"', "quiet_hours"),
    ("open_hours: {mon-sun:", "open_hours: {someday:", "open hours"),
])
def test_bad_fridge_config_names_the_field(replace, by, field):
    with pytest.raises(ConfigError) as error:
        parse_communities(_yaml(replace, by))
    assert field in str(error.value)
