"""Staging a program set: `programs load --dry-run` changes nothing and says what would change per program;
`load --paused` plans and sends nothing until `programs resume` (the real CLI, the real dispatcher, the Twilio
simulator); a pause the dispatcher sees before the planner does still holds; every load is audited."""

# ruff: noqa: F811 - the cli fixture imported from test_cli is requested by name
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_cli import cli, simulator_process  # noqa: F401  (the in-process CLI fixture)
from test_cli_preview import _sent

from tests import phi

NOW = "2026-01-07T12:00:00Z"
SET_A = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
  - id: cost
    kind: copay_assistance
    trigger:
      run_out: {days_before: [7]}
"""
# Edited: refill loses its 2-day reminder, cost is dropped, a check-in is added.
SET_B = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5]}
  - id: checkin
    kind: side_effect_checkin
    trigger:
      first_fill: {days_after: [23]}
"""


def _setup(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Site S1 and four patients (two English, two Spanish), each with a 28-day fill on 2026-01-06 (runs out
    2026-02-03: run_out-7 on 01-27, run_out-5 on 01-29, run_out-2 on 02-01, first_fill-23 on 01-29)."""
    assert run("sites", "add", "S1", "--name", "Lakeside", "--phone", "+15005550006",
               "--time-zone", "America/Chicago", "--send-rate", "50")[0] == 0  # fmt: skip
    rows = {
        "patients": ["patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,"
                     "detailed_consent"],
        "prescriptions": ["prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on"],
        "fills": ["fill_id,prescription_id,dispensed_on,days_supply,quantity,copay"],
    }  # fmt: skip
    for i in range(1, 5):
        lang = "es" if i % 2 == 0 else "en"
        rows["patients"].append(f"P{i},S1,Name{i},Family,1950-01-02,+1312555{i:04d},{lang},,true,false")
        rows["prescriptions"].append(f"RX{i},P{i},capecitabine,oncology,commercial,active,2026-01-05")
        rows["fills"].append(f"F{i},RX{i},2026-01-06,28,56,150.00")
    for kind, lines in rows.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text("\n".join(lines) + "\n")
        assert run("import", kind, str(path), "--no-replan")[0] == 0


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _db(sqlite_url: str) -> sqlite3.Connection:
    return sqlite3.connect(sqlite_url.split(":///", 1)[1])


def _audit(sqlite_url: str) -> list[tuple[str, dict[str, Any]]]:
    with _db(sqlite_url) as db:
        rows = db.execute("SELECT action, detail FROM audit_event WHERE action LIKE 'programs.%' ORDER BY id")
        return [(action, json.loads(detail)) for action, detail in rows]


def _states(run) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((o["patient_id"], o["program_id"], o["step"], f"{o['state']}/{o['reason']}")
                  for o in run("outreach", "list")[1])  # fmt: skip


def test_dry_run_says_what_would_change_per_program_and_changes_nothing(
    cli,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    _setup(cli, tmp_path)
    a, b = _file(tmp_path, "a.yaml", SET_A), _file(tmp_path, "b.yaml", SET_B)
    code, out, err = cli("programs", "load", a, "--site", "S1", "--now", NOW)
    assert code == 0, err
    assert out[0]["plan"]["planned"] == 12 and out[0]["dry_run"] is False
    outreach_before, programs_before = cli("outreach", "list")[1], cli("programs", "list")[1]
    audit_before = _audit(sqlite_url)

    code, out, err = cli("programs", "load", b, "--site", "S1", "--now", NOW, "--dry-run")
    assert code == 0, err
    dry = out[0]
    assert dry["dry_run"] is True
    assert (dry["added"], dry["updated"], dry["removed"]) == (["checkin"], ["refill"], ["cost"])
    assert dry["plan_by_program"] == {
        "checkin": {"planned": 4, "cancelled": 0},
        "cost": {"planned": 0, "cancelled": 4},
        "refill": {"planned": 0, "cancelled": 4},  # the 2-day reminders; the 5-day ones stay as they are
    }
    # Nothing changed: the same outreach rows (ids, states, reasons), programs and audit trail.
    assert cli("outreach", "list")[1] == outreach_before
    assert cli("programs", "list")[1] == programs_before
    assert _audit(sqlite_url) == audit_before

    # The real load does what the dry run said.
    code, out, err = cli("programs", "load", b, "--site", "S1", "--now", NOW)
    assert code == 0 and out[0]["plan_by_program"] == dry["plan_by_program"] and out[0]["dry_run"] is False
    states = _states(cli)
    assert sum(1 for s in states if s[3] == "planned/") == 8  # refill-5 and checkin-23 for four patients
    assert sum(1 for s in states if s[3].startswith("cancelled/")) == 8
    loads = [detail for action, detail in _audit(sqlite_url) if action == "programs.load"]
    assert [d["after"] for d in loads] == [SET_A, SET_B]
    assert (
        loads[0]["before"].startswith("# midbot's default outreach programs") and loads[1]["before"] == SET_A
    )
    assert loads[1]["state"] == "active" and loads[1]["source"] == "cli"


def test_a_paused_load_sends_nothing_until_resumed(
    cli,
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _setup(cli, tmp_path)
    a = _file(tmp_path, "a.yaml", SET_A)
    code, out, err = cli("programs", "load", a, "--site", "S1", "--now", NOW, "--paused")
    assert code == 0, err
    assert out[0]["paused"] == ["cost", "refill"] and out[0]["plan"]["planned"] == 0
    assert cli("outreach", "list")[1] == []
    assert {(p["program_id"], p["paused"]) for p in cli("programs", "list", "--site", "S1")[1]} == {
        ("refill", True),
        ("cost", True),
    }
    # Preview still works on the file: it shows what resuming would send.
    code, preview, err = cli("programs", "preview", a, "--site", "S1", "--days", "30", "--now", NOW)
    assert code == 0 and preview[-1]["texts"] == 12, err

    with simulator_process() as (base_url, account, token):
        monkeypatch.setenv("MIDBOT_TWILIO_API_BASE_URL", base_url)
        monkeypatch.setenv("MIDBOT_TWILIO_ACCOUNT_SID", account)
        monkeypatch.setenv("MIDBOT_TWILIO_AUTH_TOKEN", token)
        for due in ("2026-01-27T16:30:00Z", "2026-01-29T16:30:00Z", "2026-02-01T16:30:00Z"):
            code, result, err = cli("dispatch", "--once", "--now", due)
            assert code == 0 and result[0]["sent"] == 0, err
        assert _sent(base_url) == []

        code, out, err = cli("programs", "resume", "refill", "--now", NOW)  # the only site with it: no --site
        assert code == 0, err
        assert out[0] == {"site": "S1", "resumed": ["refill"], "already": [],
                          "plan": {"planned": 8, "cancelled": 0, "unchanged": 0}}  # fmt: skip
        code, result, err = cli("dispatch", "--once", "--now", "2026-01-29T16:30:00Z")
        assert code == 0 and result[0]["sent"] == 4, err

        # Paused again: the 2-day reminders are held (cancelled, program_paused) and come back on resume.
        code, out, err = cli("programs", "pause", "refill", "--site", "S1", "--now", "2026-01-30T12:00:00Z")
        assert code == 0 and out[0]["paused"] == ["refill"] and out[0]["plan"]["cancelled"] == 4, err
        assert [s for s in _states(cli) if s[2] == "run_out-2"] == [
            (f"P{i}", "refill", "run_out-2", "cancelled/program_paused") for i in range(1, 5)
        ]
        assert cli("dispatch", "--once", "--now", "2026-02-01T16:30:00Z")[1][0]["sent"] == 0
        code, out, err = cli("programs", "resume", "--all", "--site", "S1", "--now", "2026-02-01T16:00:00Z")
        assert code == 0 and out[0]["resumed"] == ["cost", "refill"] and out[0]["plan"]["planned"] == 4, err
        code, result, err = cli("dispatch", "--once", "--now", "2026-02-01T16:30:00Z")
        assert code == 0 and result[0]["sent"] == 4, err
        assert len(_sent(base_url)) == 8
    actions = [action for action, _detail in _audit(sqlite_url)]
    assert actions == ["programs.load", "programs.resume", "programs.pause", "programs.resume"]


def test_the_dispatcher_holds_a_paused_programs_rows_even_before_the_planner_cancels_them(
    cli,
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _setup(cli, tmp_path)
    assert cli("programs", "load", _file(tmp_path, "a.yaml", SET_A), "--site", "S1", "--now", NOW)[0] == 0
    # A pause committed after the rows were planned and before a dispatcher claims them (no re-plan here).
    with _db(sqlite_url) as db:
        db.execute(
            "UPDATE site SET settings = ? WHERE id = 'S1'", (json.dumps({"paused_programs": ["refill"]}),)
        )
    with simulator_process() as (base_url, account, token):
        monkeypatch.setenv("MIDBOT_TWILIO_API_BASE_URL", base_url)
        monkeypatch.setenv("MIDBOT_TWILIO_ACCOUNT_SID", account)
        monkeypatch.setenv("MIDBOT_TWILIO_AUTH_TOKEN", token)
        code, result, err = cli("dispatch", "--once", "--now", "2026-01-29T16:30:00Z")
        assert code == 0 and result[0]["sent"] == 0 and result[0]["cancelled"] == 4, err
        assert _sent(base_url) == []
        five = [s for s in _states(cli) if s[2] == "run_out-5"]
        assert {s[3] for s in five} == {"cancelled/program_paused"}
        code, out, err = cli("programs", "resume", "refill", "--site", "S1", "--now", "2026-01-29T16:40:00Z")
        assert code == 0 and out[0]["plan"] == {"planned": 4, "cancelled": 0, "unchanged": 4}, err  # revived
        code, result, err = cli("dispatch", "--once", "--now", "2026-01-29T16:45:00Z")
        assert code == 0 and result[0]["sent"] == 4, err


def test_reloading_an_unchanged_set_paused_holds_it_and_active_brings_it_back(cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    a = _file(tmp_path, "a.yaml", SET_A)
    assert cli("programs", "load", a, "--site", "S1", "--now", NOW)[1][0]["plan"]["planned"] == 12
    code, out, err = cli("programs", "load", a, "--site", "S1", "--now", NOW, "--paused")
    assert code == 0, err
    assert out[0]["unchanged"] == ["refill", "cost"] and out[0]["paused"] == ["cost", "refill"]
    assert out[0]["plan"] == {"planned": 0, "cancelled": 12, "unchanged": 0}
    assert {s[3] for s in _states(cli)} == {"cancelled/program_paused"}
    code, out, err = cli("programs", "load", a, "--site", "S1", "--now", NOW)
    assert code == 0 and out[0]["paused"] == [] and out[0]["plan"]["planned"] == 12, err
    assert {s[3] for s in _states(cli)} == {"planned/"}


def test_pause_and_resume_name_bad_input(cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    code, _out, err = cli("programs", "resume", "refill")
    assert code == 1 and "no site has loaded program refill" in err
    assert cli("programs", "load", _file(tmp_path, "a.yaml", SET_A), "--site", "S1", "--now", NOW)[0] == 0
    code, _out, err = cli("programs", "pause", "nope", "--site", "S1")
    assert code == 1 and err.strip() == (
        "midbot: ID: site S1 has loaded no program nope (see `midbot programs list`)"
    )
    code, _out, err = cli("programs", "pause", "refill", "--all")
    assert code == 2 and "not both" in err
    code, _out, err = cli("programs", "pause", "refill", "--site", "NOPE")
    assert code == 1 and "--site" in err


def _zone_at_noon() -> tuple[str, date]:
    """A fixed-offset zone where it is now about noon (its local date too): a text due at 10:00 local today
    is due now, inside the sending window, whatever the real clock reads."""
    now = datetime.now(UTC)
    offset = 12 - now.hour  # -11 .. 12
    name = "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return name, (now + timedelta(hours=offset)).date()


def _serve(sqlite_url: str, base_url: str, account: str, token: str) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "MIDBOT_DATABASE_URL": sqlite_url, "MIDBOT_PORT": str(port),
           "MIDBOT_RUN_DISPATCHER": "true", "MIDBOT_DISPATCH_INTERVAL_SECONDS": "0.3",
           "MIDBOT_TWILIO_API_BASE_URL": base_url, "MIDBOT_TWILIO_ACCOUNT_SID": account,
           "MIDBOT_TWILIO_AUTH_TOKEN": token, "MIDBOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "MIDBOT_LOG_FORMAT": "json"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    raise AssertionError("midbot serve did not become ready")


def _wait_sent(base_url: str, count: int, seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(_sent(base_url)) < count:
        time.sleep(0.2)
    return _sent(base_url)


def test_a_running_serve_does_not_start_texting_on_a_paused_load(
    cli,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    zone, today = _zone_at_noon()
    assert (
        cli("sites", "add", "S1", "--name", "Lakeside", "--phone", "+15005550006", "--time-zone", zone)[0]
        == 0
    )
    dispensed = today - timedelta(days=23)  # a 28-day supply: runs out in 5 days, so run_out-5 is today 10:00
    files = {
        "patients": "patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,"
        "detailed_consent\nP1,S1,Name1,Family,1950-01-02,+13125550001,en,,true,false\n",
        "prescriptions": "prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on\n"
        f"RX1,P1,capecitabine,oncology,commercial,active,{dispensed.isoformat()}\n",
        "fills": f"fill_id,prescription_id,dispensed_on,days_supply,quantity,copay\nF1,RX1,{dispensed},28,56,0\n",
    }
    for kind, text in files.items():
        assert cli("import", kind, _file(tmp_path, f"{kind}.csv", text), "--no-replan")[0] == 0
    refill = _file(tmp_path, "refill.yaml", SET_A.split("  - id: cost")[0])
    with simulator_process() as (base_url, account, token):
        proc, _port = _serve(sqlite_url, base_url, account, token)
        try:
            code, out, err = cli("programs", "load", refill, "--site", "S1", "--paused")
            assert code == 0 and out[0]["paused"] == ["refill"], err
            time.sleep(2.0)  # several dispatcher ticks of the running serve
            assert _sent(base_url) == []
            code, out, err = cli("programs", "resume", "--all", "--site", "S1")
            assert code == 0 and out[0]["plan"]["planned"] == 2, err  # today 10:00 and in 3 days
            sent = _wait_sent(base_url, 1, 15)  # the same serve sends it now: it was live all along
            assert [m["to"] for m in sent] == ["+13125550001"]
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, stderr = proc.communicate(timeout=30)
            phi.scan_output(stderr, "midbot serve (staging test)")
