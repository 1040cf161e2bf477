"""`midbot simulate` (issue 17): figures of a hand-computed cohort, the same bytes for the same seed, the HTML
report, bad arguments. The cohort is imported through the real CLI into a database the simulation only reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main

# Reminders 5 and 2 days before the run-out, due at 08:00: before the site's quiet hours end (09:00), so the
# dispatcher holds each one until 09:00.
PROGRAMS = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
    send_at: "08:00"
    expire_after_hours: 24
"""
START = "2026-04-06"  # a Monday; the two simulated weeks are 04-06..04-12 and 04-13..04-19 (Chicago)
# Nobody does anything unless a test says so.
SILENT = {"reply_rate": 0, "checkin_completion": 0, "opt_out_rate": 0, "question_rate": 0}


@pytest.fixture
def cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three patients of site S1 (America/Chicago, quiet hours 09:00-20:00), 28-day fills:

    P1 (English) filled 03-20: supply runs out 04-17, reminders due 04-12 and 04-15;
    P2 (Spanish) filled 03-23: runs out 04-20, reminders due 04-15 and 04-18;
    P3 filled 03-20 but gave no SMS consent: nothing.
    """
    _import_cohort(tmp_path, monkeypatch, f"sqlite+aiosqlite:///{tmp_path}/midbot.db")
    return tmp_path


def _import_cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MIDBOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    rows = {
        "patients": [
            "patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,"
            "detailed_consent",
            "P1,S1,Ana,Uno,1950-01-02,+13125550101,en,,true,false",
            "P2,S1,Beto,Dos,1951-02-03,+13125550102,es,,true,false",
            "P3,S1,Cora,Tres,1952-03-04,+13125550103,en,,false,false",
        ],
        "prescriptions": [
            "prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on",
            "RX1,P1,capecitabine,oncology,commercial,active,2026-03-01",
            "RX2,P2,capecitabine,oncology,commercial,active,2026-03-01",
            "RX3,P3,capecitabine,oncology,commercial,active,2026-03-01",
        ],
        "fills": [
            "fill_id,prescription_id,dispensed_on,days_supply,quantity,copay",
            "F1,RX1,2026-03-20,28,56,10.00",
            "F2,RX2,2026-03-23,28,56,10.00",
            "F3,RX3,2026-03-20,28,56,10.00",
        ],
    }
    site = ["sites", "add", "S1", "--name", "Clinic", "--phone", "+13125550000"]
    assert main([*site, "--time-zone", "America/Chicago"]) == 0
    for kind, lines in rows.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text("\n".join(lines) + "\n")
        assert main(["import", kind, str(path), "--no-replan"]) == 0
    (tmp_path / "programs.yaml").write_text(PROGRAMS)


def _simulate(
    folder: Path, capsys: pytest.CaptureFixture[str], rates: dict[str, float], *extra: str
) -> dict[str, Any]:
    (folder / "rates.json").write_text(json.dumps(rates))
    capsys.readouterr()
    argv = ["simulate", "--site", "S1", "--weeks", "2", "--start", START, "--seed", "3"]
    argv += ["--programs", str(folder / "programs.yaml"), "--rates", str(folder / "rates.json")]
    assert main([*argv, "--price-per-segment", "0.01", *extra]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    report: dict[str, Any] = json.loads(out)
    return report


def _week(report: dict[str, Any], n: int) -> dict[str, Any]:
    return report["weeks"][n - 1]


def _refill_days(week: dict[str, Any], what: str) -> dict[str, int]:
    return {day: q["refill"][what] for day, q in week["tasks_per_day"].items() if q["refill"][what]}


def test_nobody_answers_reminders_follow_ups_and_unreachable_tasks(
    cohort: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """By hand (each text at 09:00, the 08:00 reminders held by quiet hours):

    P1: reminder 04-12; no answer, follow-up 04-13 (24 h); 72 h after the reminder (04-15 09:00) the dialog
    ends with an "unreachable" refill task, and the second reminder, held for the open dialog until then,
    goes out; follow-up 04-16, task 04-18. P2: reminder 04-15, follow-up 04-16, second reminder 04-18 (held
    until its dialog's task at 09:00), follow-up 04-19; its last task (04-21) is after the period.
    Week 1: 1 text (P1's reminder). Week 2: 3 reminders + 4 follow-ups, 3 refill tasks (04-15: 1, 04-18: 2).
    SLA 24 h on business days: the 04-15 task is due 04-16; the Saturday ones on Monday 04-20 (after).
    P3 (no consent) gets nothing.
    """
    report = _simulate(cohort, capsys, SILENT)
    one, two = _week(report, 1), _week(report, 2)
    assert (one["from"], one["to"], two["from"], two["to"]) == (
        "2026-04-06",
        "2026-04-12",
        "2026-04-13",
        "2026-04-19",
    )
    assert (one["outreach_texts"], one["reply_texts"], one["texts"]) == (1, 0, 1)
    assert (two["outreach_texts"], two["reply_texts"], two["texts"]) == (3, 4, 7)
    assert (one["refill_reminders"], one["reminders_before_run_out"]) == (1, 1)
    assert (two["refill_reminders"], two["reminders_before_run_out"]) == (3, 3)
    assert (one["patients_texted"], two["patients_texted"]) == (1, 2)
    assert one["replies_received"] == two["replies_received"] == 0
    assert one["tasks"] == {"urgent_clinical": 0, "clinical": 0, "refill": 0, "financial": 0, "general": 0}
    assert two["tasks"] == {"urgent_clinical": 0, "clinical": 0, "refill": 3, "financial": 0, "general": 0}
    assert _refill_days(two, "opened") == {"2026-04-15": 1, "2026-04-18": 2}
    assert _refill_days(two, "due") == {"2026-04-16": 1}
    assert one["not_sent"] == two["not_sent"] == {}
    assert one["opt_outs"] == two["opt_outs"] == 0
    for week in (one, two):  # the price is 1 cent a segment, and every text is at least one segment
        assert week["segments"] >= week["texts"]
        assert week["cost"] == pytest.approx(week["segments"] / 100)
    totals = report["totals"]
    assert (totals["texts"], totals["refill_reminders"], totals["tasks"]["refill"]) == (8, 4, 3)
    assert report["simulation"]["patients"] == 3
    assert report["simulation"]["source"] == "database"


def test_everyone_refills_at_the_first_reminder(cohort: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """By hand: P1 answers its 04-12 reminder "1" (refill), is asked delivery or pickup, answers "1"
    (delivery): two replies from midbot, one refill task, and the 04-15 reminder is cancelled (answered).
    The refill is dispensed the next day (28 days from 04-17 on: next run-out 05-15, after the period).
    P2 does the same on 04-15; its 04-18 reminder is cancelled.
    """
    rates = {**SILENT, "reply_rate": 1, "in_dialog": 1, "refill_yes": 1, "refill_enough": 0}
    rates["delivery_share"] = 1
    report = _simulate(cohort, capsys, rates)
    one, two = _week(report, 1), _week(report, 2)
    assert (one["outreach_texts"], one["reply_texts"], one["replies_received"]) == (1, 2, 2)
    assert (two["outreach_texts"], two["reply_texts"], two["replies_received"]) == (1, 2, 2)
    assert _refill_days(one, "opened") == {"2026-04-12": 1}
    assert _refill_days(two, "opened") == {"2026-04-15": 1}
    # A task opened on Sunday 04-12 is due Monday 04-13, the one of Wednesday 04-15 on Thursday.
    assert _refill_days(two, "due") == {"2026-04-13": 1, "2026-04-16": 1}
    assert one["not_sent"] == {}
    assert two["not_sent"] == {"answered": 2}
    assert report["totals"]["refill_reminders"] == report["totals"]["reminders_before_run_out"] == 2


def test_a_stop_ends_the_program(cohort: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """By hand: each patient answers their first reminder STOP: opted out (P1 in week 1, P2 in week 2), no
    reply (Twilio's Advanced Opt-Out confirms the keyword), the second reminders cancelled (opted_out)."""
    report = _simulate(cohort, capsys, {**SILENT, "reply_rate": 1, "opt_out_rate": 1})
    one, two = _week(report, 1), _week(report, 2)
    assert (one["opt_outs"], two["opt_outs"]) == (1, 1)
    assert (one["texts"], two["texts"]) == (1, 1)
    assert (one["replies_received"], two["replies_received"]) == (1, 1)
    assert two["not_sent"] == {"opted_out": 2}
    assert report["totals"]["tasks"]["refill"] == 0


async def test_a_postgresql_store_is_copied_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    """The same cohort in PostgreSQL: the copy into SQLite gives the same figures as from SQLite."""
    sqlite_dir, pg_dir = tmp_path / "sqlite", tmp_path / "pg"
    sqlite_dir.mkdir()
    pg_dir.mkdir()
    # The CLI runs its own event loop: off this test's loop, in a thread.
    await asyncio.to_thread(
        _import_cohort, sqlite_dir, monkeypatch, f"sqlite+aiosqlite:///{sqlite_dir}/midbot.db"
    )
    expected = await asyncio.to_thread(_simulate, sqlite_dir, capsys, SILENT)
    await asyncio.to_thread(_import_cohort, pg_dir, monkeypatch, postgres_url)
    found = await asyncio.to_thread(_simulate, pg_dir, capsys, SILENT)
    assert found["weeks"] == expected["weeks"]
    assert found["simulation"]["source"] == "database"


def test_the_html_report_is_self_contained(cohort: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = cohort / "report.html"
    report = _simulate(cohort, capsys, SILENT, "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") >= 3
    assert "<script" not in html and "src=" not in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert f"${report['totals']['cost']:.2f}" in html


def test_the_source_database_is_only_read(cohort: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = cohort / "midbot.db"
    before = database.read_bytes()
    _simulate(cohort, capsys, {**SILENT, "reply_rate": 1})
    assert database.read_bytes() == before


def _start(folder: Path, *argv: str, seed: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "MIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/x.db"}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "simulate", *argv],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_same_seed_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two processes (string hashing seeded differently) on a synthetic practice: identical JSON and HTML."""
    argv = ["--synthetic", "25", "--weeks", "1", "--seed", "5", "--start", "2026-05-04"]
    runs = [_start(tmp_path, *argv, "--html", f"{n}.html", seed=n) for n in ("1", "2")]
    (out1, err1), (out2, err2) = (run.communicate(timeout=120) for run in runs)
    assert [run.returncode for run in runs] == [0, 0], err1 + err2
    assert out1 == out2
    assert (tmp_path / "1.html").read_bytes() == (tmp_path / "2.html").read_bytes()
    report = json.loads(out1)
    assert report["simulation"]["source"] == "synthetic"
    assert report["weeks"][0]["texts"] > 0
    assert not (tmp_path / "x.db").exists()  # a missing database is not created
    monkeypatch.setenv("MIDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    capsys.readouterr()
    assert main(["simulate", *argv]) == 0  # in this process: the same again
    assert capsys.readouterr().out == out1
    assert main(["simulate", *argv[:-3], "6", *argv[-2:]]) == 0  # another seed: other answers
    assert capsys.readouterr().out != out1


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--weeks", "0"], 2, "--weeks"),
        (["--weeks", "four"], 2, "--weeks"),
        (["--seed", "-1"], 2, "--seed"),
        (["--price-per-segment", "-0.01"], 2, "--price-per-segment"),
        (["--price-per-segment", "cheap"], 2, "--price-per-segment"),
        (["--start", "04/06/2026"], 2, "--start"),
        (["--synthetic", "0"], 2, "--synthetic"),
        (["--html", "no/such/folder/r.html"], 2, "--html"),
        (["--bogus"], 2, "unrecognized arguments"),
        (["--site", "nowhere", "--synthetic", "1"], 1, "--site"),
        (["--programs", "missing.yaml"], 1, "missing.yaml"),
        (["--rates", "rates.json"], 1, "unknown rate"),
    ],
)
def test_bad_arguments_get_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    needle: str,
) -> None:
    monkeypatch.setenv("MIDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/none.db")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rates.json").write_text('{"reply_rat": 1}')
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(["simulate", "--weeks", "1", *argv]))
    out, err = capsys.readouterr()
    assert exited.value.code == code
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err
