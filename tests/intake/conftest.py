"""Shared fixtures for the intake classifier tests: a tiny hand-built model, so
rule and decision logic can be tested without the shipped artefact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.intake.classifier.features import FEATURES_VERSION
from services.intake.classifier.model import META_FILE, MODEL_FILE
from shared.taxonomy import LABELS


def write_model(directory, vocab_weights: dict[str, dict[str, float]], *, urgent: dict[str, float] | None = None,
                threshold: float = 0.6, urgent_threshold: float = 0.5, temperature: float = 1.0) -> None:
    """A linear model whose weights are given per feature and label (idf = 1)."""
    vocab = list(vocab_weights)
    weights = np.zeros((len(vocab), len(LABELS) + 1), dtype=np.float16)
    for j, gram in enumerate(vocab):
        for label, w in vocab_weights[gram].items():
            weights[j, LABELS.index(label)] = w
        weights[j, len(LABELS)] = (urgent or {}).get(gram, 0.0)
    bias = np.zeros(len(LABELS) + 1, dtype=np.float32)
    bias[len(LABELS)] = -3.0
    np.savez_compressed(
        directory / MODEL_FILE,
        vocab=np.frombuffer("\n".join(vocab).encode(), dtype=np.uint8),
        idf=np.ones(len(vocab), dtype=np.float32),
        weights=weights,
        bias=bias,
    )
    meta = {"labels": list(LABELS), "features_version": FEATURES_VERSION, "temperature": temperature,
            "threshold": threshold, "urgent_threshold": urgent_threshold}
    (directory / META_FILE).write_text(json.dumps(meta))


@pytest.fixture
def tiny_model_dir(tmp_path):
    """"灯" → repair (strongly), "书" → books, "冰" → fridge/other split, "火" → urgent score."""
    write_model(tmp_path, {
        "灯": {"repair": 12.0},
        "书": {"books": 12.0},
        "冰": {"fridge": 3.0, "other": 2.6, "books": 2.0},
        "火": {"safety": 6.0},
    }, urgent={"火": 10.0})
    return tmp_path


@pytest.fixture
def write_rules(tmp_path):
    def _write(text: str, name: str = "rules.yaml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return _write
