"""CSV reading: column mapping, line numbers, file-level errors, date and number parsing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from integrations.dispensary.csvio import (
    CsvFileError,
    MappingError,
    RowError,
    check_date_format,
    parse_date,
    parse_map,
    parse_positive_int,
    read_table,
)

COLUMNS = ("patient_id", "drug", "dispensed_on", "days_supply")


def _write(tmp_path: Path, text: str, name: str = "f.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_rows_are_keyed_by_our_names_with_file_line_numbers(tmp_path: Path) -> None:
    text = '\ufeffPID,WHEN,MED,DAYS,extra\n1,01/02/2030,medA,30,x\n\n2,"01/03/2030",\n"multi\nline",01/04/2030,medB,28,y\n'
    path = _write(tmp_path, text)
    mapping = parse_map("patient_id=PID,drug=MED,dispensed_on=WHEN,days_supply=DAYS", COLUMNS)
    table = read_table(path, COLUMNS, (), mapping)
    assert [line for line, _ in table.rows] == [2, 4, 5]  # the blank line 3 is skipped
    assert table.rows[0][1] == {
        "patient_id": "1",
        "drug": "medA",
        "dispensed_on": "01/02/2030",
        "days_supply": "30",
    }
    assert table.rows[1][1]["drug"] == ""  # a short row reads as empty cells
    assert table.rows[2][1]["patient_id"] == "multi\nline"
    assert table.column("dispensed_on") == "WHEN"
    assert RowError(4, "MED", "required").render("f.csv") == "f.csv:4: MED: required"


def test_missing_columns_are_all_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "patient_id,DATE\n1,2030-01-01\n")
    with pytest.raises(CsvFileError) as err:
        read_table(path, COLUMNS, (), {"dispensed_on": "DATE"})
    assert str(err.value) == f"{path}: missing column drug, days_supply"
    with pytest.raises(CsvFileError, match=r"missing column WHEN \(for dispensed_on\)"):
        read_table(path, COLUMNS[2:3], (), {"dispensed_on": "WHEN"})


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    path = _write(tmp_path, "fill_id\nF1\n")
    table = read_table(path, ("fill_id",), ("copay",))
    assert table.rows == [(2, {"fill_id": "F1"})]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"", "empty file"), (b"a,b\n\xff\xfe,1\n", "not UTF-8")],
)
def test_unusable_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CsvFileError, match=message):
        read_table(path, ("a",))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("patient_id", "expected ours=theirs"),
        ("patient_id=", "expected ours=theirs"),
        ("nope=X", "unknown column 'nope'"),
        ("drug=A,drug=B", "mapped twice"),
    ],
)
def test_bad_maps(spec: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_map(spec, COLUMNS)
    assert parse_map(None, COLUMNS) == {}


def test_dates_and_numbers() -> None:
    assert parse_date("2030-02-03") == date(2030, 2, 3)
    assert parse_date("02/03/2030", "%m/%d/%Y") == date(2030, 2, 3)
    for bad in ("not-a-date", "2030-02-30", "20300203", "2030-2-3"):
        with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
            parse_date(bad)
    with pytest.raises(ValueError, match="required"):
        parse_date("  ")
    with pytest.raises(ValueError, match="expected %m/%d/%Y"):
        parse_date("2030-02-03", "%m/%d/%Y")
    assert parse_positive_int("30") == 30 and parse_positive_int("28.0") == 28
    for bad, why in (
        ("x", "not a number"),
        ("2.5", "whole"),
        ("0", "at least 1"),
        ("inf", "whole"),
        ("", "required"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_positive_int(bad)
    with pytest.raises(ValueError, match="at most 10"):
        parse_positive_int("11", maximum=10)
    check_date_format("%d.%m.%Y")
    with pytest.raises(ValueError, match="cannot read dates"):
        check_date_format("%Y")
