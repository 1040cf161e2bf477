"""`midbot adherence FILE.csv`: output shape and order, windows, abandonment, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main

FILLS = """patient_id,drug,dispensed_on,days_supply
10,capecitabine,2026-01-01,30
2,olaparib,2026-01-01,30
2,capecitabine,2026-01-01,30
2,capecitabine,2026-01-25,30
2,capecitabine,2026-03-20,30
10,capecitabine,2026-01-31,30
"""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], list[str]]:
    code = main(["adherence", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err.splitlines()


def _csv(tmp_path: Path, text: str, name: str = "fills.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_one_sorted_line_per_patient_drug(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, rows, errors = _run(capsys, _csv(tmp_path, FILLS))
    assert (code, errors) == (0, [])
    assert [(r["patient_id"], r["drug"]) for r in rows] == [
        ("2", "capecitabine"),
        ("2", "olaparib"),
        ("10", "capecitabine"),
    ]
    cape = rows[0]
    assert list(cape)[:12] == [
        "patient_id",
        "drug",
        "index_date",
        "period_end",
        "days_in_period",
        "days_covered",
        "pdc",
        "adherent",
        "max_gap_days",
        "gap_days",
        "fills",
        "mpr",
    ]
    # 1/01-3/01 (the early refill carried forward), gap 3/02-3/19, then 3/20-4/18.
    assert cape["index_date"] == "2026-01-01" and cape["period_end"] == "2026-04-18"
    assert (cape["days_in_period"], cape["days_covered"], cape["gap_days"], cape["max_gap_days"]) == (
        108,
        90,
        18,
        18,
    )
    assert cape["pdc"] == 0.8333 and cape["adherent"] is True and cape["fills"] == 3
    # Judged at the file's last dispense (3/20): capecitabine is in supply, olaparib ran out 1/31.
    assert cape["abandonment"] == {
        "secondary": False,
        "days_since_run_out": 0,
        "run_out": "2026-04-19",
        "as_of": "2026-03-20",
    }
    assert rows[1]["abandonment"]["days_since_run_out"] == 48 and rows[1]["abandonment"]["secondary"] is True
    assert rows[2]["pdc"] == 1.0


def test_as_of_sets_the_period_end_and_the_abandonment_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, _ = _run(capsys, _csv(tmp_path, FILLS), "--as-of", "2026-06-30")
    assert code == 0
    patient_10 = rows[2]
    assert patient_10["period_end"] == "2026-06-30"
    assert (patient_10["days_in_period"], patient_10["days_covered"]) == (181, 60)
    assert patient_10["abandonment"] == {
        "secondary": True,
        "days_since_run_out": 120,
        "run_out": "2026-03-02",
        "as_of": "2026-06-30",
    }


def test_explicit_period_and_a_patient_drug_without_fills_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, _ = _run(
        capsys, _csv(tmp_path, FILLS), "--period-start", "2026-01-20", "--period-end", "2026-03-31"
    )
    assert code == 0
    cape, olaparib, patient_10 = rows
    assert cape["index_date"] == "2026-01-25" and cape["fills"] == 2
    # The 1/01 fill carries in: 1/25-3/01 covered, gap to 3/19, covered 3/20-3/31.
    assert (cape["days_in_period"], cape["days_covered"]) == (66, 48)
    assert olaparib["pdc"] is None and olaparib["fills"] == 0 and olaparib["abandonment"]["secondary"] is True
    assert patient_10["index_date"] == "2026-01-31"


def test_mapped_columns_and_date_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "PATIENT_ID,DATE,PERDAY,CATEGORY,DURATION\n1,04/26/2033,4,medA,50\n1,06/10/2033,4,medA,50\n"
    code, rows, _ = _run(
        capsys,
        _csv(tmp_path, text),
        "--map",
        "patient_id=PATIENT_ID,drug=CATEGORY,dispensed_on=DATE,days_supply=DURATION",
        "--date-format",
        "%m/%d/%Y",
    )
    assert code == 0 and rows[0]["days_covered"] == 100 and rows[0]["pdc"] == 1.0


def test_bad_rows_are_named_and_good_results_still_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = FILLS + "3,olaparib,not-a-date,30\n4,,2026-01-01,0\n"
    path = _csv(tmp_path, text)
    code, rows, errors = _run(capsys, path)
    assert code == 1
    assert len(rows) == 3
    assert errors == [
        f"{path}:8: dispensed_on: not a date (expected YYYY-MM-DD)",
        f"{path}:9: drug: required",
        f"{path}:9: days_supply: must be at least 1",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.csv"], "missing.csv: no such file"),
        (["{bad}"], "missing column days_supply"),
        (["{good}", "--period-end", "2026-02-30"], "--period-end: not a date"),
        (["{good}", "--period-start", "2026-03-01", "--period-end", "2026-02-01"], "before --period-start"),
        (["{good}", "--map", "drug"], "--map: expected ours=theirs"),
        (["{good}", "--threshold", "1.5"], "--threshold"),
    ],
)
def test_invalid_input_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    files = {
        "{good}": _csv(tmp_path, FILLS),
        "{bad}": _csv(tmp_path, "patient_id,drug,dispensed_on\n", "bad.csv"),
    }
    code, rows, errors = _run(capsys, *[files.get(a, a) for a in argv])
    assert code == 1 and rows == []
    assert len(errors) == 1 and errors[0].startswith("midbot: ") and message in errors[0]
