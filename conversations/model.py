"""The learned intent model: n-gram features and a linear scorer loaded from the shipped artifact (numpy only).

Features are binary: character 2–5-grams of the normalised words (padded with spaces), word 1–2-grams, the
context the text answers, the labels the lexicon rules found (so the model learns when to trust them) and the
rules' severity. A text's feature vector is L2-normalised over the features the vocabulary knows, exactly as
conversations.train built it. Three linear heads share the features: ``primary`` (softmax over the primary
intent), ``labels`` (one sigmoid per label: does the text carry it at all) and ``severity`` (softmax over
null/none/mild/moderate/severe/very_severe, used for side effects). Training lives in conversations.train.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ARTIFACT",
    "FEATURE_VERSION",
    "SEVERITY_CLASSES",
    "IntentModel",
    "ModelPrediction",
    "feature_group",
    "features",
    "load_model",
]

_LOGGER = logging.getLogger(__name__)

ARTIFACT = Path(__file__).resolve().parent / "model" / "intent_model.npz"
# Bumped whenever features() changes, so an artifact built with other features is refused rather than misread.
FEATURE_VERSION = 1
SEVERITY_CLASSES: tuple[str, ...] = ("null", "none", "mild", "moderate", "severe", "very_severe")
_CHAR_MIN, _CHAR_MAX = 2, 5

FloatArray = npt.NDArray[np.float32]
_GROUPS = np.arange(3)


def feature_group(name: str) -> int:
    """0 for character n-grams, 1 for word n-grams, 2 for context, rule labels and shape."""
    if "=" not in name:
        return 2 if name == "q" else 0
    return 1 if name[0] in "wb" or name.startswith("cw=") else 2


def features(
    words: Sequence[str],
    context: str | None,
    rule_labels: Iterable[str] = (),
    rule_severity: str | None = None,
    question: bool = False,
) -> list[str]:
    """The feature strings of one normalised text (duplicates removed, order irrelevant).

    Args:
        words: the normalised words (conversations.normalize.Normalized.words).
        context: the question answered, or None.
        rule_labels: the labels the lexicon rules found.
        rule_severity: the severity the rules read, if any.
        question: the text asks (a question mark or an accented Spanish question word).
    """
    ctx = context or "none"
    out = {f"c={ctx}", f"n={min(len(words), 6)}"}
    if question:
        out.add("q")
    padded = " " + " ".join(words) + " "
    size = len(padded)
    for n in range(_CHAR_MIN, _CHAR_MAX + 1):
        out.update(padded[i : i + n] for i in range(size - n + 1))
    previous = "^"
    for word in words:
        out.add("w=" + word)
        out.add("b=" + previous + "_" + word)
        previous = word
    out.add("b=" + previous + "_$")
    if len(words) <= 3:  # short answers mean what the question makes them mean
        out.update(f"cw={ctx}|{w}" for w in words)
    for label in rule_labels:
        out.add("r=" + label)
        out.add(f"rc={ctx}|{label}")
    if rule_severity is not None:
        out.add("rs=" + rule_severity)
    return list(out)


@dataclass(frozen=True, slots=True)
class ModelPrediction:
    """What the model says about one text: a probability per label from each head."""

    primary: dict[str, float]
    labels: dict[str, float]
    severity: dict[str, float]
    calibrated: dict[str, float]  # the primary head at the temperature fitted out of fold: for confidence

    def best(self) -> tuple[str, float]:
        """The most likely primary label and its calibrated probability."""
        label = max(self.primary, key=self.primary.__getitem__)
        return label, self.calibrated[label]


class IntentModel:
    """A trained linear model over features(); see the module docstring."""

    def __init__(self, arrays: dict[str, Any], meta: dict[str, Any]) -> None:
        if meta.get("feature_version") != FEATURE_VERSION:
            raise ValueError(
                f"intent model artifact has feature version {meta.get('feature_version')}, "
                f"code expects {FEATURE_VERSION}: retrain with python -m conversations.train"
            )
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.severities: tuple[str, ...] = tuple(meta["severities"])
        self.vocabulary: dict[str, int] = {name: i for i, name in enumerate(arrays["vocabulary"].tolist())}
        self._index = self.vocabulary
        self.raw_weights: npt.NDArray[np.float16] = arrays["weights"].astype(np.float16)
        self.raw_bias: FloatArray = arrays["bias"].astype(np.float32)
        self._w: FloatArray = self.raw_weights.astype(np.float32)
        self._b: FloatArray = self.raw_bias
        self.temperature = float(meta.get("temperature", 1.0))
        self.group_weights: FloatArray = np.array(
            meta.get("group_weights", (1.0, 1.0, 1.0)), dtype=np.float32
        )
        names = arrays["vocabulary"].tolist()
        self._group = np.array([feature_group(n) for n in names], dtype=np.int64)
        # group_weight / sqrt(count) for counts up to 1023, looked up instead of computed per text
        table = np.arange(1024, dtype=np.float32)
        table[0] = 1.0
        self._group_scale: FloatArray = (self.group_weights[None, :] / np.sqrt(table)[:, None]).astype(
            np.float32
        )
        n = len(self.labels)
        self._heads = ((0, n), (n, 2 * n), (2 * n, 2 * n + len(self.severities)))

    @classmethod
    def from_file(cls, path: str | Path) -> IntentModel:
        """Load an artifact written by conversations.train."""
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        return cls(arrays, meta)

    def scores(self, feats: Iterable[str]) -> FloatArray:
        """Raw linear scores of every head, concatenated (primary, labels, severity)."""
        rows = [i for i in map(self._index.get, feats) if i is not None]
        if not rows:
            return self._b.copy()
        groups = self._group[rows]
        counts = np.minimum(np.bincount(groups, minlength=3), len(self._group_scale) - 1)
        per_group = self._group_scale[counts, _GROUPS]
        total: FloatArray = per_group[groups] @ self._w[rows]
        return total + self._b

    def predict(self, feats: Iterable[str]) -> ModelPrediction:
        """Probabilities of each head for one feature list."""
        raw = self.scores(feats).tolist()  # small vectors: plain floats are faster than numpy calls here
        (p0, p1), (l0, l1), (s0, s1) = self._heads
        primary = raw[p0:p1]
        return ModelPrediction(
            primary=dict(zip(self.labels, _softmax(primary), strict=True)),
            labels={k: 1.0 / (1.0 + math.exp(-v)) for k, v in zip(self.labels, raw[l0:l1], strict=True)},
            severity=dict(zip(self.severities, _softmax(raw[s0:s1]), strict=True)),
            calibrated=dict(zip(self.labels, _softmax([v / self.temperature for v in primary]), strict=True)),
        )


def _softmax(raw: list[float]) -> list[float]:
    top = max(raw)
    shifted = [math.exp(v - top) for v in raw]
    total = sum(shifted)
    return [v / total for v in shifted]


@lru_cache(maxsize=1)
def load_model(path: str | None = None) -> IntentModel | None:
    """The shipped model (cached), or None when the artifact is missing (the rules then work alone)."""
    where = Path(path) if path else ARTIFACT
    if not where.exists():
        _LOGGER.warning("intent model artifact %s is missing: lexicon rules only", where)
        return None
    return IntentModel.from_file(where)
