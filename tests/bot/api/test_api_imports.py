"""REST imports: JSON rows like the CSV columns, idempotent, site-scoped, re-planning; FHIR Bundles."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.db.models import Fill, Outreach, Patient
from bot.keys import SESSIONMAKER
from tests.bot.support import bearer

PATIENT = {
    "patient_id": "api-1",
    "site_id": "north",
    "first_name": "Rosa",
    "last_name": "Diaz",
    "birth_date": "1949-03-02",
    "phone": "(312) 555-0177",
    "language": "es",
    "time_zone": "",
    "sms_consent": True,
    "detailed_consent": False,
}
RX = {
    "prescription_id": "api-rx-1",
    "patient_id": "api-1",
    "drug": "capecitabine",
    "therapy_class": "oncology",
    "payer_type": "medicare_d",
    "status": "active",
    "written_on": "2026-10-20",
}


async def count(client: TestClient, model: type, *where: Any) -> int:
    async with client.server.app[SESSIONMAKER]() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_import_rows_then_reimport_is_a_no_op_and_outreach_is_planned(api) -> None:
    client, seeded = api
    first = await client.post("/api/v1/patients", json=PATIENT, headers=bearer(seeded))
    assert first.status == 200, await first.text()
    assert (await first.json())["created"] == 1
    async with client.server.app[SESSIONMAKER]() as session:
        stored = await session.get(Patient, "api-1")
        assert stored is not None and stored.phone == "+13125550177"
    assert (await client.post("/api/v1/prescriptions", json=[RX], headers=bearer(seeded))).status == 200
    fills = [
        {
            "fill_id": "api-f-1",
            "prescription_id": "api-rx-1",
            "dispensed_on": "2026-11-01",
            "days_supply": 28,
            "quantity": 56,
            "copay": "0",
        }
    ]
    answer = await (await client.post("/api/v1/fills", json=fills, headers=bearer(seeded))).json()
    assert answer["created"] == 1 and answer["replanned"]["planned"] > 0
    planned = await count(client, Outreach, Outreach.patient_id == "api-1")
    again = await (await client.post("/api/v1/fills", json=fills, headers=bearer(seeded))).json()
    assert again["created"] == 0 and again["unchanged"] == 1
    assert await count(client, Outreach, Outreach.patient_id == "api-1") == planned


async def test_bad_rows_are_named_and_good_rows_kept(api) -> None:
    client, seeded = api
    bad = dict(PATIENT, patient_id="api-2", phone="12")
    response = await client.post("/api/v1/patients", json=[PATIENT, bad], headers=bearer(seeded))
    body = await response.json()
    assert response.status == 200 and body["created"] == 1 and body["rejected"] == 1
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["field"] == "phone"


async def test_another_sites_rows_are_rejected(api) -> None:
    client, seeded = api
    body = await (await client.post("/api/v1/patients", json=PATIENT, headers=bearer(seeded, "south"))).json()
    assert body["created"] == 0 and body["rejected"] == 1
    assert await count(client, Patient, Patient.id == "api-1") == 0


async def test_not_json_or_no_token_is_a_clear_4xx(api) -> None:
    client, seeded = api
    assert (await client.post("/api/v1/patients", json=PATIENT)).status == 401
    response = await client.post("/api/v1/patients", data="{nope", headers=bearer(seeded))
    assert response.status == 400 and (await response.json())["error"]


def bundle(days_supply: Any = 28) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:p",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"value": "fhir-1"}],
                    "name": [{"family": "Lee", "given": ["Kim"]}],
                    "birthDate": "1950-05-05",
                    "telecom": [{"system": "phone", "value": "3125550188", "use": "mobile"}],
                    "managingOrganization": {"reference": "Organization/north"},
                },
            },
            {
                "fullUrl": "urn:uuid:r",
                "resource": {
                    "resourceType": "MedicationRequest",
                    "identifier": [{"value": "fhir-rx-1"}],
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "abiraterone"},
                    "subject": {"reference": "urn:uuid:p"},
                    "authoredOn": "2026-10-01",
                },
            },
            {
                "fullUrl": "urn:uuid:d",
                "resource": {
                    "resourceType": "MedicationDispense",
                    "identifier": [{"value": "fhir-f-1"}],
                    "status": "completed",
                    "medicationCodeableConcept": {"text": "abiraterone"},
                    "authorizingPrescription": [{"reference": "urn:uuid:r"}],
                    "whenHandedOver": "2026-11-02",
                    "daysSupply": {"value": days_supply},
                    "quantity": {"value": 120},
                },
            },
        ],
    }


async def test_fhir_bundle_imports_and_an_invalid_dispense_is_named(api) -> None:
    client, seeded = api
    broken = copy.deepcopy(bundle(days_supply="many"))
    rejected = await client.post("/api/v1/fhir", json=broken, headers=bearer(seeded))
    assert rejected.status == 422
    outcome = await rejected.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(
        "urn:uuid:d" in issue["diagnostics"] and "daysSupply" in issue["diagnostics"]
        for issue in outcome["issue"]
    )
    assert await count(client, Patient, Patient.id == "fhir-1") == 0
    accepted = await client.post("/api/v1/fhir", json=bundle(), headers=bearer(seeded))
    assert accepted.status == 200, await accepted.text()
    assert await count(client, Fill, Fill.id == "fhir-f-1") == 1


async def test_a_time_zone_no_system_could_hold_is_a_row_error(api) -> None:
    # schemathesis found it: a 300-character zone name reached the file system (OSError, a 500).
    client, seeded = api
    for zone in ("Ṱ̺̺o͞ " * 60, "../../../etc/passwd", "America/Nowhere"):
        response = await client.post("/api/v1/patients", json=dict(PATIENT, time_zone=zone), headers=bearer(seeded))
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["rejected"] == 1 and body["errors"][0]["field"] == "time_zone", body
