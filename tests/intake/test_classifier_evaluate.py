"""`evaluate` returns exactly the documented JSON shape; `format_report` prints it."""

from __future__ import annotations

import json

import pytest

from services.intake.classifier import Classification, evaluate, format_report
from shared.taxonomy import LABELS

KEYS = {"n", "accuracy", "macro_f1", "urgent_recall", "urgent_precision", "auto_rate", "auto_precision",
        "per_label", "confusion", "ms_per_message"}


class Scripted:
    """Answers from a table: text → (label, urgent, decided)."""

    def __init__(self, answers):
        self.answers = answers

    def classify(self, text):
        label, urgent, decided = self.answers[text]
        ranked = tuple((lab, 0.9 if lab == label else 0.1 / 13) for lab in [label, *[x for x in LABELS if x != label]])
        return Classification(label=label, urgent=urgent, confidence=0.9, ranked=ranked, decided=decided)


def write(tmp_path, rows):
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    return path


def test_report_shape_and_figures(tmp_path):
    rows = [
        {"text": "a", "label": "repair", "urgent": False},
        {"text": "b", "label": "repair", "urgent": False},
        {"text": "c", "label": "safety", "urgent": True},
        {"text": "d", "label": "other", "urgent": False},
    ]
    answers = {"a": ("repair", False, True), "b": ("sanitation", False, False),
               "c": ("safety", True, True), "d": ("other", True, True)}
    report = evaluate(write(tmp_path, rows), Scripted(answers))
    assert set(report) == KEYS
    assert report["n"] == 4
    assert report["accuracy"] == 0.75
    assert report["urgent_recall"] == 1.0
    assert report["urgent_precision"] == 0.5
    assert report["auto_rate"] == 0.75
    assert report["auto_precision"] == 1.0
    assert set(report["per_label"]) == set(LABELS)
    assert set(report["per_label"]["repair"]) == {"precision", "recall", "f1", "support"}
    assert report["per_label"]["repair"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert report["confusion"]["repair"]["sanitation"] == 1
    assert set(report["confusion"]) == set(LABELS)
    # macro over labels seen in truth or predictions: repair .6667, sanitation 0, safety 1, other 1
    assert report["macro_f1"] == pytest.approx((0.6667 + 0 + 1 + 1) / 4, abs=1e-3)
    assert report["ms_per_message"] >= 0.0
    json.dumps(report)  # serialisable as is
    text = format_report(report)
    assert "macro F1" in text and "repair" in text and "confusion" in text


def test_bad_lines_are_reported_with_their_number(tmp_path):
    path = write(tmp_path, [{"text": "a", "label": "repair", "urgent": False}, {"text": "b", "label": "nope"}])
    with pytest.raises(ValueError, match=r"eval.jsonl:2: field 'label'"):
        evaluate(path, Scripted({}))
