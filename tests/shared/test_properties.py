"""Property-based tests (hypothesis) of the functions every piece of user input goes through."""

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.requests import parse_number
from shared.domain.similarity import similarity
from shared.domain.text import MAX_REQUEST_CHARS, clean_text, has_words
from shared.flows import actions
from shared.flows.tasks import parse_hours

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=5000)


@settings(max_examples=300)
@given(ANY_TEXT)
def test_clean_text_never_keeps_invisible_or_control_characters(text):
    cleaned = clean_text(text)
    assert cleaned == cleaned.strip()
    assert not any(ch in cleaned for ch in "\u200b\u200d\u202e\ufeff\x00\x07")
    assert clean_text(cleaned) == cleaned  # idempotent
    assert len(cleaned) <= len(text)
    has_words(cleaned)  # total: never raises


@settings(max_examples=500)
@given(st.one_of(st.none(), ANY_TEXT, st.from_regex(r"[a-z]{1,8}(:[A-Za-z0-9_\-]{0,40}){0,4}", fullmatch=True)))
def test_action_parsing_is_total_and_strict(data):
    parsed = actions.parse(data)
    if parsed is not None:
        assert parsed.verb in actions.VERBS and len(parsed.args) == actions.VERBS[parsed.verb]
        assert actions.make(parsed.verb, *parsed.args) == data  # only canonical strings are accepted


@given(ANY_TEXT)
def test_number_parsing_is_total(text):
    parsed = parse_number(text)
    if parsed is not None:
        assert parsed[0].isalpha() and 1000 <= parsed[1] <= 9999


@given(ANY_TEXT, ANY_TEXT)
def test_similarity_is_bounded_and_symmetric(a, b):
    value = similarity(a, b)
    assert 0.0 <= value <= 1.0 and value == similarity(b, a)


@given(ANY_TEXT)
def test_hours_parsing_is_total(text):
    value = parse_hours(text)
    assert value is None or value >= 0


def test_limit_is_telegrams():
    assert MAX_REQUEST_CHARS == 4096
