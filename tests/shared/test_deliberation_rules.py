"""Pure rules of the four-step deliberation: stages, eligibility, tally, quorum, parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.domain import deliberation as rules
from shared.domain.deliberation import IllegalTransition, Result, Stage

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)   # 12:00 in Lanzhou


# --- stages -------------------------------------------------------------------------------------

def test_the_four_steps_in_order():
    stage = Stage.PROPOSED
    for operation, expected in [("accept", Stage.DISCUSSING), ("open_vote", Stage.VOTING),
                                ("vote_decided", Stage.DECIDED), ("plan_action", Stage.CARRYING_OUT),
                                ("plan_action", Stage.CARRYING_OUT), ("close", Stage.CLOSED)]:
        stage = rules.next_stage(stage, operation)
        assert stage == expected
    assert [rules.STEP_OF[s] for s in (Stage.PROPOSED, Stage.DISCUSSING, Stage.VOTING, Stage.CARRYING_OUT)] == [1, 2, 3, 4]


def test_a_failed_vote_goes_back_to_discussion_and_may_be_voted_again():
    assert rules.next_stage(Stage.VOTING, "vote_failed") == Stage.DISCUSSING
    assert rules.next_stage(Stage.DISCUSSING, "open_vote") == Stage.VOTING


@pytest.mark.parametrize("stage,operation", [
    (Stage.PROPOSED, "open_vote"),        # no vote before the topic is accepted
    (Stage.PROPOSED, "close"),
    (Stage.DISCUSSING, "accept"),         # accepted twice
    (Stage.DISCUSSING, "plan_action"),    # no actions before a decision
    (Stage.VOTING, "open_vote"),          # two votes at once
    (Stage.VOTING, "close"),              # not while the vote is open
    (Stage.VOTING, "plan_action"),
    (Stage.DECIDED, "open_vote"),
    (Stage.CLOSED, "close"),              # closed twice
    (Stage.CLOSED, "accept"),
    (Stage.CLOSED, "plan_action"),
    (Stage.ANSWERED, "accept"),           # handled as a request: over
    (Stage.ANSWERED, "open_vote"),
])
def test_illegal_transitions_are_refused(stage, operation):
    assert not rules.can(stage, operation)
    with pytest.raises(IllegalTransition):
        rules.next_stage(stage, operation)


def test_unknown_operation_and_stage_are_refused():
    with pytest.raises(IllegalTransition):
        rules.next_stage(Stage.DISCUSSING, "delete")
    assert not rules.can("archived", "accept")


def test_final_stages_take_no_operation():
    for stage in rules.FINAL_STAGES:
        assert not any(rules.can(stage, op) for op in rules.TRANSITIONS)


# --- eligibility ----------------------------------------------------------------------------------

def test_eligibility_by_community_and_compound():
    assert rules.eligible("zjz", None, "zjz", None)
    assert rules.eligible("zjz", "井儿街", "zjz", None)          # a compound resident votes on community topics
    assert rules.eligible("zjz", "井儿街", "zjz", "井儿街")
    assert not rules.eligible("zjz", None, "zjz", "井儿街")      # compound not declared
    assert not rules.eligible("zjz", "别的院", "zjz", "井儿街")
    assert not rules.eligible("cjx", "井儿街", "zjz", "井儿街")  # another community, same compound name
    assert not rules.eligible(None, None, "zjz", None)


# --- counting and quorum -----------------------------------------------------------------------

def test_tally_counts_each_choice():
    assert rules.tally([0, 1, 1, 2, 1], 3) == (1, 3, 1)
    assert rules.tally([], 2) == (0, 0)
    with pytest.raises(ValueError):
        rules.tally([0, 2], 2)
    with pytest.raises(ValueError):
        rules.tally([-1], 2)


def test_plurality_with_quorum_met():
    outcome = rules.decide((7, 3), quorum=10)
    assert outcome.result == Result.DECIDED and outcome.winner == 0 and outcome.turnout == 10


def test_quorum_exactly_met_decides_and_one_short_does_not():
    assert rules.decide((3, 2), quorum=5).result == Result.DECIDED
    short = rules.decide((3, 1), quorum=5)
    assert short.result == Result.NO_QUORUM and short.winner is None and short.turnout == 4


def test_no_votes_is_no_quorum_even_with_a_quorum_of_one():
    assert rules.decide((0, 0, 0), quorum=1).result == Result.NO_QUORUM


def test_quorum_of_one_single_vote_decides():
    outcome = rules.decide((0, 1), quorum=1)
    assert outcome.result == Result.DECIDED and outcome.winner == 1


def test_a_tie_for_first_decides_nothing_but_a_tie_below_does_not_matter():
    assert rules.decide((4, 4, 1), quorum=3).result == Result.TIE
    assert rules.decide((5, 2, 2), quorum=3).winner == 0


def test_quorum_below_one_is_a_bug():
    with pytest.raises(ValueError):
        rules.decide((1, 0), quorum=0)


def test_ballots_only_before_close():
    closes = NOW + timedelta(hours=1)
    assert rules.can_cast(closes, False, NOW)
    assert not rules.can_cast(closes, False, closes)          # the closing instant is already closed
    assert not rules.can_cast(closes, True, NOW)


# --- parsing ------------------------------------------------------------------------------------

def test_options_one_per_line_or_separated():
    assert rules.parse_options("同意改造\n暂缓改造") == ["同意改造", "暂缓改造"]
    assert rules.parse_options("A / B / C") == ["A", "B", "C"]
    assert rules.parse_options("- 赞成\n- 反对\n\n") == ["赞成", "反对"]


@pytest.mark.parametrize("text", ["只有一个", "", "a\na", "A\na", "\n".join(str(i) for i in range(7)), "x" * 41 + "\ny"])
def test_bad_options_are_refused(text):
    assert rules.parse_options(text) is None


@pytest.mark.parametrize("value,expected", [("5", 5), ("1", 1), ("10000", 10000), ("0", None), ("10001", None),
                                            ("-1", None), ("abc", None), ("999999", None)])
def test_quorum_bounds(value, expected):
    assert rules.parse_quorum(value) == expected


def test_hours_only_from_the_offered_choices():
    assert rules.parse_hours("72") == 72
    assert rules.parse_hours("5") is None and rules.parse_hours("x") is None


def test_meeting_time_and_place_in_local_time():
    when, place = rules.parse_meeting("2026-12-05 19:00 社区议事厅", "Asia/Shanghai", NOW)
    assert when == datetime(2026, 12, 5, 11, 0, tzinfo=UTC) and place == "社区议事厅"
    when, _ = rules.parse_meeting("12月5日 19点 井儿街10号院", "Asia/Shanghai", NOW)
    assert when == datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    when, _ = rules.parse_meeting("1-10 09:30 会议室", "Asia/Shanghai", NOW)   # no year: the next January
    assert when.year == 2027


@pytest.mark.parametrize("text,error", [
    ("明天晚上", "format"), ("2026-13-01 19:00 厅", "format"), ("2026-02-30 19:00 厅", "format"),
    ("2026-11-30 19:00 厅", "past"), ("2026-12-01 11:00 厅", "past"), ("2027-12-01 19:00 厅", "far"),
    ("2026-12-05 19:00", "place"), ("2026-12-05 19:00 " + "厅" * 101, "place"),
])
def test_bad_meetings_are_refused_with_a_reason(text, error):
    assert rules.parse_meeting(text, "Asia/Shanghai", NOW) == error


def test_action_with_owner_and_due_date():
    today = date(2026, 12, 1)
    assert rules.parse_action("更换上下水管 / 街道物管办 / 2026-12-20", today) == ("更换上下水管", "街道物管办", date(2026, 12, 20))
    assert rules.parse_action("楼顶防水\n城市供水集团\n2026年12月31日", today)[2] == date(2026, 12, 31)
    assert rules.parse_action("x / y", today) == "format"
    assert rules.parse_action("x / y / 下周", today) == "date"
    assert rules.parse_action("x / y / 2026-02-30", today) == "date"
    assert rules.parse_action("x / y / 2026-11-30", today) == "past"
    assert rules.parse_action("x / y / 2029-01-01", today) == "far"
    assert rules.parse_action("x" * 101 + " / y / 2026-12-20", today) == "long"


def test_meeting_reminder_window_is_the_day_before():
    start = NOW + timedelta(hours=30)
    assert not rules.reminder_due(start, NOW)
    assert rules.reminder_due(start, NOW + timedelta(hours=6))
    assert rules.reminder_due(start, start - timedelta(minutes=1))
    assert not rules.reminder_due(start, start)


def test_support_threshold_and_ratings():
    assert rules.reaches_threshold(5, 5) and not rules.reaches_threshold(4, 5)
    assert [rules.valid_rating(v) for v in ("1", "5", "0", "6", "x", "")] == [1, 5, None, None, None, None]
