"""The learned intent model: n-gram features and a linear scorer loaded from the shipped artifact (numpy only).

Features: character 2–5-grams of each normalised word (padded with spaces, counted: a gram that occurs twice
counts twice), word 1–2-grams, the context the text answers, the labels the lexicon rules found (so the model
learns when to trust them) and the rules' severity (binary). Each group of features is scaled by one over the
square root of how many of its features the vocabulary knows, exactly as conversations.train built it. Because
the character grams stay inside a word, a word's contribution to the scores is computed once and cached
(patients reuse words: the cache is what makes the model cheap next to the rules). Three linear heads share the features: ``primary`` (softmax over the primary
intent), ``labels`` (one sigmoid per label: does the text carry it at all) and ``severity`` (softmax over
null/none/mild/moderate/severe/very_severe, used for side effects). Training lives in conversations.train.
"""

from __future__ import annotations

import json
import logging
import math
import threading
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
    "text_features",
    "word_grams",
    "load_model",
]

_LOGGER = logging.getLogger(__name__)

ARTIFACT = Path(__file__).resolve().parent / "model" / "intent_model.npz"
# Bumped whenever features() changes, so an artifact built with other features is refused rather than misread.
FEATURE_VERSION = 2
SEVERITY_CLASSES: tuple[str, ...] = ("null", "none", "mild", "moderate", "severe", "very_severe")
_CHAR_MIN, _CHAR_MAX = 2, 5

FloatArray = npt.NDArray[np.float32]
_CACHE_LOCK = threading.Lock()  # taken only when a word is first seen
_WORD_CACHE_SIZE = 200_000  # distinct words whose scores are kept (about 200 bytes each)


def feature_group(name: str) -> int:
    """0 for character n-grams, 1 for word n-grams, 2 for context, rule labels and shape."""
    if "=" not in name:
        return 2 if name == "q" else 0
    return 1 if name[0] in "wb" or name.startswith("cw=") else 2


def word_grams(word: str) -> list[str]:
    """The character 2–5-grams of one word padded with spaces (" no ": " n", "no", "o ", " no", "no ", " no ")."""
    padded = f" {word} "
    size = len(padded)
    return [padded[i : i + n] for n in range(_CHAR_MIN, _CHAR_MAX + 1) for i in range(size - n + 1)]


def text_features(
    words: Sequence[str],
    context: str | None,
    rule_labels: Iterable[str] = (),
    rule_severity: str | None = None,
    question: bool = False,
) -> list[str]:
    """The word, context and rule features of one normalised text (no character grams; no duplicates)."""
    ctx = context or "none"
    out = {f"c={ctx}", f"n={min(len(words), 6)}"}
    if question:
        out.add("q")
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


def features(
    words: Sequence[str],
    context: str | None,
    rule_labels: Iterable[str] = (),
    rule_severity: str | None = None,
    question: bool = False,
) -> list[str]:
    """Every feature string of one normalised text: character grams (repeated as often as they occur) first.

    Args:
        words: the normalised words (conversations.normalize.Normalized.words).
        context: the question answered, or None.
        rule_labels: the labels the lexicon rules found.
        rule_severity: the severity the rules read, if any.
        question: the text asks (a question mark or an accented Spanish question word).
    """
    grams = [gram for word in words for gram in word_grams(word)]
    return grams + text_features(words, context, rule_labels, rule_severity, question)


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
        self.temperature = float(meta.get("temperature", 1.0))
        self.group_weights: tuple[float, ...] = tuple(float(w) for w in meta.get("group_weights", (1.0,) * 3))
        names = arrays["vocabulary"].tolist()
        self._group: list[int] = [feature_group(n) for n in names]
        # One matrix holds the feature weights, the bias (one row, always scored with weight 1) and, appended
        # as words are first seen, each word's summed character-gram weights: a text is then one gather and
        # one product, whatever its length.
        self._bias_row = len(names)
        self._w: FloatArray = np.zeros((len(names) + 1 + 1024, self.raw_weights.shape[1]), dtype=np.float32)
        self._w[: len(names)] = self.raw_weights
        self._w[self._bias_row] = self.raw_bias
        self._used = self._bias_row + 1
        self._words: dict[str, tuple[tuple[int, ...], int]] = {}
        n = len(self.labels)
        self._heads = ((0, n), (n, 2 * n), (2 * n, 2 * n + len(self.severities)))

    @classmethod
    def from_file(cls, path: str | Path) -> IntentModel:
        """Load an artifact written by conversations.train."""
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        return cls(arrays, meta)

    def _word(self, word: str) -> tuple[tuple[int, ...], int]:
        """The matrix rows scoring a word's character grams (one cached row of their sum) and how many grams."""
        hit = self._words.get(word)
        if hit is not None:
            return hit
        rows = [i for i in map(self._index.get, word_grams(word)) if i is not None]
        with _CACHE_LOCK:
            if len(self._words) >= _WORD_CACHE_SIZE:  # full: the word's grams are scored one by one
                return tuple(rows), len(rows)
            if not rows:
                hit = self._words[word] = ((), 0)
                return hit
            if self._used == len(self._w):  # grow; readers keep the old array, whose rows stay valid
                self._w = np.concatenate((self._w, np.zeros_like(self._w[: len(self._w) // 2])))
            row = self._used
            self._w[row] = self._w[rows].sum(axis=0)
            self._used += 1
            hit = self._words[word] = ((row,), len(rows))
        return hit

    def scores(self, words: Sequence[str], feats: Iterable[str]) -> FloatArray:
        """Raw linear scores of every head, concatenated (primary, labels, severity).

        Args:
            words: the normalised words (their character grams are scored from the word cache).
            feats: the other features (text_features).
        """
        rows, scale = [self._bias_row], [1.0]
        count, word_rows = 0, []  # type: int, list[int]
        for word in words:
            cached, known = self._words.get(word) or self._word(word)
            word_rows += cached
            count += known
        if count:
            rows += word_rows
            scale += [self.group_weights[0] / math.sqrt(count)] * len(word_rows)
        known_rows = [i for i in map(self._index.get, feats) if i is not None]
        if known_rows:
            group = self._group
            per_group = [0, 0, 0]
            for i in known_rows:
                per_group[group[i]] += 1
            factor = [
                w / math.sqrt(n) if n else 0.0 for w, n in zip(self.group_weights, per_group, strict=True)
            ]
            rows += known_rows
            scale += [factor[group[i]] for i in known_rows]
        weights = self._w
        result: FloatArray = np.array(scale, dtype=np.float32) @ weights[rows]
        return result

    def predict(self, words: Sequence[str], feats: Iterable[str]) -> ModelPrediction:
        """Probabilities of each head for one text's words and other features (see scores)."""
        raw = self.scores(words, feats).tolist()  # small vectors: plain floats beat numpy's per-call cost
        (p0, p1), (l0, l1), (s0, s1) = self._heads
        primary = raw[p0:p1]
        top = max(primary)
        exps = [math.exp(v - top) for v in primary]
        inverse = 1.0 / self.temperature
        calibrated = [math.exp((v - top) * inverse) for v in primary]
        severity = raw[s0:s1]
        top_severity = max(severity)
        return ModelPrediction(
            primary=_distribution(self.labels, exps),
            labels={k: _sigmoid(v) for k, v in zip(self.labels, raw[l0:l1], strict=True)},
            severity=_distribution(self.severities, [math.exp(v - top_severity) for v in severity]),
            calibrated=_distribution(self.labels, calibrated),
        )


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value > -30.0 else 0.0


def _distribution(names: Sequence[str], values: list[float]) -> dict[str, float]:
    total = sum(values)
    return {k: v / total for k, v in zip(names, values, strict=True)}


@lru_cache(maxsize=1)
def load_model(path: str | None = None) -> IntentModel | None:
    """The shipped model (cached), or None when the artifact is missing (the rules then work alone)."""
    where = Path(path) if path else ARTIFACT
    if not where.exists():
        _LOGGER.warning("intent model artifact %s is missing: lexicon rules only", where)
        return None
    return IntentModel.from_file(where)
