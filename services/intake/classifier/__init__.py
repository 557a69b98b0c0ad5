"""Intake classifier: label (SPEC §3.1 taxonomy), urgency and a calibrated confidence.

    from services.intake.classifier import load_classifier
    result = load_classifier().classify("楼道灯坏了好几天了")
    result.label, result.urgent, result.confidence, result.decided, result.choices()

Inference uses numpy and the standard library only (`model.py`, `features.py`,
`rules.py`); scikit-learn is imported by `train()` alone. How the model and the
operator rules are combined is documented in docs/intake.md and at the top of
config/intake_rules.yaml; in short:

1. the model gives calibrated probabilities for the 14 labels and an urgency score;
2. label: the first matching rule that sets a label wins (decided=True);
   otherwise the likeliest label, decided when its probability >= the threshold;
3. urgent: any matching `urgent: true` rule → urgent; else any matching
   `urgent: false` rule → not urgent; else the urgency model's score >= its threshold;
4. confidence is always the model's calibrated probability of the final label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.intake.classifier.evaluation import evaluate, format_report
from services.intake.classifier.features import normalize
from services.intake.classifier.model import LinearModel, ModelError
from services.intake.classifier.rules import IntakeRulesError, RuleSet, load_rules
from shared.taxonomy import LABELS, MENU_LABEL

PACKAGE_DIR = Path(__file__).resolve().parent
INTAKE_DIR = PACKAGE_DIR.parent
DEFAULT_MODEL_DIR = INTAKE_DIR / "model"
DEFAULT_DATA_DIR = INTAKE_DIR / "data"
DEFAULT_RULES_PATH = Path(__file__).resolve().parents[3] / "config" / "intake_rules.yaml"

__all__ = [
    "Classification", "Classifier", "IntakeClassifier", "IntakeRulesError", "ModelError",
    "load_classifier", "train", "evaluate", "format_report",
    "DEFAULT_MODEL_DIR", "DEFAULT_DATA_DIR", "DEFAULT_RULES_PATH",
]


@dataclass(frozen=True)
class Classification:
    label: str                      # one of LABELS
    urgent: bool
    confidence: float               # calibrated probability of `label`, 0..1
    ranked: tuple[tuple[str, float], ...]   # all labels, best first, with probabilities
    decided: bool                   # confident enough, or forced by a rule; False → ask the resident
    rule: str | None = None         # id of the config rule(s) that forced label/urgency, comma-separated

    def choices(self, n: int = 3) -> list[str]:
        """The n likeliest labels, excluding "other" (the bot offers "other" itself).
        A label forced by a rule comes first."""
        out: list[str] = []
        if self.rule is not None and self.label != MENU_LABEL:
            out.append(self.label)
        for label, _ in self.ranked:
            if len(out) >= n:
                break
            if label != MENU_LABEL and label not in out:
                out.append(label)
        return out[:n]


class Classifier(Protocol):
    def classify(self, text: str) -> Classification: ...


class IntakeClassifier:
    """The shipped classifier: the exported linear model plus the operator rules."""

    def __init__(self, model: LinearModel, rules: RuleSet | None = None):
        if tuple(model.labels) != LABELS:
            raise ModelError(f"the model's labels {model.labels} are not the taxonomy's {LABELS}; retrain")
        self.model = model
        self.rules = rules or RuleSet()
        self.threshold = (self.rules.confidence_threshold if self.rules.confidence_threshold is not None
                          else model.threshold)
        self.urgent_threshold = (self.rules.urgent_threshold if self.rules.urgent_threshold is not None
                                 else model.urgent_threshold)

    def classify(self, text: str) -> Classification:
        text = text or ""
        scores = self.model.score(text)
        probabilities = [float(p) for p in scores.probabilities]
        order = sorted(range(len(LABELS)), key=probabilities.__getitem__, reverse=True)
        ranked = tuple((LABELS[i], probabilities[i]) for i in order)
        outcome = self.rules.apply(normalize(text)) if self.rules.rules else None

        if outcome is not None and outcome.label is not None:
            label, decided = outcome.label, True
        else:
            label = ranked[0][0]
            decided = ranked[0][1] >= self.threshold
        if outcome is not None and outcome.urgent is not None:
            urgent = outcome.urgent
        else:
            urgent = scores.urgent_probability >= self.urgent_threshold

        rule_ids: list[str] = []
        if outcome is not None:
            if outcome.label_rule:
                rule_ids.append(outcome.label_rule)
            if outcome.urgent_rule and outcome.urgent_rule not in rule_ids:
                rule_ids.append(outcome.urgent_rule)
        return Classification(
            label=label,
            urgent=urgent,
            confidence=probabilities[LABELS.index(label)],
            ranked=ranked,
            decided=decided,
            rule=",".join(rule_ids) or None,
        )


def load_classifier(model_dir: Path | None = None, rules_path: Path | None = None) -> Classifier:
    """Load the model artefact and the operator rules (both validated).

    Defaults: services/intake/model/ and config/intake_rules.yaml at the repo
    root. A missing default rules file means "no rules"; a missing explicit
    `rules_path`, a bad rules file or a missing model raises with a clear message.
    """
    model = LinearModel.load(Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR)
    if rules_path is None:
        rules = load_rules(DEFAULT_RULES_PATH) if DEFAULT_RULES_PATH.exists() else RuleSet()
    else:
        rules = load_rules(Path(rules_path))
    return IntakeClassifier(model, rules)


def train(data_dir: Path | None = None, model_dir: Path | None = None) -> dict:
    """Rebuild the model from `data_dir`/train.jsonl (+ data_dir/extra/*.jsonl) into
    `model_dir`; returns a small summary. Imports scikit-learn (training only)."""
    from services.intake.classifier.training import train as _train

    return _train(Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR,
                  Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR)
