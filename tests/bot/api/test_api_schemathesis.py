"""schemathesis against the real app: every answer of /api/v1 is as its OpenAPI document says, and none is a 5xx.

The app runs in this process on 127.0.0.1 with a seeded SQLite store and SMS going to the local Twilio simulator;
the schemathesis CLI runs in a subprocess (fixed seed, a bounded number of cases per operation, every phase:
examples, coverage, fuzzing and stateful, the latter following the document's links) with a site's token.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.clock import FixedClock
from bot.keys import SESSIONMAKER
from bot.logs import AccessLog
from bot.settings import Settings
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator
from tests.bot.support import build_app, migrate, seed
from tests.store import open_task, record_signal

SEED = 20261124
MAX_EXAMPLES = 15  # per operation and phase: about 1,500 cases
TIME_LIMIT = 110  # seconds: the run is killed (and fails) past this
# Every check schemathesis has (no 5xx; status codes, media types, headers and bodies as documented; invalid
# input refused; unsupported methods 405; no answer without credentials; ...) but two that do not fit this API:
# valid-looking input is not always accepted (random ids are 404, a snooze must fall within 30 days), and the
# imports answer 200 naming the rows they refused, by design (good rows are kept).
CONFIG = """
[checks]
positive_data_acceptance.enabled = false

[[operations]]
include-tag = "imports"
checks.negative_data_rejection.enabled = false
"""
ACCOUNT = "AC" + "e" * 32
AUTH = "schemathesis-auth-token"


async def _more_records(app: web.Application, now: datetime) -> None:
    """Tasks in every queue (the stateful phase claims, moves and resolves them) and signals to page through."""
    queues = ("clinical", "refill", "financial", "general")
    async with app[SESSIONMAKER].begin() as session:
        for n in range(40):
            await open_task(session, site_id="north", queue=queues[n % 4], kind="question", title=f"Question {n}",
                            now=now - timedelta(minutes=n), patient_id="pat-n2")  # fmt: skip
        for n in range(5):
            await record_signal(session, patient_id="pat-n1", site_id="north", kind="side_effect",
                                source="patient", occurred_at=now - timedelta(days=n), value={"severity": "mild"},
                                dedupe_key=f"fuzz-{n}")  # fmt: skip


def _command(port: int, token: str, config: Path, report: Path) -> list[str]:
    return [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"http://127.0.0.1:{port}/api/v1/openapi.json", "--header", f"Authorization: Bearer {token}",
        "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,coverage,fuzzing,stateful",
        "--workers", "1", "--continue-on-failure", "--generation-database", "none", "--request-timeout", "10",
        "--no-color", "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip


async def _run(command: list[str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TIME_LIMIT)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        pytest.fail(f"schemathesis ran past {TIME_LIMIT} s:\n{out.decode(errors='replace')[-4000:]}")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def _summary(report: dict[str, Any], seconds: float) -> str:
    cases = report["test_cases"]
    return (
        f"schemathesis {report['schemathesis_version']} seed {report['seed']}: {cases['generated']} cases, "
        f"{report['operations']['tested']}/{report['operations']['total']} operations, "
        f"{len(report['failures'])} failures, {len(report['errors'])} errors, {seconds:.0f} s"
    )


async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    tmp_path: Path, output_dir: Path
) -> None:
    clock = FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))  # a Tuesday, inside the sending window
    sim_runner, sim_url = await start_simulator(
        SimulatorConfig(account_sid=ACCOUNT, auth_token=AUTH, callback_delays=(0.0, 0.0), seed=7)
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before its port is shared: no other process can take it meanwhile
    port = int(sock.getsockname()[1])
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/fuzz.db", public_base_url=f"http://127.0.0.1:{port}",
        twilio_api_base_url=sim_url, twilio_account_sid=ACCOUNT, twilio_auth_token=AUTH, run_dispatcher=False,
        log_format="text", twilio_timeout_seconds=5,
    )  # fmt: skip
    await migrate(settings)
    app = build_app(settings, clock)
    # As production: no access log (fuzzed paths are random digits that read like phone numbers to the PHI scan).
    runner = web.AppRunner(app, access_log=None, access_log_class=AccessLog)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        seeded = await seed(app[SESSIONMAKER], clock.now())
        await _more_records(app, clock.now())
        report_path, config = tmp_path / "schemathesis.json", tmp_path / "schemathesis.toml"
        config.write_text(CONFIG, encoding="utf-8")
        started = time.monotonic()
        code, output = await _run(_command(port, seeded.tokens["north"], config, report_path), tmp_path)
        seconds = time.monotonic() - started
    finally:
        await runner.cleanup()
        await sim_runner.cleanup()
    assert report_path.exists(), output[-4000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    summary = _summary(report, seconds)
    # For people to look at (the numbers go to the README): the summary and the CLI's own account.
    (output_dir / "schemathesis.txt").write_text(summary + "\n\n" + output, encoding="utf-8")
    print(summary)
    assert report["complete"] and report["operations"]["tested"] == report["operations"]["total"] >= 20, summary
    assert report["test_cases"]["generated"] >= 1000, summary
    assert report["failures"] == [] and report["errors"] == [], summary + "\n" + output[-8000:]
    assert code == 0, output[-4000:]
