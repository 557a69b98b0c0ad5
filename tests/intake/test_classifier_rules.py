"""Operator rules: matching, forcing label and urgency, and validation messages."""

from __future__ import annotations

import pytest

from services.intake.classifier import DEFAULT_RULES_PATH, IntakeRulesError, load_classifier
from services.intake.classifier.features import normalize
from services.intake.classifier.rules import load_rules, parse_rules


def apply(rules, text):
    return rules.apply(normalize(text))


def test_phrase_matching_is_normalised_and_whole_word_for_latin():
    rules = parse_rules({"rules": [
        {"id": "gas", "any": ["煤气味", "gas leak"], "urgent": True},
        {"id": "fire-en", "any": ["fire"], "urgent": True},
    ]})
    assert apply(rules, "楼道里有煤气味").urgent is True
    assert apply(rules, "楼道里有煤氣味").urgent is True          # traditional
    assert apply(rules, "煤气 味好大").urgent is True               # a space between Chinese characters is allowed
    assert apply(rules, "GAS LEAK in building 3").urgent is True    # case
    assert apply(rules, "Ｇａｓ　ｌｅａｋ").urgent is True           # full-width
    assert apply(rules, "firefox crashed").urgent is None           # whole words only
    assert apply(rules, "fire!").urgent is True


def test_unless_also_whole_and_regex():
    rules = parse_rules({"rules": [
        {"id": "fire", "any": ["着火"], "unless": ["演习", "上次着火"], "urgent": True},
        {"id": "lost", "any": ["走丢"], "also": ["孩子", "老人"], "urgent": True},
        {"id": "hi", "whole": ["你好", "hello"], "label": "other"},
        {"id": "room", "regex": r"\d{3}室", "label": "repair"},
    ]})
    assert apply(rules, "3号楼着火了").urgent is True
    assert apply(rules, "消防演习说着火了往哪跑").urgent is None
    assert apply(rules, "上次着火的事处理完了吗").urgent is None
    assert apply(rules, "孩子走丢了").urgent is True
    assert apply(rules, "狗走丢了").urgent is None
    assert apply(rules, "你好！").label == "other"
    assert apply(rules, "Hello").label == "other"
    assert apply(rules, "你好 楼道灯坏了").label is None
    assert apply(rules, "302室漏水").label == "repair"


def test_first_label_rule_wins_and_urgent_true_beats_false():
    rules = parse_rules({"rules": [
        {"id": "drill", "any": ["演习"], "urgent": False},
        {"id": "a", "any": ["冰箱"], "label": "fridge"},
        {"id": "b", "any": ["冰箱"], "label": "repair"},
        {"id": "fire", "any": ["着火"], "urgent": True},
    ]})
    outcome = apply(rules, "冰箱着火了 不是演习")
    assert (outcome.label, outcome.label_rule) == ("fridge", "a")
    assert (outcome.urgent, outcome.urgent_rule) == (True, "fire")
    outcome = apply(rules, "消防演习什么时候")
    assert (outcome.urgent, outcome.urgent_rule) == (False, "drill")
    assert apply(rules, "你好").urgent is None


@pytest.mark.parametrize("document, field", [
    ({"rules": [{"id": "x", "any": ["a"], "label": "safty"}]}, "field 'label'"),
    ({"rules": [{"id": "x", "any": ["a"], "urgent": "yes"}]}, "field 'urgent'"),
    ({"rules": [{"id": "x", "label": "safety"}]}, "'any', 'whole' or 'regex'"),
    ({"rules": [{"id": "x", "any": ["a"]}]}, "set 'label' and/or 'urgent'"),
    ({"rules": [{"id": "Bad Id", "any": ["a"], "urgent": True}]}, "field 'id'"),
    ({"rules": [{"any": ["a"], "urgent": True}]}, "field 'id'"),
    ({"rules": [{"id": "x", "any": ["a"], "urgent": True}, {"id": "x", "any": ["b"], "urgent": True}]}, "duplicate id"),
    ({"rules": [{"id": "x", "any": [], "urgent": True}]}, "field 'any'"),
    ({"rules": [{"id": "x", "any": ["。。"], "urgent": True}]}, "field 'any'[0]"),
    ({"rules": [{"id": "x", "any": ["a"], "urgent": True, "unles": ["b"]}]}, "unknown field 'unles'"),
    ({"rules": [{"id": "x", "regex": "(", "urgent": True}]}, "field 'regex'"),
    ({"rules": [{"id": "x", "any": ["a"], "also": "", "urgent": True}]}, "field 'also'"),
    ({"rules": "nope"}, "field 'rules'"),
    ({"confidence_threshold": 1.5}, "field 'confidence_threshold'"),
    ({"version": 2}, "field 'version'"),
    ({"rulez": []}, "unknown top-level field 'rulez'"),
])
def test_validation_names_the_field(document, field):
    with pytest.raises(IntakeRulesError) as error:
        parse_rules(document, "config/intake_rules.yaml")
    assert field in str(error.value)
    assert "config/intake_rules.yaml" in str(error.value)


def test_validation_names_the_rule(write_rules):
    path = write_rules("rules:\n  - id: ok\n    any: [a]\n    urgent: true\n  - id: gas-smell\n    any: [煤气味]\n    label: safty\n")
    with pytest.raises(IntakeRulesError, match=r"rules\[1\] \(id 'gas-smell'\): field 'label': 'safty'"):
        load_rules(path)


def test_bad_yaml_and_missing_file(write_rules, tmp_path):
    with pytest.raises(IntakeRulesError, match="not valid YAML"):
        load_rules(write_rules("rules: [\n"))
    with pytest.raises(IntakeRulesError, match="does not exist"):
        load_rules(tmp_path / "nope.yaml")


def test_load_classifier_refuses_invalid_rules(tiny_model_dir, write_rules):
    path = write_rules("rules:\n  - id: x\n    any: [a]\n    label: nope\n")
    with pytest.raises(IntakeRulesError, match="field 'label'"):
        load_classifier(tiny_model_dir, path)


def test_shipped_rules_file_is_valid_and_does_what_it_says():
    rules = load_rules(DEFAULT_RULES_PATH)
    assert len(rules.rules) >= 10
    urgent = ["闻到煤气味了", "3号楼着火了", "楼下冒烟了", "我妈在家摔倒了起不来", "有人在楼下打人",
              "楼道里有人晕倒了", "老公又打我了", "电梯里困人了", "孩子走丢了", "有人在撬门",
              "I smell gas in the stairwell", "there is a fire in building 2", "someone collapsed at the gate"]
    for text in urgent:
        assert apply(rules, text).urgent is True, text
    assert apply(rules, "闻到煤气味了").label == "safety"
    calm = ["上次着火的事处理完了吗", "消防演习什么时候开始", "燃气费在哪交", "电动车在楼道充电 万一着火咋办",
            "楼道灯坏了", "电梯不动了", "水管爆了快来人修", "fire exit is blocked", "我们在投票选楼长",
            "快递运了吗", "天然气没气了", "花坛里全是烟头", "打价格战", "他在偷懒"]
    for text in calm:
        assert apply(rules, text).urgent is not True, text
    assert apply(rules, "消防演习什么时候开始").urgent is False
    assert apply(rules, "你好").label == "other"
