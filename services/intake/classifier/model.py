"""The exported linear model, applied with numpy only (no scikit-learn, no scipy).

Artefact layout (`services/intake/model/`):
  model.npz   vocab (UTF-8, "\\n"-joined n-grams), idf (float32, V), weights
              (float16, V × (K+1): K label columns then one urgency column),
              bias (float32, K+1)
  meta.json   labels, temperature, confidence threshold, urgency threshold,
              featuriser version, training summary

Scoring reproduces scikit-learn's TfidfVectorizer(sublinear_tf=True, norm="l2")
followed by the linear layers of LogisticRegression, on the features of
`features.py`: x_j = (1 + ln count_j) · idf_j, x ← x / ‖x‖, z = x·W + b.
Label probabilities are softmax(z[:K] / temperature); urgency is sigmoid(z[K]).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.intake.classifier.features import FEATURES_VERSION, features

MODEL_FILE = "model.npz"
META_FILE = "meta.json"


class ModelError(RuntimeError):
    """The model artefact is missing, damaged or was built for another featuriser."""


@dataclass
class Scores:
    probabilities: np.ndarray  # (K,) calibrated label probabilities, in `labels` order
    urgent_probability: float


class LinearModel:
    def __init__(self, vocab: list[str], idf: np.ndarray, weights: np.ndarray, bias: np.ndarray, meta: dict):
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.meta = meta
        self.temperature = float(meta.get("temperature", 1.0))
        self.threshold = float(meta["threshold"])
        self.urgent_threshold = float(meta["urgent_threshold"])
        self.index = {gram: i for i, gram in enumerate(vocab)}
        k = len(self.labels)
        if weights.shape != (len(vocab), k + 1) or idf.shape != (len(vocab),) or bias.shape != (k + 1,):
            raise ModelError("model arrays do not match the vocabulary and labels")
        # Fold idf into a float32 copy once: x_j·W_j = (1 + ln c_j) · (idf_j · W_j).
        self.idf = idf.astype(np.float32)
        self.weights = np.ascontiguousarray(weights.astype(np.float32))
        self.bias = bias.astype(np.float32)
        self._k = k

    @classmethod
    def load(cls, model_dir: Path) -> LinearModel:
        model_dir = Path(model_dir)
        try:
            meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
            with np.load(model_dir / MODEL_FILE, allow_pickle=False) as npz:
                vocab = bytes(npz["vocab"]).decode("utf-8").split("\n")
                idf, weights, bias = npz["idf"], npz["weights"], npz["bias"]
        except FileNotFoundError as exc:
            raise ModelError(f"no intake model in {model_dir} ({exc.filename} missing); run `linju intake train`") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ModelError(f"the intake model in {model_dir} is damaged: {exc}") from None
        if meta.get("features_version") != FEATURES_VERSION:
            raise ModelError(f"the intake model in {model_dir} was built for featuriser version "
                             f"{meta.get('features_version')}, this code has {FEATURES_VERSION}; run `linju intake train`")
        return cls(vocab, idf, weights, bias, meta)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and tf-idf values (l2-normalised) of a text."""
        counts: dict[int, int] = {}
        get = self.index.get
        for gram in features(text):
            j = get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float32, count=len(counts))
        x = tf * self.idf[idx]
        x /= np.sqrt(np.dot(x, x))
        return idx, x

    def logits(self, text: str) -> np.ndarray:
        idx, x = self.vector(text)
        if len(idx) == 0:
            return self.bias.copy()
        return x @ self.weights[idx] + self.bias

    def score(self, text: str) -> Scores:
        z = self.logits(text)
        label_z = z[: self._k] / self.temperature
        label_z = np.exp(label_z - label_z.max())
        probabilities = label_z / label_z.sum()
        urgent = 1.0 / (1.0 + math.exp(-float(z[self._k])))
        return Scores(probabilities, urgent)
