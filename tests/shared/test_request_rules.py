import pytest

from shared.domain.requests import (
    RequestStatus,
    TransitionError,
    allowed_sources,
    can_transition,
    check_transition,
    format_number,
    parse_number,
)


def test_number_format_and_parse_round_trip():
    assert format_number("zjy", 2026, 42) == "ZJY-2026-00042"
    assert parse_number("zjy-2026-00042 ") == ("zjy", 2026, 42)
    assert parse_number("ZJY-2026-123456") == ("zjy", 2026, 123456)


@pytest.mark.parametrize("bad", ["", "ZJY-26-00042", "ZJY202600042", "Z-2026-00042", "ZJY-2026-42", "DROP TABLE"])
def test_parse_rejects_what_is_not_a_number(bad):
    assert parse_number(bad) is None


def test_sequence_starts_at_one():
    with pytest.raises(ValueError):
        format_number("cjx", 2026, 0)


def test_lifecycle():
    assert can_transition("received", "routed")
    assert can_transition("received", "needs_category")
    assert can_transition("needs_category", "routed")
    assert can_transition("resolved", "in_progress")  # "not solved" reopens
    assert not can_transition("closed", "routed")
    assert not can_transition("withdrawn", "in_progress")
    assert not can_transition("received", "resolved")
    with pytest.raises(TransitionError):
        check_transition("closed", "received")


def test_allowed_sources_match_transitions():
    for target in RequestStatus:
        for source in RequestStatus:
            assert (source in allowed_sources(target)) == can_transition(source, target)
