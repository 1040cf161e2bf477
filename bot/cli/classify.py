"""`midbot classify`: intents of patient texts read from stdin, or an evaluation report on a labelled file."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from typing import IO, Any

from bot.cli.common import CliError
from conversations.classify import classify
from conversations.evaluate import EvalFileError, evaluate_records, format_report, load_records, report_dict
from conversations.types import CONTEXTS, Classification

ORDER = 75
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `classify`."""
    parser = sub.add_parser(
        "classify",
        help="classify patient texts (stdin, one per line) or evaluate on a labelled JSONL file",
        description="Reads one message per line on stdin: plain text, or a JSON object "
        '{"text": ..., "context": ...} with context one of ' + ", ".join(sorted(CONTEXTS)) + ". Writes one "
        'JSON object per input line, in order: {"text", "intent", "also", "severity", "language", '
        '"confidence", "values", "symptoms"}. A bad JSON line is reported on stderr with its number (exit 1). '
        "With --eval FILE.jsonl, prints accuracy, a per-label table, confusions and safety figures instead.",
    )
    parser.add_argument(
        "--eval", metavar="FILE.jsonl", help="evaluate on labelled JSON lines (DESIGN.md format)"
    )
    parser.add_argument(
        "--json", action="store_true", help="with --eval: one JSON object instead of the report"
    )
    parser.add_argument(
        "--context",
        choices=sorted(CONTEXTS),
        help="the question plain-text lines answer (JSON lines give their own)",
    )
    parser.add_argument(
        "--errors",
        type=int,
        default=20,
        metavar="N",
        help="with --eval: list at most N misclassified messages (default 20)",
    )
    parser.set_defaults(func=cmd_classify)


def result_dict(result: Classification) -> dict[str, Any]:
    """The JSON line written for one classified text."""
    return {
        "text": result.text,
        "intent": result.intent,
        "also": list(result.also),
        "severity": result.severity,
        "language": result.language,
        "confidence": result.confidence,
        "values": result.values,
        "symptoms": list(result.symptoms),
    }


def _parse_line(text: str, default_context: str | None) -> tuple[str, str | None]:
    """(text, context) of one input line; raises ValueError with the reason for a bad JSON line."""
    if not text.lstrip().startswith(("{", '"')):
        return text, default_context
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    if isinstance(data, str):
        return data, default_context
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object or string, got {type(data).__name__}")
    if not isinstance(data.get("text"), str):
        raise ValueError("text: missing or not a string")
    context = data.get("context", default_context)
    if context is not None and context not in CONTEXTS:
        raise ValueError(f"context: unknown context {context!r} (one of {', '.join(sorted(CONTEXTS))})")
    return data["text"], context


def classify_lines(lines: Iterable[bytes], out: IO[str], err: IO[str], context: str | None = None) -> int:
    """Classify input lines, writing one JSON line each (flushed); returns how many lines were bad."""
    bad = 0
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        try:
            body, line_context = _parse_line(text, context)
        except ValueError as exc:
            bad += 1
            print(f"midbot classify: line {number}: {exc}", file=err)
            err.flush()
            continue
        out.write(json.dumps(result_dict(classify(body, line_context)), ensure_ascii=False) + "\n")
        out.flush()
    return bad


def _evaluate(args: argparse.Namespace) -> int:
    try:
        records = load_records(args.eval)
    except EvalFileError as exc:
        raise CliError(str(exc)) from None
    report = evaluate_records(records)
    if args.json:
        print(json.dumps(report_dict(report), ensure_ascii=False))
    else:
        print(format_report(report, source=args.eval, max_errors=max(0, args.errors)))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify stdin, or evaluate a labelled file with --eval."""
    if args.eval is not None:
        return _evaluate(args)
    if args.json:
        raise CliError("--json: only with --eval (classification lines are always JSON)", code=2)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    return 1 if classify_lines(sys.stdin.buffer, sys.stdout, sys.stderr, args.context) else 0
