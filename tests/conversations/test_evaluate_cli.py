"""Evaluation figures and the `midbot classify` command (stdin lines, --eval report, --json, errors)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from conversations.evaluate import EvalFileError, evaluate, format_report, load_records, report_dict
from conversations.types import Classification

ROOT = Path(__file__).resolve().parents[2]
EXTRA = ROOT / "tests" / "conversations" / "data" / "intents_extra.jsonl"


def _c(intent: str, *also: str, severity: str | None = None, language: str = "en") -> Classification:
    return Classification(text="", intent=intent, also=also, severity=severity, language=language)


def test_figures_by_hand() -> None:
    records = [
        {"text": "a", "intent": "emergency"},
        {"text": "b", "intent": "emergency"},
        {"text": "c", "intent": "opt_out"},
        {"text": "d", "intent": "question"},
        {"text": "e", "intent": "side_effect", "severity": "mild", "lang": "es"},
        {"text": "f", "intent": "confirm", "also": ["side_effect"], "severity": "severe"},
    ]
    predictions = [
        _c("emergency"),
        _c("side_effect"),
        _c("opt_out"),
        _c("opt_out"),
        _c("side_effect", severity="mild", language="es"),
        _c("confirm", "side_effect", severity="mild"),
    ]
    report = evaluate(records, predictions)
    assert report.total == 6 and report.correct == 4
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.emergency_recall == 0.5
    assert report.opt_out_precision == 0.5
    assert report.opt_out_recall == 1.0
    assert report.side_effect_recall == 1.0  # f is recalled through its also label
    assert report.severity_accuracy == 0.5 and report.severity_support == 2
    assert report.language_accuracy == 1.0
    assert ("emergency", "side_effect", 1) in report.confusions
    side = next(s for s in report.labels if s.label == "side_effect")
    assert (side.support, side.predicted, side.correct) == (1, 2, 1)
    assert side.precision == 0.5 and side.recall == 1.0
    text = format_report(report)
    assert "accuracy (primary intent): 66.7% (4/6)" in text
    assert "emergency -> side_effect: 1" in text
    data = report_dict(report)
    assert data["labels"]["opt_out"]["precision"] == 0.5
    assert json.loads(json.dumps(data))["emergency_recall"] == 0.5


def test_figures_without_support_are_none() -> None:
    report = evaluate([{"text": "x", "intent": "ack"}], [_c("ack")])
    assert report.emergency_recall is None and report.opt_out_precision is None
    assert "n/a" in format_report(report)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"text": "ok", "intent": "ack"}\n{bad json\n', ":2: not valid JSON"),
        ('["not", "an", "object"]\n', ":1: not a JSON object"),
        ('{"intent": "ack"}\n', ":1: text: missing"),
        ('{"text": "x", "intent": "happy"}\n', ":1: intent: not an intent label"),
        ('{"text": "x", "intent": "ack", "also": ["nope"]}\n', ":1: also: not an intent label"),
        ('{"text": "x", "intent": "side_effect", "severity": "huge"}\n', ":1: severity:"),
        ('\n{"text": "x", "intent": "ack", "context": "lunch"}\n', ":2: context: unknown context"),
    ],
)
def test_bad_evaluation_files_name_file_and_line(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalFileError, match=reason) as caught:
        load_records(path)
    assert str(caught.value).startswith(str(path))


def _run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8"))
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_reads_plain_and_json_lines_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = 'refil plz\n{"text": "1", "context": "refill_reminder"}\n{"text": "3", "context": null}\nsí\n\n'
    code, out, err = _run_cli(monkeypatch, capsys, ["classify"], stdin)
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["refil plz", "1", "3", "sí", ""]
    assert [r["intent"] for r in rows] == ["refill_request", "confirm", "unknown", "confirm", "unknown"]
    assert set(rows[0]) >= {"text", "intent", "also", "severity", "language", "confidence"}
    assert rows[3]["language"] == "es"
    assert isinstance(rows[1]["confidence"], float)


def test_classify_context_option_applies_to_plain_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run_cli(monkeypatch, capsys, ["classify", "--context", "checkin_severity"], "3\n")
    assert code == 0
    assert json.loads(out) | {"severity": "severe"} == json.loads(out)


def test_classify_reports_bad_lines_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = '{"text": 3}\n{"text": "hi", "context": "brunch"}\n{oops\nthanks\n'
    code, out, err = _run_cli(monkeypatch, capsys, ["classify"], stdin)
    assert code == 1
    assert [json.loads(line)["intent"] for line in out.splitlines()] == ["ack"]
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("midbot classify: line 1: text")
    assert lines[1].startswith("midbot classify: line 2: context")
    assert lines[2].startswith("midbot classify: line 3: not valid JSON")


def test_eval_report_and_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run_cli(monkeypatch, capsys, ["classify", "--eval", str(EXTRA)])
    assert code == 0
    for part in (
        "accuracy (primary intent)",
        "precision",
        "top confusions",
        "emergency recall",
        "opt-out precision",
        "opt-out recall",
        "side-effect recall",
        "severity accuracy",
    ):
        assert part in out
    code, out, _ = _run_cli(monkeypatch, capsys, ["classify", "--eval", str(EXTRA), "--json"])
    data = json.loads(out)
    assert code == 0
    assert data["total"] == len(load_records(EXTRA))
    assert data["accuracy"] >= 0.95 and data["emergency_recall"] == 1.0
    assert set(data["labels"]["emergency"]) == {"precision", "recall", "support", "predicted"}


def test_eval_errors_are_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run_cli(monkeypatch, capsys, ["classify", "--eval", str(tmp_path / "missing.jsonl")])
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "missing.jsonl: cannot read" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "intent": "ack"}\nnot json\n', encoding="utf-8")
    code, _, err = _run_cli(monkeypatch, capsys, ["classify", "--eval", str(bad)])
    assert code == 1 and f"{bad}:2: not valid JSON" in err and "Traceback" not in err


def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _run_cli(monkeypatch, capsys, ["classify", "--context", "lunch"])
    assert caught.value.code == 2
    code, _, err = _run_cli(monkeypatch, capsys, ["classify", "--json"])
    assert code == 2 and "--json" in err


def test_the_real_command_answers_each_line_as_it_comes() -> None:
    """`python -m bot classify` flushes per line: an answer arrives before stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "classify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"me duele mucho el pecho\n")
        proc.stdin.flush()
        first = json.loads(proc.stdout.readline())
        proc.stdin.write(b'{"text": "STOP", "context": "yes_no"}\n')
        proc.stdin.close()
        second = json.loads(proc.stdout.readline())
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert (first["text"], first["intent"], first["language"]) == (
        "me duele mucho el pecho",
        "emergency",
        "es",
    )
    assert second["intent"] == "opt_out"


def test_harmful_errors_and_languages_are_counted() -> None:
    records = [
        {"text": "a", "intent": "emergency", "lang": "en"},
        {"text": "b", "intent": "opt_out", "lang": "es"},
        {"text": "c", "intent": "opt_out", "lang": "en"},
        {"text": "d", "intent": "question", "lang": "en"},
        {"text": "e", "intent": "decline", "lang": "es"},
        {"text": "f", "intent": "confirm", "lang": "es"},
    ]
    predictions = [
        _c("side_effect"),
        _c("decline"),
        _c("confirm"),
        _c("opt_out"),
        _c("confirm"),
        _c("confirm"),
    ]
    report = evaluate(records, predictions)
    assert dict(report.harmful) == {
        "missed emergency": 1,
        "missed opt-out": 1,
        "invented opt-out": 1,
        "no read as yes": 2,  # a "stop" and a "no" read as confirm
    }
    assert report.harmful_count == 5
    assert report.by_language == (("en", 0, 3), ("es", 1, 3))
    text = format_report(report)
    assert "harmful errors:     5" in text and "es 33.3% (1/3)" in text
    assert report_dict(report)["harmful"]["no read as yes"] == 2


def test_the_evaluate_module_prints_ensemble_and_lexicon_figures(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from conversations.evaluate import main as evaluate_main

    path = tmp_path / "set.jsonl"
    rows = [
        {"text": "STOP", "intent": "opt_out", "lang": "en"},
        {"text": "tengo fiebre de 39", "intent": "emergency", "lang": "es"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert evaluate_main([str(path), "--errors", "0"]) == 0
    out = capsys.readouterr().out
    assert "set.jsonl: ensemble" in out and "set.jsonl: lexicon only" in out
    assert "harmful 0" in out
    assert evaluate_main([str(tmp_path / "missing.jsonl")]) == 1
