"""`linju intake evaluate PATH.jsonl`: the figures SPEC §6 sets bars on.

Pure Python + the classifier (no scikit-learn), so it measures exactly what a
worker runs. Conventions for empty denominators: a precision with nothing
predicted is 1.0 when there was nothing to find (no false alarms) and 0.0
otherwise; a recall with nothing to find is 1.0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shared.taxonomy import LABELS

if TYPE_CHECKING:
    from services.intake.classifier import Classifier


def read_examples(path: Path) -> list[dict]:
    """Lines of {"text": str, "label": str, "urgent": bool}; blank lines are skipped."""
    examples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise ValueError(f"{path}:{number}: needs a string field 'text'")
            if item.get("label") not in LABELS:
                raise ValueError(f"{path}:{number}: field 'label' {item.get('label')!r} is not one of {', '.join(LABELS)}")
            if not isinstance(item.get("urgent", False), bool):
                raise ValueError(f"{path}:{number}: field 'urgent' must be true or false")
            examples.append({"text": item["text"], "label": item["label"], "urgent": bool(item.get("urgent", False))})
    return examples


def _ratio(num: int, den: int, empty: float) -> float:
    return num / den if den else empty


def compute_report(examples: list[dict], predictions: list, seconds: float) -> dict:
    """The report of `evaluate` from gold examples and Classification objects."""
    n = len(examples)
    confusion = {t: {p: 0 for p in LABELS} for t in LABELS}
    correct = auto = auto_correct = 0
    urgent_tp = urgent_fp = urgent_fn = 0
    for gold, pred in zip(examples, predictions):
        confusion[gold["label"]][pred.label] += 1
        hit = gold["label"] == pred.label
        correct += hit
        if pred.decided:
            auto += 1
            auto_correct += hit
        if pred.urgent and gold["urgent"]:
            urgent_tp += 1
        elif pred.urgent:
            urgent_fp += 1
        elif gold["urgent"]:
            urgent_fn += 1
    per_label = {}
    f1s = []
    for label in LABELS:
        tp = confusion[label][label]
        support = sum(confusion[label].values())
        predicted = sum(confusion[t][label] for t in LABELS)
        precision = _ratio(tp, predicted, 1.0 if support == 0 else 0.0)
        recall = _ratio(tp, support, 1.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                            "f1": round(f1, 4), "support": support}
        if support or predicted:  # like scikit-learn: labels absent from both sides do not count
            f1s.append(f1)
    return {
        "n": n,
        "accuracy": round(_ratio(correct, n, 0.0), 4),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "urgent_recall": round(_ratio(urgent_tp, urgent_tp + urgent_fn, 1.0), 4),
        "urgent_precision": round(_ratio(urgent_tp, urgent_tp + urgent_fp, 1.0 if urgent_fn == 0 else 0.0), 4),
        "auto_rate": round(_ratio(auto, n, 0.0), 4),
        "auto_precision": round(_ratio(auto_correct, auto, 1.0), 4),
        "per_label": per_label,
        "confusion": confusion,
        "ms_per_message": round(1000.0 * seconds / n, 4) if n else 0.0,
    }


def evaluate(path: Path, classifier: Classifier | None = None) -> dict:
    """Classify every line of a JSONL file and report accuracy, macro-F1,
    urgency recall/precision, the auto-decided share and its precision,
    per-label figures, the confusion matrix and the time per message."""
    if classifier is None:
        from services.intake.classifier import load_classifier

        classifier = load_classifier()
    examples = read_examples(Path(path))
    start = time.perf_counter()
    predictions = [classifier.classify(item["text"]) for item in examples]
    seconds = time.perf_counter() - start
    return compute_report(examples, predictions, seconds)


def format_report(report: dict) -> str:
    """The report as a readable table (what `linju intake evaluate` prints without --json)."""
    lines = [
        f"messages          {report['n']}",
        f"accuracy          {report['accuracy']:.4f}",
        f"macro F1          {report['macro_f1']:.4f}   (bar ≥ 0.90)",
        f"urgent recall     {report['urgent_recall']:.4f}   (bar = 1.00)",
        f"urgent precision  {report['urgent_precision']:.4f}   (bar ≥ 0.80)",
        f"decided (auto)    {report['auto_rate']:.4f}   (bar ≥ 0.80)",
        f"auto precision    {report['auto_precision']:.4f}   (bar ≥ 0.97)",
        f"ms per message    {report['ms_per_message']:.4f}",
        "",
        f"{'label':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
    ]
    for label, row in report["per_label"].items():
        lines.append(f"{label:<14}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9}")
    labels = list(report["confusion"])
    short = [label[:5] for label in labels]
    lines += ["", "confusion (rows: true label, columns: predicted)",
              f"{'':<14}" + "".join(f"{s:>6}" for s in short)]
    for label in labels:
        row = report["confusion"][label]
        if sum(row.values()) == 0:
            continue
        lines.append(f"{label:<14}" + "".join(f"{(row[p] or '.'):>6}" for p in labels))
    return "\n".join(lines)
