"""Who may change the dispensary record, and the audit trail of every change (issue 13), through real HTTP."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.db.models import AuditEvent, Patient
from bot.keys import SESSIONMAKER
from tests.bot.support import Seeded, bearer, sign_in

PATIENT = {"patient_id": "pat-n2", "site_id": "north", "first_name": "Robert", "last_name": "Hill",
           "phone": "+13125550199", "sms_consent": True}  # fmt: skip
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": []}
ENDPOINTS = [
    ("/api/v1/patients", PATIENT),
    ("/api/v1/prescriptions", {"prescription_id": "rx-n1", "patient_id": "pat-n1", "drug": "x"}),
    ("/api/v1/fills", {"fill_id": "fill-n1-0", "prescription_id": "rx-n1", "dispensed_on": "2026-11-01",
                       "days_supply": 1, "quantity": 1, "copay": "0"}),
    ("/api/v1/fhir", BUNDLE),
]  # fmt: skip


async def _phone(client: TestClient, patient_id: str) -> str:
    async with client.server.app[SESSIONMAKER]() as session:
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        return patient.phone


async def _changes(client: TestClient) -> list[AuditEvent]:
    async with client.server.app[SESSIONMAKER]() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("%.create") | AuditEvent.action.like("%.update"))
        )
        return list(rows)


@pytest.mark.parametrize("role", ["navigator", "technician"])
async def test_roles_that_may_not_change_the_record_get_403_on_every_import(
    api: tuple[TestClient, Seeded], role: str
) -> None:
    client, _seeded = api
    csrf = await sign_in(client, role)
    for path, body in ENDPOINTS:
        response = await client.post(path, json=body, headers={"X-CSRF-Token": csrf})
        assert response.status == 403, (path, await response.text())
        assert "change the record" in (await response.json())["error"]
    assert await _phone(client, "pat-n2") == "+13125559876"
    assert await _changes(client) == []


async def test_a_pharmacist_change_is_audited_with_the_fields_before_and_after(
    api: tuple[TestClient, Seeded],
) -> None:
    client, seeded = api
    csrf = await sign_in(client, "pharmacist")
    response = await client.post("/api/v1/patients", json=PATIENT, headers={"X-CSRF-Token": csrf})
    assert response.status == 200, await response.text()
    assert await _phone(client, "pat-n2") == "+13125550199"
    [event] = await _changes(client)
    assert event.actor == f"user:{seeded.users['pharmacist']}" and event.action == "patient.update"
    assert event.patient_id == "pat-n2" and event.site_id == "north" and event.target == "patient:pat-n2"
    assert event.detail == {"source": "api", "before": {"phone": "+13125559876"},
                            "after": {"phone": "+13125550199"}}  # fmt: skip
    # The same row again changes nothing and is not audited again.
    again = await client.post("/api/v1/patients", json=PATIENT, headers={"X-CSRF-Token": csrf})
    assert (await again.json())["unchanged"] == 1 and len(await _changes(client)) == 1


async def test_token_and_admin_changes_of_patients_prescriptions_and_fills_are_audited(
    api: tuple[TestClient, Seeded],
) -> None:
    client, seeded = api
    token = bearer(seeded)
    new = {**PATIENT, "patient_id": "pat-new", "phone": "+13125550142"}
    assert (await client.post("/api/v1/patients", json=new, headers=token)).status == 200
    rx = {"prescription_id": "rx-new", "patient_id": "pat-new", "drug": "capecitabine", "status": "active"}
    assert (await client.post("/api/v1/prescriptions", json=rx, headers=token)).status == 200
    csrf = await sign_in(client, "admin")
    fill = {"fill_id": "fill-new", "prescription_id": "rx-new", "dispensed_on": "2026-11-01",
            "days_supply": 28, "quantity": 56, "copay": "10"}  # fmt: skip
    response = await client.post("/api/v1/fills", json=fill, headers={"X-CSRF-Token": csrf})
    assert response.status == 200, await response.text()
    by_action = {e.action: e for e in await _changes(client)}
    assert set(by_action) == {"patient.create", "prescription.create", "fill.create"}
    token_actor = by_action["patient.create"].actor
    assert token_actor.startswith("token:") and by_action["prescription.create"].actor == token_actor
    assert by_action["fill.create"].actor == f"user:{seeded.users['admin']}"
    assert by_action["patient.create"].detail["before"] == {}
    assert by_action["patient.create"].detail["after"]["phone"] == "+13125550142"
    assert by_action["fill.create"].patient_id == "pat-new" and by_action["fill.create"].site_id == "north"
    assert by_action["fill.create"].detail["after"]["dispensed_on"] == "2026-11-01"
    assert by_action["prescription.create"].detail["after"]["drug"] == "capecitabine"
