import re

import pytest

from shared.flows import actions
from shared.i18n import catalogue, t
from shared.taxonomy import LABELS

PLACEHOLDER = re.compile(r"{(\w+)")


def test_both_locales_have_the_same_keys_and_placeholders():
    zh, en = catalogue("zh"), catalogue("en")
    assert set(zh) == set(en)
    for key in zh:
        assert set(PLACEHOLDER.findall(zh[key])) <= set(PLACEHOLDER.findall(en[key])) | {"month", "day", "hour", "minute", "month_name"}, key


def test_every_label_and_status_has_a_name():
    for label in LABELS:
        assert t("zh", f"category.{label}") and t("en", f"category.{label}")


def test_unknown_locale_falls_back_to_chinese():
    assert t("fr", "menu.report") == t("zh", "menu.report")


@pytest.mark.parametrize("data", ["comm:zjy", "consent:yes", "cat:12:repair", "menu:report"])
def test_well_formed_actions_parse(data):
    parsed = actions.parse(data)
    assert parsed is not None and ":".join([parsed.verb, *parsed.args]) == data


@pytest.mark.parametrize("data", [
    None, "", "comm", "comm:", "comm:zjy:extra", "unknown:1", "cat:12", "cat:1;DROP TABLE:x",
    "comm:" + "z" * 70, "comm:\u200bzjy", "lang:中文", "cat:../../etc:repair",
])
def test_forged_or_malformed_actions_are_refused(data):
    assert actions.parse(data) is None


def test_make_refuses_what_parse_would_refuse():
    with pytest.raises(ValueError):
        actions.make("comm", "a" * 80)
    with pytest.raises(ValueError):
        actions.make("nope", "x")
