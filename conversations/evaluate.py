"""Evaluation of the intent classifier on labelled JSON lines: accuracy, per-label figures, safety figures.

Records follow DESIGN.md "Intent evaluation format": ``{"text", "intent", "also"?, "severity"?, "context"?,
"lang"?}``. Safety figures: emergency recall, opt-out precision and recall (on the primary label), side-effect
recall (a record whose labels include side_effect counts as recalled when the prediction's labels do too) and
severity accuracy (over records with a stated severity). Harmful errors (issue 14) are counted on the primary
label: a missed emergency, a missed or an invented opt-out, and a "no" or "stop" (labelled decline or opt_out)
read as a yes (confirm). Accuracy is also given per labelled language.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conversations.types import CONTEXTS, INTENTS, PRIMARY_ORDER, SEVERITIES, Classification

__all__ = [
    "HARM_KINDS",
    "EvalFileError",
    "LabelStats",
    "Report",
    "evaluate",
    "evaluate_records",
    "format_report",
    "harm_of",
    "load_records",
    "report_dict",
]

_LOGGER = logging.getLogger(__name__)

Classifier = Callable[[str, str | None], Classification]


class EvalFileError(ValueError):
    """An evaluation file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabelStats:
    """Precision and recall of one label, on the primary intent."""

    label: str
    support: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything an evaluation measured."""

    total: int
    correct: int
    labels: tuple[LabelStats, ...]
    confusions: tuple[tuple[str, str, int], ...]
    emergency_recall: float | None
    opt_out_precision: float | None
    opt_out_recall: float | None
    side_effect_recall: float | None
    severity_accuracy: float | None
    severity_support: int
    language_accuracy: float | None
    errors: tuple[dict[str, Any], ...]
    harmful: tuple[tuple[str, int], ...] = ()  # (kind, count) of harmful errors, kinds in HARM_KINDS order
    by_language: tuple[tuple[str, int, int], ...] = ()  # (lang, correct, total) per labelled language

    @property
    def harmful_count(self) -> int:
        return sum(n for _, n in self.harmful)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None


def _check_label(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or value not in INTENTS:
        raise EvalFileError(f"{where}: {field}: not an intent label: {value!r}")
    return value


def _record(line: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EvalFileError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise EvalFileError(f"{where}: not a JSON object")
    if not isinstance(data.get("text"), str):
        raise EvalFileError(f"{where}: text: missing or not a string")
    _check_label(data.get("intent"), where, "intent")
    also = data.get("also") or []
    if not isinstance(also, list):
        raise EvalFileError(f"{where}: also: not a list")
    for label in also:
        _check_label(label, where, "also")
    if data.get("severity") is not None and data["severity"] not in SEVERITIES:
        raise EvalFileError(f"{where}: severity: not one of {', '.join(SEVERITIES)}: {data['severity']!r}")
    if data.get("context") is not None and data["context"] not in CONTEXTS:
        raise EvalFileError(f"{where}: context: unknown context {data['context']!r}")
    return data


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Read an evaluation file (JSON lines; blank lines skipped).

    Raises:
        EvalFileError: the file is missing or unreadable, or a line is bad ("FILE:LINE: reason").
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EvalFileError(f"{path}: cannot read: {reason}") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            records.append(_record(line, f"{path}:{number}"))
    return records


HARM_KINDS = ("missed emergency", "missed opt-out", "invented opt-out", "no read as yes")


def harm_of(expected: str, got: str) -> str | None:
    """The kind of harmful error of a primary label read as another, or None (see the module docstring)."""
    if expected == "emergency" and got != "emergency":
        return "missed emergency"
    if expected == "opt_out" and got != "opt_out":
        return "no read as yes" if got == "confirm" else "missed opt-out"
    if got == "opt_out" and expected != "opt_out":
        return "invented opt-out"
    if expected == "decline" and got == "confirm":
        return "no read as yes"
    return None


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _expected(record: dict[str, Any]) -> list[str]:
    return [record["intent"], *(record.get("also") or [])]


def evaluate(records: Sequence[dict[str, Any]], predictions: Sequence[Classification]) -> Report:
    """Compare predictions with labelled records (same order, same length)."""
    if len(records) != len(predictions):
        raise ValueError("records and predictions differ in length")
    pairs = list(zip(records, predictions, strict=True))
    support = Counter(r["intent"] for r in records)
    predicted = Counter(p.intent for p in predictions)
    correct = Counter(r["intent"] for r, p in pairs if r["intent"] == p.intent)
    confusions = Counter((r["intent"], p.intent) for r, p in pairs if r["intent"] != p.intent)
    order = [label for label in PRIMARY_ORDER if support[label] or predicted[label]]
    side = [(r, p) for r, p in pairs if "side_effect" in _expected(r)]
    graded = [(r, p) for r, p in pairs if r.get("severity") is not None]
    lang = [(r, p) for r, p in pairs if r.get("lang") in ("en", "es")]
    errors = tuple(
        {
            "text": r["text"],
            "context": r.get("context"),
            "expected": r["intent"],
            "got": p.intent,
            "also": list(p.also),
        }
        for r, p in pairs
        if r["intent"] != p.intent
    )
    harms = Counter(kind for r, p in pairs if (kind := harm_of(r["intent"], p.intent)) is not None)
    languages = sorted({str(r["lang"]) for r in records if r.get("lang")})
    by_language = tuple(
        (
            lang,
            sum(1 for r, p in pairs if r.get("lang") == lang and r["intent"] == p.intent),
            sum(1 for r in records if r.get("lang") == lang),
        )
        for lang in languages
    )
    return Report(
        total=len(pairs),
        correct=sum(correct.values()),
        labels=tuple(LabelStats(label, support[label], predicted[label], correct[label]) for label in order),
        confusions=tuple((a, b, n) for (a, b), n in confusions.most_common()),
        emergency_recall=_ratio(correct["emergency"], support["emergency"]),
        opt_out_precision=_ratio(correct["opt_out"], predicted["opt_out"]),
        opt_out_recall=_ratio(correct["opt_out"], support["opt_out"]),
        side_effect_recall=_ratio(sum(1 for _, p in side if "side_effect" in p.labels), len(side)),
        severity_accuracy=_ratio(sum(1 for r, p in graded if p.severity == r["severity"]), len(graded)),
        severity_support=len(graded),
        language_accuracy=_ratio(sum(1 for r, p in lang if p.language == r["lang"]), len(lang)),
        errors=errors,
        harmful=tuple((kind, harms[kind]) for kind in HARM_KINDS if harms[kind]),
        by_language=by_language,
    )


def evaluate_records(records: Iterable[dict[str, Any]], classifier: Classifier | None = None) -> Report:
    """Classify each record's text in its context and evaluate."""
    if classifier is None:
        from conversations.classify import classify

        classifier = classify
    rows = list(records)
    return evaluate(rows, [classifier(r["text"], r.get("context")) for r in rows])


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_report(report: Report, source: str = "", max_errors: int = 20) -> str:
    """A readable report: accuracy, per-label table, top confusions, safety figures, some errors."""
    lines = [
        f"Intent evaluation{' of ' + source if source else ''}: {report.total} messages",
        f"accuracy (primary intent): {_pct(report.accuracy)} ({report.correct}/{report.total})",
        "",
        f"{'label':<16}{'precision':>10}{'recall':>10}{'support':>9}{'predicted':>11}",
    ]
    for stats in report.labels:
        lines.append(
            f"{stats.label:<16}{_pct(stats.precision):>10}{_pct(stats.recall):>10}{stats.support:>9}"
            f"{stats.predicted:>11}"
        )
    lines += ["", "top confusions (expected -> got):"]
    lines += [f"  {a} -> {b}: {n}" for a, b, n in report.confusions[:10]] or ["  none"]
    lines += [
        "",
        "safety:",
        f"  emergency recall:   {_pct(report.emergency_recall)}",
        f"  opt-out precision:  {_pct(report.opt_out_precision)}",
        f"  opt-out recall:     {_pct(report.opt_out_recall)}",
        f"  side-effect recall: {_pct(report.side_effect_recall)}",
        f"  severity accuracy:  {_pct(report.severity_accuracy)} (over {report.severity_support} with a severity)",
        f"  language accuracy:  {_pct(report.language_accuracy)}",
        f"  harmful errors:     {report.harmful_count}"
        + (" (" + ", ".join(f"{n} {kind}" for kind, n in report.harmful) + ")" if report.harmful else ""),
    ]
    if report.by_language:
        lines.append(
            "  accuracy by language: "
            + ", ".join(f"{lang} {_pct(ok / n)} ({ok}/{n})" for lang, ok, n in report.by_language)
        )
    if report.errors and max_errors:
        lines += ["", f"misclassified (first {min(max_errors, len(report.errors))} of {len(report.errors)}):"]
        for error in report.errors[:max_errors]:
            where = f" [{error['context']}]" if error["context"] else ""
            lines.append(f"  {error['expected']} -> {error['got']}{where}: {error['text']}")
    return "\n".join(lines)


def report_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-safe data."""
    data = asdict(report)
    data["accuracy"] = report.accuracy
    data["labels"] = {
        s.label: {
            "precision": s.precision,
            "recall": s.recall,
            "support": s.support,
            "predicted": s.predicted,
        }
        for s in report.labels
    }
    data["confusions"] = [{"expected": a, "got": b, "count": n} for a, b, n in report.confusions]
    data["errors"] = list(report.errors)
    data["harmful"] = {kind: n for kind, n in report.harmful}
    data["harmful_count"] = report.harmful_count
    data["by_language"] = {lang: {"correct": ok, "total": n, "accuracy": ok / n} for lang, ok, n in report.by_language}
    return data


def summary_line(name: str, report: Report) -> str:
    """One line of the figures issue 14 sets targets for (accuracy, safety, severity, languages, harmful)."""

    def pct(value: float | None) -> str:
        return "  n/a" if value is None else f"{100 * value:5.1f}"

    langs = " ".join(f"{lang} {pct(ok / n)}" for lang, ok, n in report.by_language)
    return (
        f"{name:<28} acc {pct(report.accuracy)} emerg {pct(report.emergency_recall)} "
        f"optout P {pct(report.opt_out_precision)} R {pct(report.opt_out_recall)} "
        f"side {pct(report.side_effect_recall)} sev {pct(report.severity_accuracy)} ({report.severity_support}) "
        f"{langs} harmful {report.harmful_count}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m conversations.evaluate FILE...``: the full report of the classifier on each file, and one
    line each for the classifier and the lexicon rules alone, measured in the same run."""
    parser = argparse.ArgumentParser(prog="python -m conversations.evaluate", description=main.__doc__)
    parser.add_argument("files", nargs="+", metavar="FILE.jsonl")
    parser.add_argument("--errors", type=int, default=20, metavar="N", help="misclassified texts to list")
    args = parser.parse_args(argv)
    from conversations.classify import classify, classify_rules

    lines = []
    for path in args.files:
        try:
            records = load_records(path)
        except EvalFileError as exc:
            print(f"conversations.evaluate: {exc}", file=sys.stderr)
            return 1
        report = evaluate_records(records, classify)
        print(format_report(report, source=path, max_errors=max(0, args.errors)) + "\n")
        name = Path(path).name
        lines.append(summary_line(f"{name[:18]}: ensemble", report))
        lines.append(summary_line(f"{name[:18]}: lexicon only", evaluate_records(records, classify_rules)))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
