"""The exported numpy model reproduces scikit-learn exactly (up to float16 weights),
and the inference path never imports scikit-learn or scipy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from services.intake.classifier import DEFAULT_DATA_DIR, DEFAULT_MODEL_DIR
from services.intake.classifier.model import LinearModel
from shared.taxonomy import LABELS

pytest.importorskip("sklearn")


def _sample(path, n):
    with open(path, encoding="utf-8") as handle:
        items = [json.loads(line) for line in handle if line.strip()]
    return items[:n]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from services.intake.classifier import training

    items = _sample(DEFAULT_DATA_DIR / "train.jsonl", 2500)
    texts = [item["text"] for item in items]
    labels = np.array([LABELS.index(item["label"]) for item in items])
    urgent = np.array([item["urgent"] for item in items], dtype=int)
    vectorizer, label_model, urgent_model = training.fit(texts, labels, urgent)
    directory = tmp_path_factory.mktemp("model")
    meta = {"labels": list(LABELS), "features_version": 1, "temperature": 1.0, "threshold": 0.5, "urgent_threshold": 0.5}
    from services.intake.classifier.features import FEATURES_VERSION

    meta["features_version"] = FEATURES_VERSION
    training.export(vectorizer, label_model, urgent_model, meta, directory)
    return vectorizer, label_model, urgent_model, LinearModel.load(directory)


def test_features_are_identical(small_model):
    vectorizer, _, _, model = small_model
    for item in _sample(DEFAULT_DATA_DIR / "valid.jsonl", 300):
        row = vectorizer.transform([item["text"]])
        idx, values = model.vector(item["text"])
        expected = dict(zip(row.indices.tolist(), row.data.tolist()))
        got = dict(zip(idx.tolist(), values.tolist()))
        assert expected.keys() == got.keys(), item["text"]
        for j, value in expected.items():
            assert got[j] == pytest.approx(value, rel=1e-5, abs=1e-6)


def test_probabilities_match_sklearn(small_model):
    vectorizer, label_model, urgent_model, model = small_model
    items = _sample(DEFAULT_DATA_DIR / "valid.jsonl", 400)
    x = vectorizer.transform([item["text"] for item in items])
    expected = label_model.predict_proba(x)          # columns in classes_ order = taxonomy indices
    expected_urgent = urgent_model.predict_proba(x)[:, 1]
    same_argmax = 0
    for i, item in enumerate(items):
        scores = model.score(item["text"])
        assert np.abs(scores.probabilities - expected[i]).max() < 0.02, item["text"]
        assert abs(scores.urgent_probability - expected_urgent[i]) < 0.02, item["text"]
        same_argmax += int(scores.probabilities.argmax() == expected[i].argmax())
    assert same_argmax >= 0.99 * len(items)


def test_inference_does_not_import_sklearn_or_scipy():
    code = (
        "import sys\n"
        "from services.intake.classifier import load_classifier\n"
        "c = load_classifier(); c.classify('楼道灯坏了')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'jieba', 'joblib'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_shipped_artefact_is_small_and_consistent():
    meta = json.loads((DEFAULT_MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    assert meta["labels"] == list(LABELS)
    assert 0.0 < meta["threshold"] < 1.0
    assert 0.0 < meta["urgent_threshold"] < 1.0
    assert (DEFAULT_MODEL_DIR / "model.npz").stat().st_size < 5_000_000
