"""Mediation rules: the case lifecycle, the ladder of levels, codes, session input, statistics."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.domain import mediation as rules
from shared.domain.mediation import CaseStatus, StageOutcome


def test_lifecycle_allows_the_story_of_a_case():
    story = [CaseStatus.OPEN, CaseStatus.OPEN, CaseStatus.PROPOSED, CaseStatus.OPEN, CaseStatus.PROPOSED,
             CaseStatus.AGREED, CaseStatus.FOLLOWUP, CaseStatus.OPEN, CaseStatus.PROPOSED, CaseStatus.AGREED,
             CaseStatus.FOLLOWUP, CaseStatus.RESOLVED]
    for current, target in zip(story, story[1:]):
        rules.check_transition(current, target)


@pytest.mark.parametrize("current,target", [
    ("open", "agreed"), ("open", "resolved"), ("open", "followup"), ("proposed", "resolved"),
    ("proposed", "closed"), ("agreed", "open"), ("agreed", "resolved"), ("followup", "closed"),
    ("resolved", "open"), ("referred", "open"), ("closed", "open"), ("closed", "closed"),
])
def test_illegal_transitions_are_refused(current, target):
    assert not rules.can_transition(current, target)
    with pytest.raises(rules.TransitionError):
        rules.check_transition(current, target)


def test_final_states_go_nowhere_and_sources_match():
    for final in rules.FINAL:
        assert not any(rules.can_transition(final, target) for target in CaseStatus)
    assert rules.sources_of("agreed") == {CaseStatus.PROPOSED}
    assert rules.sources_of("open") == {CaseStatus.OPEN, CaseStatus.PROPOSED, CaseStatus.FOLLOWUP}
    with pytest.raises(ValueError):
        rules.can_transition("open", "nonsense")


def test_ladder_escalates_up_to_the_committee_and_no_further():
    ladder = rules.ladder_from({"levels": ["building_informant", "compound", "residents_committee"]})
    assert ladder.escalate(0) == 1 and ladder.escalate(1) == 2
    assert not ladder.can_escalate(2)
    with pytest.raises(rules.TransitionError):
        ladder.escalate(2)
    short = rules.ladder_from({"levels": ["compound", "residents_committee"], "followup_weeks": 2})
    assert short.name_of(0) == "compound" and short.followup_days == 14 and not short.can_escalate(1)


@pytest.mark.parametrize("extra", [
    {"levels": ["building", "compound"]}, {"levels": ["compound", "compound"]}, {"followup_days": 0},
    {"followup_weeks": "four"}, {"reminder_hours": True}, {"followup_close_days": 500},
])
def test_bad_programme_settings_are_config_errors(extra):
    with pytest.raises(ValueError):
        rules.ladder_from(extra)


def test_defaults_without_a_programme():
    ladder = rules.ladder_from(None)
    assert ladder.levels == rules.LEVELS and ladder.followup_days == 28 and ladder.reminder_hours == 24


def test_sides_and_codes():
    assert rules.side_label_index([]) == 1 and rules.side_label_index([1, 2]) == 3 and rules.side_label_index([2]) == 1
    assert rules.normalize_code(" md-abcd 2345 ") == "ABCD2345"
    assert rules.normalize_code("ＡＢＣＤ２３４５") == "ABCD2345"          # full-width typed on a phone
    for bad in ("", None, "ABC", "ABCD23450", "ABCD234O", "abcd 1234", "'; drop table--", "🙂🙂🙂🙂🙂🙂🙂🙂"):
        assert rules.normalize_code(bad) is None


def test_answers():
    assert rules.all_answered_yes([1, 2], {1: True, 2: True})
    assert not rules.all_answered_yes([1, 2], {1: True})
    assert not rules.all_answered_yes([], {})
    assert rules.any_answered_no({1: True, 2: False}) and not rules.any_answered_no({1: True})


NOW = datetime(2026, 12, 1, 10, 0)


@pytest.mark.parametrize("text,when,place", [
    ("12-05 19:30 毛大姐调解室", datetime(2026, 12, 5, 19, 30), "毛大姐调解室"),
    ("2026-12-05 9:00 社区活动室", datetime(2026, 12, 5, 9, 0), "社区活动室"),
    ("12月5日 19点 三单元门口", datetime(2026, 12, 5, 19, 0), "三单元门口"),
    ("01-05 10:00 居委会", datetime(2027, 1, 5, 10, 0), "居委会"),             # early January next year
    ("１２－０５　１９：３０　调解室", datetime(2026, 12, 5, 19, 30), "调解室"),  # full-width
])
def test_session_input(text, when, place):
    parsed = rules.parse_session(text, NOW.date(), NOW)
    assert (parsed.when, parsed.place, parsed.error) == (when, place, None)


@pytest.mark.parametrize("text,error", [
    ("明天晚上", "format"), ("", "format"), ("13-40 10:00 调解室", "date"), ("12-01 09:00 调解室", "past"),
    ("2027-06-01 10:00 调解室", "far"), ("12-05 19:30", "place"), ("12-05 19:30 🙂", "place"),
    ("12-05 19:30 " + "长" * 101, "place"), ("12-05 25:00 调解室", "date"),
])
def test_bad_session_input(text, error):
    assert rules.parse_session(text, NOW.date(), NOW).error == error


def test_reminder_window():
    start = datetime(2026, 12, 5, 19, 30)
    assert not rules.reminder_due(start, datetime(2026, 12, 4, 19, 0), 24)
    assert rules.reminder_due(start, datetime(2026, 12, 4, 19, 30), 24)
    assert rules.reminder_due(start, datetime(2026, 12, 5, 19, 29), 24)
    assert not rules.reminder_due(start, start, 24)


def test_level_stats_measure_the_success_rate():
    stages = [(1, 0, StageOutcome.AGREED), (2, 0, StageOutcome.ESCALATED), (2, 1, StageOutcome.AGREED),
              (3, 0, StageOutcome.AGREED), (3, 0, None), (4, 0, StageOutcome.CLOSED)]
    agreements = [(1, 0, True), (2, 1, True), (3, 0, False)]
    first = rules.level_stats(stages, agreements, 0)
    assert (first.handled, first.agreed, first.escalated, first.followed_up, first.holding) == (4, 2, 1, 2, 1)
    assert first.success_pct == 50
    second = rules.level_stats(stages, agreements, 1)
    assert (second.handled, second.agreed, second.success_pct) == (1, 1, 100)
    assert rules.level_stats(stages, agreements, 2).success_pct is None
