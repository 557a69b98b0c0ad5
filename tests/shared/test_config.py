import pytest

from shared.config import ConfigError, parse_communities
from shared.settings import REPO_ROOT
from shared.taxonomy import LABELS

TEXT = (REPO_ROOT / "config" / "communities.yaml").read_text(encoding="utf-8")


def test_the_shipped_file_has_the_five_communities(config):
    assert config.codes == ["cjx", "zjy", "nsm", "yjy", "zjz"]
    assert config.team_name("cjx", "mediation", "zh") == "毛大姐调解室"
    assert config.team_name("zjz", "mediation", "zh") == "调解组"
    assert config.community("zjy").fridges[0].capacity_items > 0
    assert config.community("zjy").book_house is not None
    for label in LABELS:
        config.route("nsm", label)  # every label routes in every community


def _line_of(fragment: str) -> int:
    return next(i for i, line in enumerate(TEXT.splitlines(), start=1) if fragment in line)


def test_a_bad_value_names_line_and_field():
    broken = TEXT.replace("capacity_items: 60", "capacity_items: -5")
    with pytest.raises(ConfigError) as error:
        parse_communities(broken)
    message = str(error.value)
    assert f"line {_line_of('capacity_items: 60')}" in message
    assert "communities.1.fridges.0.capacity_items" in message


def test_an_unknown_field_is_refused_with_its_line():
    broken = TEXT.replace("    staff_chat_id: -1001000000301", "    staf_chat_id: -1001000000301")
    with pytest.raises(ConfigError) as error:
        parse_communities(broken)
    assert "staf_chat_id" in str(error.value)
    assert f"line {_line_of('staff_chat_id: -1001000000301')}" in str(error.value)


def test_routing_must_cover_every_label():
    broken = TEXT.replace("    books:        {redirect: books}\n", "")
    with pytest.raises(ConfigError, match="missing: books"):
        parse_communities(broken)


def test_unknown_team_and_broken_yaml():
    with pytest.raises(ConfigError, match="unknown team 'plumbers'"):
        parse_communities(TEXT.replace("repair:       {team: property,", "repair:       {team: plumbers,"))
    with pytest.raises(ConfigError, match="line"):
        parse_communities(TEXT + "\n  - code: [unclosed\n")
