"""`midbot import {patients,prescriptions,fills}`: exit codes, row errors, re-import, mapping, re-planning."""

from __future__ import annotations

import asyncio
import importlib.machinery
import json
import sys
import types
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.db.migrate import upgrade
from bot.db.models import Fill, Patient, Prescription, Site
from bot.db.session import make_engine, make_sessionmaker
from integrations.dispensary.synthetic import generate_practice, write_csvs
from tests.integrations.dispensary.conftest import add_sites

PATIENTS = """patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,detailed_consent
P1,lakeside,Ana,Ruiz,1958-04-02,(312) 555-0142,es,,true,false
P2,desert,Bob,Lee,1949-11-30,602-555-0101,en,America/Phoenix,yes,1
"""
PRESCRIPTIONS = """prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on
RX1,P1,capecitabine,antimetabolite,medicare_d,active,2026-09-28
RX2,P2,abiraterone,antiandrogen,commercial,received,2026-11-20
"""
FILLS = """fill_id,prescription_id,dispensed_on,days_supply,quantity,copay
F1,RX1,2026-10-01,21,84,10.00
F2,RX1,not-a-date,21,84,10.00
F3,RX1,2026-10-22,21,84,12.5
"""


async def _setup(url: str) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    await add_sites(make_sessionmaker(engine))
    await engine.dispose()


# The command runs its own event loop (asyncio.run), so these tests are synchronous.
@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite store with two sites, named by MIDBOT_DATABASE_URL; cwd is tmp_path."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    asyncio.run(_setup(url))
    monkeypatch.setenv("MIDBOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    return url


def _csv(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, list[str]]:
    code = main(["import", *argv, "--now", "2026-11-24T15:00:00Z"])
    out, err = capsys.readouterr()
    summary = json.loads(out) if out.strip() else None
    return code, summary, [line for line in err.splitlines() if line]


def _rows(url: str, model: Any) -> list[Any]:
    return asyncio.run(_select(url, model))


async def _select(url: str, model: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.scalars(select(model).order_by(model.id))).all())
    finally:
        await engine.dispose()


def test_import_all_three_then_reimport_changes_nothing(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "patients": _csv(tmp_path, "patients.csv", PATIENTS),
        "prescriptions": _csv(tmp_path, "prescriptions.csv", PRESCRIPTIONS),
        "fills": _csv(tmp_path, "fills.csv", FILLS.replace("not-a-date", "2026-10-11")),
    }
    for kind, path in files.items():
        code, summary, errors = _run(capsys, kind, path)
        assert (code, errors) == (0, [])
        assert summary is not None and summary["kind"] == kind and summary["created"] == summary["rows"]
    for kind, path in files.items():
        code, summary, _ = _run(capsys, kind, path)
        assert code == 0 and summary is not None
        assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 0, summary["rows"])
    patients = _rows(db, Patient)
    assert [(p.id, p.phone, p.time_zone, p.detailed_consent) for p in patients] == [
        ("P1", "+13125550142", None, False),
        ("P2", "+16025550101", "America/Phoenix", True),
    ]
    fills = _rows(db, Fill)
    assert [(f.id, f.copay_cents) for f in fills] == [("F1", 1000), ("F2", 1000), ("F3", 1250)]


def test_bad_rows_are_reported_and_good_rows_kept(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, "patients", _csv(tmp_path, "p.csv", PATIENTS))
    _run(capsys, "prescriptions", _csv(tmp_path, "r.csv", PRESCRIPTIONS))
    path = _csv(tmp_path, "fills.csv", FILLS + "F4,RX9,2026-10-01,21,84,1\n")
    code, summary, errors = _run(capsys, "fills", path)
    assert code == 1
    assert errors == [
        f"{path}:3: dispensed_on: not a date (expected YYYY-MM-DD)",
        f"{path}:5: prescription_id: not found",
    ]
    assert summary is not None and (summary["created"], summary["errors"]) == (2, 2)
    assert [f.id for f in _rows(db, Fill)] == ["F1", "F3"]


def test_bad_patient_and_prescription_values(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_patients = PATIENTS + "P3,nowhere,Cy,Doe,1950-01-01,312-555-0143,fr,Mars/Base,maybe,false\n"
    code, _, errors = _run(capsys, "patients", _csv(tmp_path, "p.csv", bad_patients))
    assert code == 1
    assert [e.removeprefix(f"{tmp_path}/p.csv:").split(": ")[:2] for e in errors] == [
        ["4", "language"],
        ["4", "time_zone"],
        ["4", "sms_consent"],
    ]
    code, _, errors = _run(
        capsys, "patients", _csv(tmp_path, "p2.csv", PATIENTS.replace("lakeside", "ghost"))
    )
    assert code == 1 and errors == [f"{tmp_path}/p2.csv:2: site_id: not found"]
    bad_rx = PRESCRIPTIONS.replace("medicare_d,active", "medicare,pending")
    code, _, errors = _run(capsys, "prescriptions", _csv(tmp_path, "r.csv", bad_rx))
    assert code == 1
    assert [e.split(": ")[1] for e in errors] == ["payer_type", "status"]


def test_mapped_columns_and_date_format(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "patients", _csv(tmp_path, "p.csv", PATIENTS))
    _run(capsys, "prescriptions", _csv(tmp_path, "r.csv", PRESCRIPTIONS))
    path = _csv(tmp_path, "theirs.csv", "ID,RX,DATE,DAYS\nF9,RX1,10/01/2026,28\nF10,RX1,2026-10-29,28\n")
    code, summary, errors = _run(
        capsys,
        "fills",
        path,
        "--map",
        "fill_id=ID,prescription_id=RX,dispensed_on=DATE,days_supply=DAYS",
        "--date-format",
        "%m/%d/%Y",
    )
    assert code == 1 and summary is not None and summary["created"] == 1
    assert errors == [f"{path}:3: DATE: not a date (expected %m/%d/%Y)"]
    (fill,) = _rows(db, Fill)
    assert (fill.id, fill.dispensed_on, fill.quantity, fill.copay_cents) == ("F9", date(2026, 10, 1), 0.0, 0)


def test_file_level_errors_are_one_line(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, errors = _run(capsys, "fills", str(tmp_path / "missing.csv"))
    assert code == 1 and errors == [f"midbot: {tmp_path}/missing.csv: no such file"]
    path = _csv(tmp_path, "f.csv", "fill_id,prescription_id,days_supply\nF1,RX1,30\n")
    code, _, errors = _run(capsys, "fills", path)
    assert code == 1 and errors == [f"midbot: {path}: missing column dispensed_on"]
    code, _, errors = _run(capsys, "fills", path, "--map", "when=DATE")
    assert code == 1 and "unknown column 'when'" in errors[0]
    code, _, errors = _run(capsys, "fills", path, "--date-format", "%Q")
    assert code == 1 and errors[0].startswith("midbot: --date-format:")
    with pytest.raises(SystemExit) as usage:
        main(["import", "refills", path])
    assert usage.value.code == 2


def test_progress_bar_when_asked(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, errors = _run(capsys, "patients", _csv(tmp_path, "p.csv", PATIENTS), "--progress")
    assert code == 0
    assert "importing patients" in errors[0] and "2/2 (100%)" in errors[0]


def test_replans_the_affected_patients(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[set[str] | None, datetime]] = []

    class Summary:
        def as_dict(self) -> dict[str, int]:
            return {"planned": 7, "cancelled": 0, "unchanged": 0}

    async def replan(session: Any, *, patient_ids: set[str] | None, now: datetime) -> Summary:
        calls.append((patient_ids, now))
        return Summary()

    planner = types.ModuleType("scheduler.planner")
    planner.__spec__ = importlib.machinery.ModuleSpec("scheduler.planner", None)
    planner.replan = replan  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "scheduler.planner", planner)
    path = _csv(tmp_path, "p.csv", PATIENTS)
    code, summary, _ = _run(capsys, "patients", path)
    assert (
        code == 0
        and summary is not None
        and summary["plan"] == {"planned": 7, "cancelled": 0, "unchanged": 0}
    )
    assert calls == [({"P1", "P2"}, datetime(2026, 11, 24, 15, 0, tzinfo=UTC))]
    _run(capsys, "patients", path)  # nothing changed: nobody to re-plan
    assert len(calls) == 1
    _, summary, _ = _run(capsys, "patients", path, "--no-replan")
    assert summary is not None and summary["plan"] is None


def test_prescription_status_from_csv_is_kept(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, "patients", _csv(tmp_path, "p.csv", PATIENTS))
    _run(capsys, "prescriptions", _csv(tmp_path, "r.csv", PRESCRIPTIONS))
    code, summary, _ = _run(
        capsys, "prescriptions", _csv(tmp_path, "r2.csv", PRESCRIPTIONS.replace("received", "active"))
    )
    assert code == 0 and summary is not None and summary["updated"] == 1
    assert [(r.id, r.status, r.site_id) for r in _rows(db, Prescription)] == [
        ("RX1", "active", "lakeside"),
        ("RX2", "active", "desert"),
    ]


async def _synthetic_sites(url: str, sites: Any) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    async with make_sessionmaker(engine).begin() as session:
        for site in sites:
            session.add(Site(id=site.id, name=site.name, phone=site.phone, time_zone=site.time_zone))
    await engine.dispose()


def test_the_synthetic_practice_csvs_import_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    practice = generate_practice(seed=3, patients=60, today=date(2026, 11, 24))
    url = f"sqlite+aiosqlite:///{tmp_path}/synthetic.db"
    asyncio.run(_synthetic_sites(url, practice.sites))
    monkeypatch.setenv("MIDBOT_DATABASE_URL", url)
    files = write_csvs(practice, tmp_path / "csv")
    for kind in ("patients", "prescriptions", "fills"):
        code, summary, errors = _run(capsys, kind, str(files[kind]), "--no-replan")
        assert (code, errors) == (0, []), errors[:3]
        assert summary is not None and summary["created"] == summary["rows"] > 0
    assert len(_rows(url, Fill)) == len(practice.fills)


def test_three_bad_rows_among_a_thousand(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, "patients", _csv(tmp_path, "p.csv", PATIENTS))
    _run(capsys, "prescriptions", _csv(tmp_path, "r.csv", PRESCRIPTIONS))
    lines = ["fill_id,prescription_id,dispensed_on,days_supply,quantity,copay"]
    bad = {
        137: "F137,RX1,2026-13-40,28,56,0",
        502: "F502,RX1,2026-10-01,many,56,0",
        911: "F911,RX1,2026-10-01,28,56,$x",
    }
    for i in range(1, 1001):
        lines.append(
            bad.get(i, f"F{i},RX{1 + i % 2},2026-{1 + i % 12:02d}-{1 + i % 28:02d},28,56,{i % 50}.00")
        )
    path = _csv(tmp_path, "thousand.csv", "\n".join(lines) + "\n")
    code, summary, errors = _run(capsys, "fills", path)
    assert code == 1
    assert [e.split(":")[1] for e in errors] == ["138", "503", "912"]  # header is row 1
    assert [e.split(": ")[1] for e in errors] == ["dispensed_on", "days_supply", "copay"]
    assert summary is not None and (summary["created"], summary["errors"]) == (997, 3)
    assert len(_rows(db, Fill)) == 997
    code, again, errors = _run(capsys, "fills", path)
    assert again is not None and (again["created"], again["updated"], again["unchanged"]) == (0, 0, 997)


def test_two_imports_at_once_into_one_sqlite_file_both_complete(db: str, tmp_path: Path) -> None:
    """SQLite has one writer: imports commit in short chunks and pause between them, so neither times out
    (at this size a guard; bench_import.py --beside-webhook runs it at 300,000 rows beside live webhooks)."""
    import os
    import subprocess

    header = "prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on\n"
    rx_rows = "".join(f"RX{i},P1,capecitabine,,commercial,active,2026-01-02\n" for i in range(200))
    _csv(tmp_path, "p.csv", PATIENTS)
    assert main(["import", "patients", str(tmp_path / "p.csv"), "--no-replan"]) == 0
    assert main(["import", "prescriptions", _csv(tmp_path, "rx.csv", header + rx_rows), "--no-replan"]) == 0
    fills_header = "fill_id,prescription_id,dispensed_on,days_supply,quantity,copay\n"
    files = []
    for prefix in ("A", "B"):
        rows = "".join(f"{prefix}{i},RX{i % 200},2026-{1 + i % 9:02d}-03,30,60,1.00\n" for i in range(6000))
        files.append(_csv(tmp_path, f"{prefix}.csv", fills_header + rows))
    env = {**os.environ, "MIDBOT_DATABASE_URL": db}
    runs = [
        subprocess.Popen([sys.executable, "-m", "bot", "import", "fills", path], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        for path in files
    ]
    outcomes = [(run.wait(timeout=240), run.communicate()) for run in runs]
    assert [code for code, _ in outcomes] == [0, 0], [err.decode()[-400:] for _, (_, err) in outcomes]
    for _code, (out, _err) in outcomes:
        assert json.loads(out.decode().strip().splitlines()[-1])["created"] == 6000
