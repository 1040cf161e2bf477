"""Property-based: the CSV importer (``midbot import patients``, in-process) and the REST importer (``POST
/api/v1/patients`` through the running app) never fail on any row (no traceback, no 500), never lose a row they
accepted (every row not reported is stored as given), and a re-import of the same rows changes nothing.
Bounded (derandomized, few examples) so the file runs in a few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.cli import main
from bot.db.migrate import upgrade
from bot.db.models import AuditEvent, Patient
from bot.db.session import make_engine, make_sessionmaker
from bot.staff.auth import create_api_token
from tests.e2e.conftest import Stack, add_patient
from tests.integrations.dispensary.conftest import add_sites
from tests.live import StackThread

PROPERTIES = settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
_EXAMPLES = itertools.count()
_text = st.text(max_size=30)
_PATIENT = st.fixed_dictionaries(
    {
        "patient_id": st.one_of(st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True), _text),
        "first_name": st.one_of(st.sampled_from(["Ana", "José", " Lee ", "", "x" * 101]), _text),
        "last_name": st.one_of(st.sampled_from(["Ruiz", "O'Neil", "=HYPERLINK(1)"]), _text),
        "phone": st.one_of(
            st.sampled_from(["(312) 555-0142", "+13125550143", "312-555-0144", "0", "+1"]), _text
        ),
        "birth_date": st.one_of(st.sampled_from(["", "1950-01-02", "2999-01-01", "1950-02-30"]), _text),
        "language": st.sampled_from(["", "en", "es", "ES-mx", "fr"]),
        "sms_consent": st.sampled_from(["true", "false", "yes", "0", "", "maybe"]),
    }
)


def _rows(prefix: str) -> st.SearchStrategy[list[dict[str, str]]]:
    """Patient rows with ids unique within the file (as the importer sees them: stripped)."""
    return st.lists(_PATIENT, min_size=1, max_size=8, unique_by=lambda row: row["patient_id"].strip()).map(
        lambda rows: [{**row, "patient_id": prefix + row["patient_id"]} for row in rows]
    )


async def _patients(url: str, ids: list[str]) -> dict[str, Patient]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return {p.id: p for p in await session.scalars(select(Patient).where(Patient.id.in_(ids)))}
    finally:
        await engine.dispose()


def _check_stored(stored: dict[str, Patient], rows: list[dict[str, str]], site: str) -> None:
    for row in rows:
        patient = stored[row["patient_id"].strip()]
        assert patient.site_id == site and patient.first_name == row["first_name"].strip()
        assert patient.last_name == row["last_name"].strip() and patient.phone.startswith("+")


# -- CSV, through the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_db() -> Iterator[tuple[str, Path]]:
    """A migrated SQLite database with the test sites, as MIDBOT_DATABASE_URL for the in-process CLI."""
    with tempfile.TemporaryDirectory(prefix="midbot-import-props-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/import.db"

        async def prepare() -> None:
            engine = make_engine(url)
            await upgrade(engine)
            await add_sites(make_sessionmaker(engine))
            await engine.dispose()

        asyncio.run(prepare())
        saved = {k: os.environ.get(k) for k in ("MIDBOT_DATABASE_URL", "MIDBOT_LOG_LEVEL")}
        os.environ.update(MIDBOT_DATABASE_URL=url, MIDBOT_LOG_LEVEL="WARNING")
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            yield url, Path(tmp)
        finally:
            root.handlers[:], root.level = handlers, level
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


_ROW_ERROR = re.compile(r"^.+\.csv:(\d+): ", re.MULTILINE)


def _csv_text(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def _breaks(text: str) -> int:
    """Line breaks as the csv reader counts them (io.StringIO with newline="": CRLF, CR or LF)."""
    return len(re.findall(r"\r\n|\r|\n", text))


@PROPERTIES
@given(data=st.data())
def test_csv_import_keeps_every_accepted_row_and_reimport_changes_nothing(
    csv_db: tuple[str, Path], data: st.DataObject
) -> None:
    url, tmp = csv_db
    n = next(_EXAMPLES)
    rows = data.draw(_rows(f"c{n}-"))
    path = tmp / f"patients-{n}.csv"
    header = ["site_id", *_PATIENT_KEYS]
    lines = [_csv_text(header)]
    lines += [_csv_text([row.get(key, "lakeside") for key in header]) for row in rows]
    path.write_text("".join(lines), encoding="utf-8", newline="")
    # Errors name the line a row starts on (a quoted cell may hold line breaks).
    starts = list(itertools.accumulate((_breaks(text) for text in lines[:-1]), initial=1))[1:]
    code, out, err = _run(["import", "patients", str(path), "--no-replan"])
    assert "Traceback" not in err and code in (0, 1), err
    summary = json.loads(out.splitlines()[-1])
    reported = {int(number) for number in _ROW_ERROR.findall(err)}
    rejected = {i for i, start in enumerate(starts) if start in reported}
    assert len(rejected) == len(reported), (reported, starts)
    assert (code == 1) == bool(rejected) and summary["rows"] == len(rows)
    accepted = [row for i, row in enumerate(rows) if i not in rejected]
    assert summary["created"] == len(accepted) and summary["updated"] == 0
    _check_stored(
        asyncio.run(_patients(url, [r["patient_id"].strip() for r in accepted])), accepted, "lakeside"
    )

    code2, out2, err2 = _run(["import", "patients", str(path), "--no-replan"])
    again = json.loads(out2.splitlines()[-1])
    assert (code2, err2) == (code, err)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, len(accepted))


_PATIENT_KEYS = ["patient_id", "first_name", "last_name", "phone", "birth_date", "language", "sms_consent"]


# -- REST, through the running app -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_api() -> Iterator[tuple[StackThread, Stack, str]]:
    with StackThread() as runner:
        stack = runner.start()
        runner.run(add_patient(stack, "P0", "+13125550170"))  # creates site S1

        async def token() -> str:
            async with stack.sessionmaker.begin() as session:
                return (await create_api_token(session, site_id="S1", name="props", now=stack.clock.now()))[1]

        yield runner, stack, runner.run(token())


async def _post_twice(stack: Stack, token: str, items: list[dict[str, Any]]) -> tuple[Any, Any, int, int]:
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    for _ in range(2):
        async with stack.http.post(
            f"{stack.base_url}/api/v1/patients", json=items, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
            answers.append(await response.json())
    ids = [item["patient_id"].strip() for item in items]
    async with stack.sessionmaker() as session:
        audited = await session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.patient_id.in_(ids), AuditEvent.action == "patient.create"
            )
        )
    return answers[0], answers[1], int(audited or 0), len(ids)


@PROPERTIES
@given(data=st.data())
def test_rest_import_keeps_every_accepted_row_is_idempotent_and_audited(
    live_api: tuple[StackThread, Stack, str], data: st.DataObject
) -> None:
    runner, stack, token = live_api
    rows = data.draw(_rows(f"r{next(_EXAMPLES)}-"))
    # JSON may carry booleans and numbers where the CSV has text; both are accepted as the CSV columns.
    items: list[dict[str, Any]] = [
        {"site_id": data.draw(st.sampled_from(["S1", "S1", "S1", "nowhere"])), **row,
         "sms_consent": {"true": True, "false": False}.get(row["sms_consent"], row["sms_consent"])}
        for row in rows
    ]  # fmt: skip
    first, second, audited, _ = runner.run(_post_twice(stack, token, items))
    rejected = {error["index"] for error in first["errors"]}
    assert first["rejected"] == len(rejected)
    accepted = [row for i, row in enumerate(rows) if i not in rejected]
    assert all(items[i]["site_id"] == "S1" for i in range(len(rows)) if i not in rejected)
    assert first["created"] == len(accepted) and first["updated"] == 0
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, len(accepted))
    assert second["errors"] == first["errors"]
    assert audited == len(accepted)  # one patient.create each, none for the no-op re-import
    stored = runner.run(_stored_api(stack, [row["patient_id"].strip() for row in accepted]))
    _check_stored(stored, accepted, "S1")


async def _stored_api(stack: Stack, ids: list[str]) -> dict[str, Patient]:
    async with stack.sessionmaker() as session:
        return {p.id: p for p in await session.scalars(select(Patient).where(Patient.id.in_(ids)))}
