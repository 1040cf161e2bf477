"""The CLI of sites, programs, plan, outreach list and dispatch, run in-process on a SQLite file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main

PROGRAMS = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
"""


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MIDBOT_DATABASE_URL", sqlite_url)
    monkeypatch.chdir(tmp_path)  # no stray .env is read

    def run(*argv: str) -> tuple[int, list[Any], str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        lines = [json.loads(x) if x.startswith("{") else x for x in out.splitlines() if x.strip()]
        return code, lines, err

    return run


@contextmanager
def simulator_process() -> Iterator[tuple[str, str, str]]:
    """The Twilio simulator in a process of its own on a free loopback port: (base URL, account, token)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    account, token = "AC" + "c" * 32, "cli-test-token"
    argv = [sys.executable, "-m", "integrations.twilio.simulator", "--port", str(port)]
    argv += ["--account-sid", account, "--auth-token", token, "--webhook-url", "http://127.0.0.1:9/none"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", account, token
    finally:
        process.terminate()
        process.wait(timeout=10)


def _site(cli, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        "sites",
        "add",
        "S1",
        "--name",
        "Clinic",
        "--phone",
        "+15005550006",
        "--time-zone",
        "America/Chicago",
        *extra,
    )


def _patient_with_fill(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    files = {
        "p.csv": "patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,"
        "detailed_consent\nX1,S1,Ana,Ruiz,1950-01-02,+13125550100,es,,true,false\n",
        "r.csv": "prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on\n"
        "RX1,X1,capecitabine,oncology,medicare_d,active,2026-01-05\n",
        "f.csv": "fill_id,prescription_id,dispensed_on,days_supply,quantity,copay\nF1,RX1,2026-01-06,28,56,12.50\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for kind, name in (("patients", "p.csv"), ("prescriptions", "r.csv"), ("fills", "f.csv")):
        assert cli("import", kind, str(tmp_path / name), "--no-replan")[0] == 0


def test_sites_add_updates_and_lists(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = _site(cli, "--send-rate", "10", "--closed-days", "sat,sun")
    assert code == 0 and out[0]["created"] is True and out[0]["closed_days"] == ["sat", "sun"]
    code, out, _ = _site(cli, "--quiet-hours", "10:00-19:30", "--messaging-service-sid", "MG" + "a" * 32)
    assert code == 0 and out[0]["created"] is False
    assert out[0]["quiet_hours"] == "10:00-19:30" and out[0]["send_rate"] == 10.0  # kept from before
    assert out[0]["closed_days"] == ["sat", "sun"] and out[0]["messaging_service_sid"] == "MG" + "a" * 32
    code, out, _ = cli("sites", "list")
    assert code == 0 and [s["id"] for s in out] == ["S1"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--phone", "+1500"), "--phone"),
        (("--phone", "3125550100"), "--phone"),
        (("--time-zone", "Mars/Olympus"), "--time-zone"),
        (("--quiet-hours", "07:00-20:00"), "--quiet-hours"),
        (("--quiet-hours", "20:00-09:00"), "--quiet-hours"),
        (("--send-rate", "0"), "--send-rate"),
        (("--closed-days", "caturday"), "--closed-days"),
        (("--messaging-service-sid", "XX123"), "--messaging-service-sid"),
        (("--after-hours-phone", "123"), "--after-hours-phone"),
    ],
)
def test_sites_add_rejects_bad_options_naming_them(cli, args: tuple[str, str], option: str) -> None:  # type: ignore[no-untyped-def]
    base = {"--phone": "+15005550006", "--time-zone": "America/Chicago"}
    base.update({args[0]: args[1]})
    argv = ["sites", "add", "S1", "--name", "Clinic"] + [x for kv in base.items() for x in kv]
    code, out, err = cli(*argv)
    assert code == 1 and out == []
    assert err.startswith(f"midbot: {option}: ") and "Traceback" not in err and len(err.splitlines()) == 1


def test_programs_validate_reports_lines(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.yaml"
    good.write_text(PROGRAMS)
    code, out, _ = cli("programs", "validate", str(good))
    assert code == 0 and out == [f"{good}: OK, 1 program(s): refill"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROGRAMS.replace("refill_reminder", "no_such_kind").replace("[5, 2]", "[5, x]"))
    code, out, _ = cli("programs", "validate", str(bad))
    assert code == 1
    assert out[0].startswith(f"{bad}:3: programs[0].kind: Input should be 'refill_reminder'")
    assert out[1].startswith(
        f"{bad}:5: programs[0].trigger.run_out.days_before[1]: Input should be a valid integer"
    )
    code, out, _ = cli("programs", "validate", str(tmp_path / "missing.yaml"))
    assert code == 1 and out[0].startswith(f"{tmp_path / 'missing.yaml'}:0: file: cannot read")


def test_programs_load_list_plan_outreach_and_dispatch(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    assert _site(cli)[0] == 0
    _patient_with_fill(tmp_path, cli)
    code, out, _ = cli("programs", "list", "--site", "S1")
    assert code == 0 and {line["source"] for line in out} == {"default"}
    path = tmp_path / "programs.yaml"
    path.write_text(PROGRAMS)
    code, out, _ = cli("programs", "load", str(path), "--site", "S1", "--now", "2026-01-07T12:00:00Z")
    assert (
        code == 0
        and out[0]["added"] == ["refill"]
        and out[0]["plan"] == {"planned": 2, "cancelled": 0, "unchanged": 0}
    )
    code, out, _ = cli("programs", "load", str(path), "--site", "S1", "--now", "2026-01-07T12:00:00Z")
    assert out[0]["unchanged"] == ["refill"] and out[0]["plan"] == {
        "planned": 0,
        "cancelled": 0,
        "unchanged": 0,
    }
    code, out, err = cli("programs", "load", str(path), "--site", "NOPE")
    assert code == 1 and "--site" in err
    code, out, _ = cli("plan", "--all", "--now", "2026-01-07T12:00:00Z")
    assert code == 0 and out == [{"planned": 0, "cancelled": 0, "unchanged": 2}]
    code, out, _ = cli("outreach", "list", "--patient", "X1")
    assert code == 0 and out[0] == {
        "id": out[0]["id"],
        "patient_id": "X1",
        "prescription_id": "RX1",
        "program_id": "refill",
        "step": "run_out-5",
        "due_at": "2026-01-29T16:00:00Z",
        "state": "planned",
        "reason": "",
    }
    assert cli("outreach", "list", "--state", "sent")[1] == []

    # Nothing is due on Jan 7: dispatch --once exits 0 without building the SMS sender.
    code, out, _ = cli("dispatch", "--once", "--now", "2026-01-07T12:00:00Z")
    assert code == 0 and out[0]["claimed"] == 0

    # Due on Jan 29 at 10:00 Chicago: dispatched through the real SMS engine to the Twilio simulator.
    with simulator_process() as (base_url, account, token):
        monkeypatch.setenv("MIDBOT_TWILIO_API_BASE_URL", base_url)
        monkeypatch.setenv("MIDBOT_TWILIO_ACCOUNT_SID", account)
        monkeypatch.setenv("MIDBOT_TWILIO_AUTH_TOKEN", token)
        code, out, _ = cli("dispatch", "--once", "--now", "2026-01-29T17:00:00Z")
        assert code == 0 and out[0]["sent"] == 1
        with urllib.request.urlopen(f"{base_url}/simulator/messages", timeout=5) as response:
            data = json.loads(response.read())
    sent = [m for m in (data["messages"] if isinstance(data, dict) else data) if m["to"] == "+13125550100"]
    assert len(sent) == 1
    code, out, _ = cli("outreach", "list", "--patient", "X1", "--state", "sent")
    assert [(o["step"], o["state"]) for o in out] == [("run_out-5", "sent")]


def test_bad_now_and_bad_state_are_usage_errors(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("plan", "--now", "yesterday")
    assert code == 2 and "--now" in err
    with pytest.raises(SystemExit) as info:
        cli("outreach", "list", "--state", "lost")
    assert info.value.code == 2
