"""Training (scikit-learn) and export to the numpy artefact that `model.py` applies.

Only `linju intake train` and the tests import this module. Steps:
1. read data/train.jsonl (+ data/extra/*.jsonl, e.g. exported resident feedback);
2. out-of-fold predictions with GroupKFold over template families (a family
   never sits in both the fitting and the scoring part), used to fit the
   temperature (calibration) and to choose the confidence threshold and the
   urgency threshold — the validation split is never used to fit anything;
3. fit TF-IDF (the shared featuriser) + multinomial logistic regression for the
   label and a class-balanced logistic regression for urgency on all data;
4. export vocabulary, idf and weights (float16) to model.npz, the rest to meta.json;
5. if data/valid.jsonl exists, evaluate the exported classifier on it (report only).
"""

from __future__ import annotations

import json
import math
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from services.intake.classifier.features import FEATURES_VERSION, features
from services.intake.classifier.model import META_FILE, MODEL_FILE
from shared.taxonomy import LABELS

# Hyper-parameters (chosen by family-grouped cross-validation on train, see docs/intake.md).
MIN_DF = 2
LABEL_C = 30.0
URGENT_C = 10.0
FOLDS = 5
# The confidence threshold is the lowest at which the OUT-OF-FOLD precision of
# the decided messages reaches this target (the SPEC bar itself). Out-of-fold
# predictions come from models fitted on 4/5 of the data with whole template
# families held out, so they are more pessimistic than the shipped model on
# new text: on the validation split this target yields ~0.99 precision.
AUTO_PRECISION_TARGET = 0.97
# Urgency: rules catch most emergencies; the urgency model catches the rest.
# Its threshold is the lowest score at which the out-of-fold precision of
# (rules OR model) reaches this target, i.e. the most recall the precision bar
# (0.80) allows, with a margin.
URGENT_PRECISION_TARGET = 0.85


def read_training_data(data_dir: Path) -> list[dict]:
    paths = [data_dir / "train.jsonl", *sorted((data_dir / "extra").glob("*.jsonl"))]
    items = []
    for path in paths:
        if not path.exists():
            if path.name == "train.jsonl":
                raise FileNotFoundError(f"{path} is missing; run python services/intake/data/generate.py")
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                item = json.loads(line)
                if item.get("label") not in LABELS or not isinstance(item.get("text"), str):
                    raise ValueError(f"{path}:{number}: needs 'text' and a 'label' from the taxonomy")
                item["urgent"] = bool(item.get("urgent", False))
                item.setdefault("src", f"{path.name}:{zlib.crc32(item['text'].encode()) % 50}")
                items.append(item)
    return items


def make_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=features, sublinear_tf=True, min_df=MIN_DF, norm="l2", dtype=np.float32)


def fit(texts: list[str], labels: np.ndarray, urgent: np.ndarray):
    vectorizer = make_vectorizer()
    x = vectorizer.fit_transform(texts)
    label_model = LogisticRegression(C=LABEL_C, max_iter=3000)
    label_model.fit(x, labels)
    urgent_model = LogisticRegression(C=URGENT_C, max_iter=3000, class_weight="balanced")
    urgent_model.fit(x, urgent)
    return vectorizer, label_model, urgent_model


def _softmax(z: np.ndarray, temperature: float) -> np.ndarray:
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of out-of-fold predictions."""
    best_t, best_nll = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.2), math.log(5.0), 161)):
        p = _softmax(logits, t)[np.arange(len(y)), y]
        nll = -np.log(np.clip(p, 1e-12, 1.0)).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """Lowest threshold at which the precision of the decided messages reaches `target`."""
    order = np.argsort(-confidence)
    cum_precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(cum_precision >= target)[0]
    if len(ok) == 0:
        return 0.99
    k = ok.max()  # the largest decided set that still meets the target
    return float(round(confidence[order][k], 4))


def choose_urgent_threshold(scores: np.ndarray, urgent: np.ndarray, outcomes: list, target: float) -> float:
    """Lowest urgency-model threshold at which (rules OR model) reaches `target` precision."""
    by_rule = np.array([o.urgent is True for o in outcomes])
    silenced = np.array([o.urgent is False for o in outcomes])
    for t in np.round(np.arange(0.01, 0.96, 0.01), 2):
        predicted = by_rule | (~silenced & (scores >= t))
        if predicted.any() and urgent[predicted].mean() >= target:
            return float(t)
    return 0.95


def out_of_fold(texts: list[str], labels: np.ndarray, urgent: np.ndarray, groups: list[str]):
    logits = np.zeros((len(texts), len(LABELS)), dtype=np.float64)
    urgent_scores = np.zeros(len(texts), dtype=np.float64)
    for fit_idx, score_idx in GroupKFold(n_splits=FOLDS).split(texts, labels, groups):
        vectorizer, label_model, urgent_model = fit([texts[i] for i in fit_idx], labels[fit_idx], urgent[fit_idx])
        x = vectorizer.transform([texts[i] for i in score_idx])
        logits[score_idx] = label_model.decision_function(x)
        urgent_scores[score_idx] = urgent_model.predict_proba(x)[:, 1]
    return logits, urgent_scores


def export(vectorizer: TfidfVectorizer, label_model: LogisticRegression, urgent_model: LogisticRegression,
           meta: dict, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab = [None] * len(vectorizer.vocabulary_)
    for gram, j in vectorizer.vocabulary_.items():
        vocab[j] = gram
    if any("\n" in gram for gram in vocab):
        raise ValueError("a feature contains a newline; the featuriser must not produce one")
    # LogisticRegression's classes_ are sorted; reorder columns to the taxonomy order.
    order = [list(label_model.classes_).index(i) for i in range(len(LABELS))]
    weights = np.concatenate([label_model.coef_[order].T, urgent_model.coef_.T], axis=1)
    bias = np.concatenate([label_model.intercept_[order], urgent_model.intercept_])
    np.savez_compressed(
        model_dir / MODEL_FILE,
        vocab=np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8),
        idf=vectorizer.idf_.astype(np.float32),
        weights=weights.astype(np.float16),
        bias=bias.astype(np.float32),
    )
    (model_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def train(data_dir: Path, model_dir: Path, *, rules_path: Path | None = None, evaluate_valid: bool = True) -> dict:
    from services.intake.classifier import DEFAULT_RULES_PATH, load_classifier
    from services.intake.classifier.features import normalize
    from services.intake.classifier.rules import RuleSet, load_rules

    started = time.perf_counter()
    items = read_training_data(data_dir)
    texts = [item["text"] for item in items]
    labels = np.array([LABELS.index(item["label"]) for item in items])
    urgent = np.array([item["urgent"] for item in items], dtype=int)
    groups = [item["src"] for item in items]  # a template family, or one hand-written line and its copies
    rules_file = rules_path if rules_path is not None else DEFAULT_RULES_PATH
    rules = load_rules(rules_file) if rules_file.exists() else RuleSet()

    # 1. out-of-fold scores → calibration and thresholds
    logits, urgent_scores = out_of_fold(texts, labels, urgent, groups)
    temperature = fit_temperature(logits, labels)
    probs = _softmax(logits, temperature)
    predicted = probs.argmax(axis=1)
    outcomes = [rules.apply(normalize(t)) for t in texts]
    # a label forced by a rule is decided whatever the confidence: leave those out of the choice
    free = np.array([o.label is None for o in outcomes])
    confidence = probs.max(axis=1)
    threshold = choose_threshold(confidence[free], (predicted == labels)[free], AUTO_PRECISION_TARGET)
    urgent_threshold = choose_urgent_threshold(urgent_scores, urgent, outcomes, URGENT_PRECISION_TARGET)
    oof_final = np.array([LABELS.index(o.label) if o.label else p for o, p in zip(outcomes, predicted)])
    oof_decided = np.array([o.label is not None or c >= threshold for o, c in zip(outcomes, confidence)])
    oof_urgent = np.array([o.urgent if o.urgent is not None else s >= urgent_threshold
                           for o, s in zip(outcomes, urgent_scores)])
    oof = {
        "accuracy": round(float((oof_final == labels).mean()), 4),
        "auto_rate": round(float(oof_decided.mean()), 4),
        "auto_precision": round(float((oof_final == labels)[oof_decided].mean()), 4),
        "urgent_recall": round(float(oof_urgent[urgent == 1].mean()), 4) if urgent.any() else 1.0,
        "urgent_precision": round(float(urgent[oof_urgent].mean()), 4) if oof_urgent.any() else 1.0,
    }

    # 2. final model on everything
    vectorizer, label_model, urgent_model = fit(texts, labels, urgent)
    meta = {
        "labels": list(LABELS),
        "features_version": FEATURES_VERSION,
        "temperature": round(temperature, 4),
        "threshold": threshold,
        "urgent_threshold": round(urgent_threshold, 4),
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training": {
            "messages": len(items),
            "urgent": int(urgent.sum()),
            "per_label": {label: int((labels == i).sum()) for i, label in enumerate(LABELS)},
            "vocabulary": len(vectorizer.vocabulary_),
            "min_df": MIN_DF, "label_C": LABEL_C, "urgent_C": URGENT_C,
            "auto_precision_target": AUTO_PRECISION_TARGET,
            "urgent_precision_target": URGENT_PRECISION_TARGET,
            "out_of_fold": oof,
        },
    }
    export(vectorizer, label_model, urgent_model, meta, model_dir)
    summary = {
        "messages": len(items),
        "vocabulary": len(vectorizer.vocabulary_),
        "temperature": meta["temperature"],
        "threshold": threshold,
        "urgent_threshold": meta["urgent_threshold"],
        "out_of_fold": oof,
        "model_bytes": (model_dir / MODEL_FILE).stat().st_size,
        "seconds": round(time.perf_counter() - started, 1),
    }
    valid_path = data_dir / "valid.jsonl"
    if evaluate_valid and valid_path.exists():
        from services.intake.classifier.evaluation import evaluate

        report = evaluate(valid_path, load_classifier(model_dir, rules_file if rules_file.exists() else None))
        summary["valid"] = {k: report[k] for k in ("n", "accuracy", "macro_f1", "urgent_recall",
                                                   "urgent_precision", "auto_rate", "auto_precision")}
    return summary
