"""`midbot signals export|push|dead-letters|compute` and `midbot metrics`, run in-process."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.cli import main
from bot.db.migrate import upgrade
from bot.db.session import make_engine, make_sessionmaker

from .conftest import SECRET, add_signals, seed_people
from .test_webhook_sink import Receiver


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """MIDBOT_* for the CLI: a file database, no .env, quiet logs; the root logger is restored after."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "MIDBOT_DATABASE_URL": url,
        "MIDBOT_LOG_LEVEL": "WARNING",
        "MIDBOT_LOG_FORMAT": "text",
        "MIDBOT_SIGNAL_WEBHOOK_URL": "",
        "MIDBOT_FHIR_BASE_URL": "",
    }.items():
        monkeypatch.setenv(key, value)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield url
    root.handlers[:], root.level = handlers, level


async def _seed(url: str, signals: int) -> list[int]:
    engine = make_engine(url)
    try:
        await upgrade(engine)
        maker = make_sessionmaker(engine)
        async with maker.begin() as session:
            await seed_people(session)
        return await add_signals(maker, signals)
    finally:
        await engine.dispose()


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_export_ndjson_resumes_from_the_printed_watermark(
    cli_env: str, capsys: pytest.CaptureFixture
) -> None:
    ids = asyncio.run(_seed(cli_env, 5))
    assert main(["signals", "export"]) == 0
    out, err = capsys.readouterr()
    rows = _lines(out)
    assert [r["id"] for r in rows] == ids
    assert set(rows[0]) == {"id", "patient_id", "prescription_id", "site_id", "kind", "value", "source",
                            "source_message_id", "occurred_at", "created_at"}  # fmt: skip
    assert err.strip().endswith(f"last id {ids[-1]}")

    assert main(["signals", "export", "--since", str(ids[2])]) == 0
    out, err = capsys.readouterr()
    assert [r["id"] for r in _lines(out)] == ids[3:]

    assert main(["signals", "export", "--since", str(ids[-1])]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip().endswith(f"last id {ids[-1]}")  # nothing new: the same watermark

    # Signals are stamped one minute apart from 15:00 UTC: from 15:03 on gives the last two.
    assert main(["signals", "export", "--since", "2026-11-24T09:03:00-06:00", "--site", "s1"]) == 0
    out, _ = capsys.readouterr()
    assert [r["id"] for r in _lines(out)] == [ids[4]]  # s1 only: ids[3] is s2's


def test_export_csv_to_a_file(cli_env: str, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    ids = asyncio.run(_seed(cli_env, 3))
    target = tmp_path / "out" / "signals.csv"
    target.parent.mkdir()
    assert main(["signals", "export", "--format", "csv", "--output", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"last id {ids[-1]}" in err
    table = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [int(r["id"]) for r in table] == ids
    assert json.loads(table[1]["value"]) == {"n": 1} and table[0]["prescription_id"] == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["signals", "export", "--since", "last tuesday"], "--since"),
        (["signals", "export", "--site", "nowhere"], "--site"),
        (["signals", "export", "--output", "/no/such/dir/x.csv"], "--output"),
        (["signals", "push"], "no signal sink is configured"),
        (["signals", "push", "--sink", "webhook"], "MIDBOT_SIGNAL_WEBHOOK_URL"),
        (["metrics", "--month", "2026-13"], "--month"),
        (["metrics", "--site", "nowhere"], "--site"),
        (["signals", "compute", "--site", "nowhere"], "--site"),
    ],
)
def test_invalid_input_is_one_line_and_exit_1(
    cli_env: str, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    asyncio.run(_seed(cli_env, 1))
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_bad_usage_is_exit_2(cli_env: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["signals", "export", "--format", "xml"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["signals", "push", "--sink", "pigeon"])
    assert exc.value.code == 2


async def test_push_then_dead_letters_then_replay(
    cli_env: str, capsys: pytest.CaptureFixture, aiohttp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _seed(cli_env, 3)
    receiver = Receiver(always=400)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    monkeypatch.setenv("MIDBOT_SIGNAL_WEBHOOK_URL", str(server.make_url("/hook")))
    monkeypatch.setenv("MIDBOT_SIGNAL_WEBHOOK_SECRET", SECRET)

    assert await asyncio.to_thread(main, ["signals", "push"]) == 0
    report = _lines(capsys.readouterr().out)
    assert len(report) == 1 and report[0]["sink"] == "webhook" and report[0]["dead_lettered"] == 3

    assert await asyncio.to_thread(main, ["signals", "dead-letters"]) == 0
    letters = _lines(capsys.readouterr().out)
    assert [d["signal_id"] for d in letters] == ids and all(d["status"] == "dead" for d in letters)

    receiver.always = None
    assert await asyncio.to_thread(main, ["signals", "dead-letters", "--replay", "--sink", "webhook"]) == 0
    replay = _lines(capsys.readouterr().out)
    assert replay[0]["sent"] == 3 and receiver.accepted == ids

    assert await asyncio.to_thread(main, ["signals", "dead-letters"]) == 0
    assert capsys.readouterr().out == ""  # none left dead
    assert await asyncio.to_thread(main, ["signals", "dead-letters", "--all"]) == 0
    assert {d["status"] for d in _lines(capsys.readouterr().out)} == {"replayed"}


def test_compute_and_metrics(cli_env: str, capsys: pytest.CaptureFixture) -> None:
    asyncio.run(_seed(cli_env, 0))
    assert main(["signals", "compute", "--now", "2026-11-24T15:00:00Z"]) == 0
    assert _lines(capsys.readouterr().out) == [{"recorded": 0}]

    assert main(["metrics", "--site", "s1", "--month", "2026-10", "--now", "2026-11-24T15:00:00Z"]) == 0
    doc = _lines(capsys.readouterr().out)
    assert len(doc) == 1 and doc[0]["site_id"] == "s1" and doc[0]["month"] == "2026-10"
    assert doc[0]["metrics"][0]["key"] == "primary_abandonment" and doc[0]["metrics"][0]["benchmark"] == 5.0

    # Every site, this month in each site's zone, as CSV under one header.
    assert main(["metrics", "--format", "csv", "--now", "2026-12-01T03:00:00Z"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(r["site_id"], r["month"]) for r in table} == {("s1", "2026-11"), ("s2", "2026-11")}
    assert len(table) == 16  # 8 metrics x 2 sites
    assert main(["metrics", "--format", "csv", "--now", "2026-12-01T05:30:00Z"]) == 0
    months = {(r["site_id"], r["month"]) for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert months == {("s1", "2026-11"), ("s2", "2026-12")}  # New York has reached December, Chicago not


def test_export_csv_neutralises_formula_cells(cli_env: str, capsys: pytest.CaptureFixture) -> None:
    """OWASP CSV injection: a source id like ``=HYPERLINK(...)`` is written as text, not as a formula."""
    from bot.db.models import Patient
    from tests.store import record_signal

    from .conftest import T0

    async def seed() -> None:
        engine = make_engine(cli_env)
        try:
            await upgrade(engine)
            maker = make_sessionmaker(engine)
            async with maker.begin() as session:
                await seed_people(session)
                for n, pid in enumerate(['=HYPERLINK("http://x.example","a")', "+1", "-2", "@SUM(1)", "\tA"]):
                    session.add(Patient(id=pid, site_id="s1", first_name="F", last_name="L",
                                        phone=f"+1555111{n:04d}"))  # fmt: skip
                    await session.flush()
                    await record_signal(session, patient_id=pid, site_id="s1", kind="refill_confirmed",
                                        source="patient", occurred_at=T0, created_at=T0, value={"n": -n},
                                        dedupe_key=f"f:{n}")  # fmt: skip
        finally:
            await engine.dispose()

    asyncio.run(seed())
    assert main(["signals", "export", "--format", "csv"]) == 0
    out, _ = capsys.readouterr()
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["patient_id"] for r in table] == ["'=HYPERLINK(\"http://x.example\",\"a\")", "'+1", "'-2",
                                                 "'@SUM(1)", "'\tA"]  # fmt: skip
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in table for cell in r.values())
