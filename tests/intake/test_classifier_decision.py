"""How a Classification is decided: threshold, rules, urgency, choices()."""

from __future__ import annotations

import pytest

from services.intake.classifier import Classification, load_classifier
from shared.taxonomy import LABELS


@pytest.fixture
def classifier(tiny_model_dir):
    return load_classifier(tiny_model_dir, _no_rules(tiny_model_dir))


def _no_rules(directory):
    path = directory / "empty_rules.yaml"
    path.write_text("rules: []\n")
    return path


def test_confident_model_decides(classifier):
    result = classifier.classify("楼道灯坏了")
    assert result.label == "repair"
    assert result.decided is True
    assert result.rule is None
    assert result.confidence == pytest.approx(dict(result.ranked)["repair"])
    assert result.confidence >= 0.6


def test_doubtful_model_asks(classifier):
    result = classifier.classify("冰")
    assert result.label == "fridge"
    assert result.confidence < 0.6
    assert result.decided is False
    assert result.choices() == ["fridge", "books", "mediation"][: len(result.choices())]
    assert "other" not in result.choices(5)


def test_ranked_is_complete_sorted_and_sums_to_one(classifier):
    result = classifier.classify("冰")
    assert sorted(label for label, _ in result.ranked) == sorted(LABELS)
    probabilities = [p for _, p in result.ranked]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_choices_exclude_other_and_respect_n():
    result = Classification(label="other", urgent=False, confidence=0.4, decided=False,
                            ranked=(("other", 0.4), ("fridge", 0.3), ("books", 0.2), ("repair", 0.1)))
    assert result.choices() == ["fridge", "books", "repair"]
    assert result.choices(2) == ["fridge", "books"]
    assert result.choices(1) == ["fridge"]


def test_forced_label_comes_first_in_choices():
    result = Classification(label="youth", urgent=False, confidence=0.1, decided=True, rule="after-school",
                            ranked=(("books", 0.6), ("fridge", 0.3), ("youth", 0.1)))
    assert result.choices() == ["youth", "books", "fridge"]


def test_urgency_from_model_and_threshold(classifier):
    assert classifier.classify("火").urgent is True
    assert classifier.classify("灯").urgent is False


def test_rules_force_label_and_urgency(tiny_model_dir, write_rules):
    path = write_rules(
        "rules:\n"
        "  - id: drill\n    any: [演习]\n    urgent: false\n"
        "  - id: fridge-name\n    any: [爱心冰箱]\n    label: fridge\n"
        "  - id: gas\n    any: [煤气味]\n    label: safety\n    urgent: true\n"
    )
    classifier = load_classifier(tiny_model_dir, path)
    gas = classifier.classify("灯旁边有煤气味")
    assert (gas.label, gas.urgent, gas.decided, gas.rule) == ("safety", True, True, "gas")
    # confidence stays the model's probability of the final label, even when a rule forced it
    assert gas.confidence == pytest.approx(dict(gas.ranked)["safety"])
    drill = classifier.classify("火 演习")
    assert (drill.urgent, drill.rule) == (False, "drill")          # urgent: false silences the model
    assert classifier.classify("火 演习 煤气味").urgent is True      # ...but never an urgent: true rule
    fridge = classifier.classify("冰 爱心冰箱")
    assert (fridge.label, fridge.decided, fridge.rule) == ("fridge", True, "fridge-name")


def test_thresholds_can_be_overridden_in_the_rules_file(tiny_model_dir, write_rules):
    path = write_rules("confidence_threshold: 0.1\nurgent_threshold: 1.0\nrules: []\n")
    classifier = load_classifier(tiny_model_dir, path)
    assert classifier.classify("冰").decided is True
    assert classifier.classify("火").urgent is False


@pytest.mark.parametrize("text", ["", " ", "😀😀😀", "\u200b\u202e", "x" * 10000, "楼道灯" * 3000, "\x00\x01", "ملاحظة"])
def test_odd_input_never_fails(classifier, text):
    result = classifier.classify(text)
    assert result.label in LABELS
    assert 0.0 <= result.confidence <= 1.0


def test_missing_model_is_a_clear_error(tmp_path):
    from services.intake.classifier import ModelError

    with pytest.raises(ModelError, match="linju intake train"):
        load_classifier(tmp_path, _no_rules(tmp_path))
