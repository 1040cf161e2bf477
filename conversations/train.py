"""Training of the intent model: ``python -m conversations.train`` (needs the ``train`` extra: scikit-learn).

Reads the shared labelled data (``../shared/data`` next to the repository, or ``--data DIR``) and the project's
own labelled sets under tests/conversations/data, leaves out the frozen evaluation split
(tests/conversations/data/frozen/frozen_sha256.txt: a deterministic 20% of the shared train files, chosen by
the SHA-256 of each record's text, context and language), fits three logistic-regression heads over
conversations.model.features (deterministic: lbfgs, sorted vocabulary, fixed folds), calibrates the primary
head's temperature on 5-fold out-of-fold scores, and writes conversations/model/intent_model.npz with the
SHA-256 of the exact training records. ``--report`` evaluates the shipped artifact on the frozen split and the
dev set; ``--compare`` measures alternatives (rules only, model only, ensemble variants) on the dev set with a
model trained without it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from conversations import ensemble
from conversations.classify import rule_pass
from conversations.evaluate import evaluate, format_report, load_records, summary_line
from conversations.model import ARTIFACT, FEATURE_VERSION, SEVERITY_CLASSES, IntentModel, feature_group
from conversations.types import PRIMARY_ORDER, Classification

__all__ = [
    "FROZEN_LIST",
    "TrainingDataMissing",
    "frozen_key",
    "is_frozen",
    "main",
    "training_hash",
    "training_records",
]

_LOGGER = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REPO_DATA = ROOT / "tests" / "conversations" / "data"
FROZEN_LIST = REPO_DATA / "frozen" / "frozen_sha256.txt"
SHARED_TRAIN = ("intents_train_en.jsonl", "intents_train_es.jsonl")
SHARED_DEV = "intents_dev.jsonl"
# The project's own labelled sets that training reads (fresh/*.jsonl only once their first run is recorded).
REPO_SETS = (
    "intents_extra.jsonl",
    "intents_holdout_*.jsonl",
    "intents_emergency_*.jsonl",
    "intents_variety_*.jsonl",
    "intents_personas_*.jsonl",
    "fresh/*.jsonl",
)
FROZEN_PERCENT = 20
MIN_DF = 2
C_PRIMARY = float(os.environ.get("MIDBOT_TRAIN_C", "20"))
C_LABELS = float(os.environ.get("MIDBOT_TRAIN_C", "20"))
C_SEVERITY = 10.0
FOLDS = 5
# Weights of the L2-normalised feature groups: character n-grams, word n-grams, context and rules (measured by
# --compare; MIDBOT_TRAIN_GROUP_WEIGHTS="1,0.6,0.3" overrides them for a measurement).
GROUP_WEIGHTS = [float(w) for w in os.environ.get("MIDBOT_TRAIN_GROUP_WEIGHTS", "1,0.6,0.3").split(",")]


class TrainingDataMissing(RuntimeError):
    """The shared data the model is trained on is not where it should be."""


def frozen_key(record: dict[str, Any]) -> str:
    """The SHA-256 naming a record in the frozen split: language, context and text."""
    raw = f"{record.get('lang') or ''}\x1f{record.get('context') or ''}\x1f{record['text']}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def is_frozen(record: dict[str, Any]) -> bool:
    """True for the deterministic 20% of the shared train files kept for evaluation only."""
    return int(frozen_key(record)[:8], 16) % 100 < FROZEN_PERCENT


def _shared(data: Path, name: str) -> Path:
    path = data / name
    if not path.exists():
        raise TrainingDataMissing(
            f"{path} is missing: the intent model trains on the shared labelled data "
            f"(../shared/data next to the repository, or --data DIR)"
        )
    return path


def frozen_records(data: Path = SHARED_DATA) -> list[dict[str, Any]]:
    """The frozen evaluation split, in file order."""
    return [r for name in SHARED_TRAIN for r in load_records(_shared(data, name)) if is_frozen(r)]


def _repo_files() -> list[Path]:
    return sorted({p for pattern in REPO_SETS for p in REPO_DATA.glob(pattern)})


def sourced_records(
    data: Path = SHARED_DATA, *, include_dev: bool = True, include_repo: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """(file name, record) of every training record, in training order; never a frozen one."""
    frozen = set(FROZEN_LIST.read_text(encoding="utf-8").split()) if FROZEN_LIST.exists() else set()
    records = [
        (name, r) for name in SHARED_TRAIN for r in load_records(_shared(data, name)) if not is_frozen(r)
    ]
    paths = [_shared(data, SHARED_DEV)] if include_dev else []
    if include_repo:
        paths += _repo_files()
    # Other sets are not split, but a text that also sits in the frozen split is left out with it.
    records += [(path.name, r) for path in paths for r in load_records(path)]
    return [(name, r) for name, r in records if frozen_key(r) not in frozen]


def training_records(
    data: Path = SHARED_DATA, *, include_dev: bool = True, include_repo: bool = True
) -> list[dict[str, Any]]:
    """The records the model is trained on, in a fixed order; never a frozen one."""
    return [r for _, r in sourced_records(data, include_dev=include_dev, include_repo=include_repo)]


def training_hash(records: Iterable[dict[str, Any]]) -> str:
    """SHA-256 of the training records as canonical JSON lines (what the artifact was trained on)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _rules(records: Sequence[dict[str, Any]]) -> list[ensemble.RuleResult]:
    return [rule_pass(r["text"], r.get("context")) for r in records]


def _matrix(feature_lists: Sequence[list[str]], vocabulary: dict[str, int]) -> Any:
    """Rows as IntentModel.scores builds them: counts, each group scaled by 1/sqrt(its known count), weighted."""
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped,import-not-found,unused-ignore]

    rows, cols, vals = [], [], []
    for i, feats in enumerate(feature_lists):
        counts = Counter(vocabulary[f] for f in feats if f in vocabulary)
        groups = Counter()  # type: Counter[int]
        group_of = {k: feature_group(f) for f in feats if (k := vocabulary.get(f)) is not None}
        for k, n in counts.items():
            groups[group_of[k]] += n
        for k in sorted(counts):
            rows.append(i)
            cols.append(k)
            group = group_of[k]
            vals.append(GROUP_WEIGHTS[group] * counts[k] / math.sqrt(groups[group]))
    return csr_matrix((vals, (rows, cols)), shape=(len(feature_lists), len(vocabulary)), dtype=np.float64)


def _logistic(x: Any, y: Sequence[str], classes: Sequence[str], c: float) -> tuple[Any, Any]:
    """Weights [features, classes] and bias [classes] of a multinomial (or binary) logistic regression."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped,import-not-found,unused-ignore]

    present = sorted(set(y))
    weights = np.zeros((x.shape[1], len(classes)))
    bias = np.full(len(classes), -20.0)
    if len(present) == 1:
        bias[classes.index(present[0])] = 20.0
        return weights, bias
    if len(present) == 2:  # binary: one weight vector for the second class (liblinear: deterministic, fast)
        fitted = LogisticRegression(C=c, solver="liblinear", tol=1e-6, max_iter=1000).fit(x, list(y))
        second = classes.index(fitted.classes_[1])
        first = classes.index(fitted.classes_[0])
        weights[:, second], bias[second] = fitted.coef_[0], fitted.intercept_[0]
        weights[:, first], bias[first] = 0.0, 0.0
        return weights, bias
    fitted = LogisticRegression(C=c, max_iter=2000, tol=1e-5).fit(x, list(y))
    for k, label in enumerate(fitted.classes_):
        weights[:, classes.index(label)] = fitted.coef_[k]
        bias[classes.index(label)] = fitted.intercept_[k]
    return weights, bias


def _labels_head(x: Any, records: Sequence[dict[str, Any]], c: float) -> tuple[Any, Any]:
    weights = np.zeros((x.shape[1], len(PRIMARY_ORDER)))
    bias = np.zeros(len(PRIMARY_ORDER))
    for k, label in enumerate(PRIMARY_ORDER):
        y = ["y" if label in (r["intent"], *(r.get("also") or [])) else "n" for r in records]
        w, b = _logistic(x, y, ["n", "y"], c)
        weights[:, k], bias[k] = w[:, 1] - w[:, 0], b[1] - b[0]
    return weights, bias


def _severity_label(record: dict[str, Any]) -> str:
    return str(record.get("severity") or "null")


def _temperature(x: Any, y: Sequence[str], c: float) -> float:
    """The temperature that makes out-of-fold primary probabilities honest (minimum log loss on a grid)."""
    order = np.arange(x.shape[0])
    folds = order % FOLDS
    scores = np.zeros((x.shape[0], len(PRIMARY_ORDER)))
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        w, b = _logistic(x[train], [y[i] for i in order[train]], list(PRIMARY_ORDER), c)
        scores[test] = x[test] @ w + b
    truth = np.array([PRIMARY_ORDER.index(label) for label in y])
    best, best_loss = 1.0, math.inf
    for t in np.arange(0.3, 3.01, 0.05):
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float(log_p[np.arange(len(truth)), truth].mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    oof = (scores.argmax(axis=1) == truth).mean()
    _LOGGER.info("out-of-fold primary accuracy %.3f, temperature %.2f", oof, best)
    return best


def fit(records: Sequence[dict[str, Any]], *, calibrate: bool = True) -> IntentModel:
    """Train the three heads on labelled records and return the model (not yet saved)."""
    rules = _rules(records)
    feature_lists = [ensemble.feature_list(r) for r in rules]
    df = Counter(f for feats in feature_lists for f in set(feats))
    names = sorted(f for f, n in df.items() if n >= MIN_DF)
    vocabulary = {f: i for i, f in enumerate(names)}
    x = _matrix(feature_lists, vocabulary)
    primary = [r["intent"] for r in records]
    temperature = _temperature(x, primary, C_PRIMARY) if calibrate else 1.0
    w_p, b_p = _logistic(x, primary, list(PRIMARY_ORDER), C_PRIMARY)
    w_l, b_l = _labels_head(x, records, C_LABELS)
    side = [i for i, r in enumerate(records) if "side_effect" in (r["intent"], *(r.get("also") or []))]
    w_s, b_s = _logistic(
        x[side], [_severity_label(records[i]) for i in side], list(SEVERITY_CLASSES), C_SEVERITY
    )
    weights = np.hstack([w_p, w_l, w_s]).astype(np.float16)
    bias = np.concatenate([b_p, b_l, b_s]).astype(np.float32)
    meta = {
        "feature_version": FEATURE_VERSION,
        "labels": list(PRIMARY_ORDER),
        "severities": list(SEVERITY_CLASSES),
        "training_sha256": training_hash(records),
        "training_records": len(records),
        "temperature": round(temperature, 3),
        "min_df": MIN_DF,
        "group_weights": list(GROUP_WEIGHTS),
        "c": {"primary": C_PRIMARY, "labels": C_LABELS, "severity": C_SEVERITY},
    }
    arrays = {"vocabulary": np.array(names), "weights": weights, "bias": bias}
    return IntentModel(arrays, meta)


def save(model: IntentModel, path: Path = ARTIFACT) -> None:
    """Write the artifact (compressed npz; the metadata as one JSON string)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(model.vocabulary, key=model.vocabulary.__getitem__)
    np.savez_compressed(
        path,
        vocabulary=np.array(names),
        weights=model.raw_weights,
        bias=model.raw_bias,
        meta=np.array(json.dumps(model.meta, sort_keys=True)),
    )


def classify_with(
    records: Sequence[dict[str, Any]], model: IntentModel | None, options: ensemble.Options | None = None
) -> list[Classification]:
    """Classify records with a given model and ensemble options."""
    return [ensemble.combine(r, model, options) for r in _rules(records)]


def _summary(name: str, records: Sequence[dict[str, Any]], preds: Sequence[Classification]) -> str:
    def pct(v: float | None) -> str:
        return "  n/a" if v is None else f"{100 * v:5.1f}"

    report = evaluate(records, preds)
    by_lang: dict[str, float | None] = {}
    for lang in ("en", "es"):
        idx = [i for i, r in enumerate(records) if r.get("lang") == lang]
        by_lang[lang] = evaluate([records[i] for i in idx], [preds[i] for i in idx]).accuracy if idx else None
    return (
        f"{name:<34} acc {pct(report.accuracy)} emerg {pct(report.emergency_recall)} "
        f"optout P {pct(report.opt_out_precision)} R {pct(report.opt_out_recall)} "
        f"side {pct(report.side_effect_recall)} sev {pct(report.severity_accuracy)} ({report.severity_support}) "
        f"en {pct(by_lang['en'])} es {pct(by_lang['es'])}"
    )


def _fit_uncalibrated(records: list[dict[str, Any]]) -> IntentModel:
    return fit(records, calibrate=False)


def _variants() -> list[tuple[str, ensemble.Options]]:
    base = ensemble.OPTIONS
    return [
        ("model only", replace(base, safety_net=False, bare_from_rules=False, severity_rules_first=False)),
        ("ensemble (default)", base),
        ("ensemble, unknown needs 0.0/0.9", replace(base, unknown_needs=0.0, short_unknown_needs=0.9)),
        ("ensemble, unknown needs 0.3/0.9", replace(base, unknown_needs=0.3, short_unknown_needs=0.9)),
        ("ensemble, unknown needs 0.0/0.7", replace(base, unknown_needs=0.0, short_unknown_needs=0.7)),
        ("ensemble, unknown needs 0.0/0.0", replace(base, unknown_needs=0.0, short_unknown_needs=0.0)),
        ("ensemble, override needs 0.3", replace(base, override_needs=0.3)),
        ("ensemble, override needs 0.4", replace(base, override_needs=0.4)),
        ("ensemble, override needs 0.5", replace(base, override_needs=0.5)),
        ("ensemble, override needs 0.6", replace(base, override_needs=0.6)),
        ("ensemble, model opt-out at 0.6", replace(base, model_opt_out_at=0.6)),
        ("ensemble, model opt-out at 0.5", replace(base, model_opt_out_at=0.5)),
    ]


def _compare(data: Path) -> None:
    """Out-of-fold figures on the shared train files (minus the frozen split), which the rules were not tuned on.

    Each fold is predicted by a model trained on the other folds plus the dev set and the project's own sets.
    """
    shared = [r for name in SHARED_TRAIN for r in load_records(_shared(data, name)) if not is_frozen(r)]
    rest = [r for r in training_records(data) if frozen_key(r) not in {frozen_key(x) for x in shared}]
    print(_summary("rules only", shared, classify_with(shared, None)))
    rules = _rules(shared)
    from multiprocessing import get_context

    trains = [[r for i, r in enumerate(shared) if i % FOLDS != fold] + rest for fold in range(FOLDS)]
    with get_context("fork").Pool(2) as pool:
        models = pool.map(_fit_uncalibrated, trains)
    for label, options in _variants():
        preds = [ensemble.combine(rules[i], models[i % FOLDS], options) for i in range(len(shared))]
        print(_summary(label, shared, preds))
    preds = [ensemble.combine(rules[i], models[i % FOLDS]) for i in range(len(shared))]
    print(format_report(evaluate(shared, preds), "shared train, out of fold", max_errors=60))


def cv_folds(data: Path = SHARED_DATA) -> list[tuple[str, int | None, dict[str, Any]]]:
    """(source, fold or None, record) of every training record for cross-validation.

    The shared train files are split in FOLDS by the hash of each record (another part of it than the
    frozen split's); each batch written by people who never saw the classifier (fresh/*.jsonl and the
    persona batches intents_personas_*.jsonl) is left out whole, batch i with fold i % FOLDS, so a fold also
    measures a new writer's batch. The other sets (None) are always trained on.
    """
    fresh = sorted(
        {name for name, _ in sourced_records(data) if name.startswith(("fresh_", "intents_personas_"))}
    )
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    for name, record in sourced_records(data):
        if name in SHARED_TRAIN:
            out.append(("shared train", int(frozen_key(record)[8:16], 16) % FOLDS, record))
        elif name in fresh:
            out.append((name.removesuffix(".jsonl"), fresh.index(name) % FOLDS, record))
        else:
            out.append((name, None, record))
    return out


def _cv(data: Path, show_errors: int) -> None:
    """Out-of-fold figures (cv_folds) of the ensemble, the model alone and the rules alone."""
    rows = cv_folds(data)
    from multiprocessing import get_context

    trains = [[r for _, f, r in rows if f != fold] for fold in range(FOLDS)]
    with get_context("fork").Pool(2) as pool:
        models = pool.map(_fit_uncalibrated, trains)
    held = [(source, fold, r) for source, fold, r in rows if fold is not None]
    rules = _rules([r for _, _, r in held])
    variants = {
        "ensemble": ensemble.OPTIONS,
        "model only": replace(
            ensemble.OPTIONS, safety_net=False, bare_from_rules=False, severity_rules_first=False
        ),
    }
    preds = {
        name: [ensemble.combine(rule, models[fold], options) for rule, (_, fold, _) in zip(rules, held, strict=True)]
        for name, options in variants.items()
    }
    preds["rules only"] = [rule.result for rule in rules]
    groups = ["shared train", *sorted({s for s, _, _ in held if s != "shared train"})]
    for name in ("ensemble", "model only", "rules only"):
        for group in [*groups, "fresh pooled", "all held out"]:
            idx = [
                i
                for i, (source, _, _) in enumerate(held)
                if source == group
                or group == "all held out"
                or (group == "fresh pooled" and source.startswith("fresh_"))
            ]
            report = evaluate([held[i][2] for i in idx], [preds[name][i] for i in idx])
            print(summary_line(f"{name[:10]}: {group[:16]}", report))
        print()
    if show_errors:
        report = evaluate([r for _, _, r in held], preds["ensemble"])
        print(format_report(report, "out of fold (training data only)", max_errors=show_errors))


def _report(data: Path) -> None:
    """The shipped artifact on the frozen split (aggregate figures only: its texts are never read for fixes)."""
    from conversations.model import load_model

    model = load_model()
    for name, records in (
        ("frozen split", frozen_records(data)),
        ("dev (trained on)", load_records(_shared(data, SHARED_DEV))),
    ):
        for label, m in (("rules only", None), ("ensemble", model)):
            print(_summary(f"{name}: {label}", records, classify_with(records, m)))
    records = frozen_records(data)
    print(format_report(evaluate(records, classify_with(records, model)), "frozen split", max_errors=0))


def write_frozen_list(data: Path = SHARED_DATA) -> int:
    """Write the frozen split's keys (sorted) so that tests and training read the same list."""
    keys = sorted({frozen_key(r) for r in frozen_records(data)})
    FROZEN_LIST.parent.mkdir(parents=True, exist_ok=True)
    FROZEN_LIST.write_text("\n".join(keys) + "\n", encoding="utf-8")
    return len(keys)


def main(argv: list[str] | None = None) -> int:
    """Train and save the artifact (default), or measure (--report, --compare)."""
    parser = argparse.ArgumentParser(
        prog="python -m conversations.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", type=Path, default=SHARED_DATA, help=f"shared labelled data (default {SHARED_DATA})"
    )
    parser.add_argument(
        "--report", action="store_true", help="evaluate the shipped artifact on the frozen split"
    )
    parser.add_argument("--compare", action="store_true", help="measure alternatives on the dev set")
    parser.add_argument(
        "--cv",
        nargs="?",
        const=0,
        type=int,
        metavar="ERRORS",
        help="out-of-fold figures on the training data (shared train folds, fresh batches left out whole); "
        "list ERRORS misclassified texts",
    )
    parser.add_argument("--output", type=Path, default=ARTIFACT, help="where to write the artifact")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.cv is not None:
            _cv(args.data, args.cv)
        elif args.compare:
            _compare(args.data)
        elif args.report:
            _report(args.data)
        else:
            count = write_frozen_list(args.data)
            records = training_records(args.data)
            model = fit(records)
            save(model, args.output)
            print(
                f"trained on {len(records)} records ({count} frozen for evaluation), "
                f"sha256 {model.meta['training_sha256'][:12]}…, wrote {args.output} "
                f"({args.output.stat().st_size / 1e6:.2f} MB)"
            )
    except TrainingDataMissing as exc:
        print(f"conversations.train: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
