"""Cross-check of `midbot adherence` against an independent CMA7 simulation on AdhereR's med_events.

The reference below does not share code with the engine: it keeps a pill stock day by day (each
dispense adds its days; each day with stock is covered and uses one day), which is AdhereR's CMA7
(carry-over from before and within the observation window, supply left at the window's end dropped)
with the observation window starting at the index date. The data file is GPL-licensed and read from
../shared, never copied into this repository.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[3]
MED_EVENTS = ROOT.parent / "shared" / "data" / "adherence" / "med_events.csv"
DOC = ROOT / "docs" / "adherence.md"
MAPPING = "patient_id=PATIENT_ID,drug=CATEGORY,dispensed_on=DATE,days_supply=DURATION"

pytestmark = pytest.mark.skipif(
    not MED_EVENTS.exists(), reason=f"{MED_EVENTS} is absent (AdhereR example data)"
)

Events = dict[tuple[str, str], list[tuple[date, int]]]


def _events() -> Events:
    events: Events = defaultdict(list)
    with MED_EVENTS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            day = datetime.strptime(row["DATE"], "%m/%d/%Y").date()
            events[(row["PATIENT_ID"], row["CATEGORY"])].append((day, int(row["DURATION"])))
    return events


def _simulate(events: list[tuple[date, int]], start: date | None, end: date | None) -> dict[str, Any] | None:
    """CMA7 by stock-keeping: covered days in [index date, end]; end defaults to the last covered day."""
    added: dict[date, int] = defaultdict(int)
    for day, duration in events:
        added[day] += duration
    in_window = sorted(d for d, _ in events if (start is None or d >= start) and (end is None or d <= end))
    if not in_window:
        return None
    index = in_window[0]
    day, stock, covered_days = min(added), 0, []
    while stock > 0 or day <= max(added):
        stock += added.get(day, 0)
        if stock > 0:
            covered_days.append(day)
            stock -= 1
        day += timedelta(days=1)
    last = end if end is not None else covered_days[-1]
    covered = sum(1 for d in covered_days if index <= d <= last)
    days = (last - index).days + 1
    return {"index_date": index.isoformat(), "days_in_period": days, "days_covered": covered}


def _cli(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    code = main(["adherence", str(MED_EVENTS), "--map", MAPPING, "--date-format", "%m/%d/%Y", *extra])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return [json.loads(line) for line in out.splitlines()]


def _compare(rows: list[dict[str, Any]], events: Events, start: date | None, end: date | None) -> int:
    assert {(str(r["patient_id"]), str(r["drug"])) for r in rows} == set(events)
    compared = 0
    for row in rows:
        expected = _simulate(events[(str(row["patient_id"]), str(row["drug"]))], start, end)
        if expected is None:
            assert row["pdc"] is None
            continue
        got = {k: row[k] for k in expected}
        assert got == expected, (row["patient_id"], row["drug"])
        assert row["pdc"] == round(int(expected["days_covered"]) / int(expected["days_in_period"]), 4)
        assert row["gap_days"] == int(expected["days_in_period"]) - int(expected["days_covered"])
        compared += 1
    return compared


def test_every_patient_drug_agrees_with_the_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    events = _events()
    assert sum(len(v) for v in events.values()) == 1080
    build_parser()  # import every command module first: the timing below is of the command alone
    started = time.perf_counter()
    rows = _cli(capsys)
    elapsed = time.perf_counter() - started
    assert _compare(rows, events, None, None) == len(events) == 200
    assert elapsed < 1.0  # the command itself; process start-up is measured in docs/adherence.md


def test_fixed_window_with_carry_in_and_truncation_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    events = _events()
    start, end = date(2034, 1, 1), date(2035, 6, 30)
    rows = _cli(capsys, "--period-start", start.isoformat(), "--period-end", end.isoformat())
    compared = _compare(rows, events, start, end)
    assert 0 < compared < len(events)  # some patient-drugs have no fill in the window


def test_documented_mean_pdc_is_the_computed_one(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _cli(capsys)
    mean = sum(float(r["pdc"]) for r in rows) / len(rows)
    adherent = sum(1 for r in rows if r["adherent"])
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"mean PDC over med_events\.csv: \*\*(\d\.\d{4})\*\* \((\d+) of (\d+) adherent\)", text)
    assert match is not None, "docs/adherence.md states the mean PDC"
    assert (float(match.group(1)), int(match.group(2)), int(match.group(3))) == (
        round(mean, 4),
        adherent,
        len(rows),
    )
