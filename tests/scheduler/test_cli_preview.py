"""`midbot programs preview` end to end: what it prints is what `programs load` + `dispatch` then send."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_cli import cli, simulator_process  # noqa: F401  (the in-process CLI fixture)

NOW = "2026-01-07T12:00:00Z"
# The clinic's own wording for the refill reminder; the check-in keeps the built-in wording.
PROGRAMS = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
    templates:
      en: "Hi {first_name}, your medicine from {site_name} runs out in {days} days. Reply 1 to refill, 2 if you still have enough, 3 to talk to a pharmacist."
      es: "Hola {first_name}, su medicamento de {site_name} se acaba en {days} días. Responda 1 para surtir, 2 si todavía tiene suficiente, 3 para hablar con un farmacéutico."
  - id: checkin
    kind: side_effect_checkin
    trigger:
      first_fill: {days_after: [23]}
    send_at: "11:00"
"""
DISPENSED = ["2026-01-06", "2026-01-08", "2026-01-10"]


def _cohort(tmp_path: Path, run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """20 patients, half English, half Spanish; P19 gave no SMS consent, P20's prescription is discontinued."""
    patients = [
        "patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,"
        "detailed_consent"
    ]
    rxs = ["prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on"]
    fills = ["fill_id,prescription_id,dispensed_on,days_supply,quantity,copay"]
    phones = {}
    for i in range(1, 21):
        pid, phone = f"P{i:02d}", f"+1312555{i:04d}"
        phones[phone] = pid
        lang = "es" if i % 2 == 0 else "en"
        consent = "false" if i == 19 else "true"
        patients.append(f"{pid},S1,Name{i},Family,1950-01-02,{phone},{lang},,{consent},false")
        status = "discontinued" if i == 20 else "active"
        rxs.append(f"RX{i:02d},{pid},capecitabine,oncology,medicare_d,{status},2026-01-05")
        fills.append(f"F{i:02d},RX{i:02d},{DISPENSED[i % 3]},28,56,12.50")
    for kind, lines in (("patients", patients), ("prescriptions", rxs), ("fills", fills)):
        path = tmp_path / f"{kind}.csv"
        path.write_text("\n".join(lines) + "\n")
        assert run("import", kind, str(path), "--no-replan")[0] == 0
    return phones


def _sent(base_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/simulator/messages", timeout=5) as response:
        data = json.loads(response.read())
    return list(data["messages"] if isinstance(data, dict) else data)


def test_preview_shows_exactly_what_load_and_dispatch_send(
    cli,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    assert (
        cli(
            "sites",
            "add",
            "S1",
            "--name",
            "Lakeside",
            "--phone",
            "+15005550006",
            "--time-zone",
            "America/Chicago",
            "--send-rate",
            "50",
        )[0]
        == 0
    )
    phones = _cohort(tmp_path, cli)
    path = tmp_path / "programs.yaml"
    path.write_text(PROGRAMS)
    with simulator_process() as (base_url, account, token):
        monkeypatch.setenv("MIDBOT_TWILIO_API_BASE_URL", base_url)
        monkeypatch.setenv("MIDBOT_TWILIO_ACCOUNT_SID", account)
        monkeypatch.setenv("MIDBOT_TWILIO_AUTH_TOKEN", token)
        code, out, err = cli("programs", "preview", str(path), "--site", "S1", "--days", "30", "--now", NOW)
        assert code == 0, err
        *texts, summary = out
        # Changes nothing: no outreach rows, no provider call.
        assert cli("outreach", "list")[1] == [] and _sent(base_url) == []

        assert summary["summary"] is True and summary["texts"] == len(texts) == 36
        assert summary["patients"] == 18 and sum(summary["by_day"].values()) == len(texts)
        assert summary["segments"] == sum(t["segments"] for t in texts)
        assert summary["held"] == {"discontinued": 3, "no_consent": 3} and summary["expected_tasks"] is None
        assert {t["patient_id"] for t in texts}.isdisjoint({"P19", "P20"})
        for t in texts:
            assert t["language"] == ("es" if int(t["patient_id"][1:]) % 2 == 0 else "en")
            assert t["encoding"] in ("GSM-7", "UCS-2") and t["segments"] >= 1
        refills = [t for t in texts if t["program_ids"][0] == "refill"]
        assert all(t["body"].startswith(("Hi Name", "Hola Name")) for t in refills)  # the clinic's wording
        bundled = [t for t in texts if t["program_ids"] == ["refill", "checkin"]]
        assert len(bundled) == 18  # run-out-5 (day 23 of a 28-day fill) and the day-23 check-in: one text

        # Load the same file, dispatch at each previewed time: exactly the previewed bodies go out.
        assert cli("programs", "load", str(path), "--site", "S1", "--now", NOW)[0] == 0
        for due in sorted({t["due_at"] for t in texts}):
            code, result, err = cli("dispatch", "--once", "--now", due)
            assert code == 0, err
        sent = _sent(base_url)
    got = Counter((phones[m["to"]], m["body"]) for m in sent)
    assert got == Counter((t["patient_id"], t["body"]) for t in texts)
