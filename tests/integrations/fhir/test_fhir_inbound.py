"""FHIR R4 Bundle in: mapping to import rows, all-or-nothing rejection with an OperationOutcome, import."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.migrate import upgrade
from bot.db.models import Fill, Patient, Prescription, Site
from bot.db.records import import_fills, import_patients, import_prescriptions
from bot.db.session import make_engine, make_sessionmaker
from integrations.fhir.inbound import COPAY_EXTENSION, TIMEZONE_EXTENSION, parse_bundle


def _bundle() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0a1b-patient",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:oid:1.2.3.4", "value": "MRN-100"}],
                    "name": [{"use": "official", "family": "Ruiz", "given": ["Ana", "María"]}],
                    "birthDate": "1958-04-02",
                    "telecom": [
                        {"system": "phone", "value": "312-555-0199", "use": "home"},
                        {"system": "phone", "value": "(312) 555-0142", "use": "mobile"},
                    ],
                    "communication": [
                        {"language": {"coding": [{"code": "en"}]}},
                        {
                            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]},
                            "preferred": True,
                        },
                    ],
                    "managingOrganization": {"reference": "Organization/lakeside"},
                    "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": "America/Chicago"}],
                },
                "request": {"method": "PUT", "url": "Patient?identifier=urn:oid:1.2.3.4|MRN-100"},
            },
            {
                "fullUrl": "urn:uuid:0a1b-request",
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "mr1",
                    "identifier": [{"value": "RX-7"}],
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": "200328",
                                "display": "capecitabine",
                            }
                        ]
                    },
                    "subject": {"reference": "urn:uuid:0a1b-patient"},
                    "authoredOn": "2026-09-28T10:15:00-05:00",
                },
                "request": {"method": "POST", "url": "MedicationRequest"},
            },
            {
                "fullUrl": "urn:uuid:0a1b-dispense",
                "resource": {
                    "resourceType": "MedicationDispense",
                    "identifier": [{"value": "FILL-1"}],
                    "status": "completed",
                    "medicationCodeableConcept": {"text": "capecitabine 500 mg tablet"},
                    "authorizingPrescription": [{"reference": "urn:uuid:0a1b-request"}],
                    "whenHandedOver": "2026-10-01T16:30:00-05:00",
                    "daysSupply": {"value": 21, "unit": "day"},
                    "quantity": {"value": 84},
                    "extension": [{"url": COPAY_EXTENSION, "valueMoney": {"value": 12.5, "currency": "USD"}}],
                },
                "request": {"method": "POST", "url": "MedicationDispense"},
            },
        ],
    }


def test_a_valid_bundle_maps_to_rows() -> None:
    rows, outcome = parse_bundle(_bundle())
    assert outcome is None
    (patient,) = rows.patients
    assert (patient.patient_id, patient.site_id, patient.first_name, patient.last_name) == (
        "MRN-100",
        "lakeside",
        "Ana María",
        "Ruiz",
    )
    assert (patient.phone, patient.language, patient.birth_date, patient.time_zone) == (
        "+13125550142",
        "es",
        date(1958, 4, 2),
        "America/Chicago",
    )
    assert patient.sms_consent is None  # FHIR carries no SMS consent: the store's value is kept
    (rx,) = rows.prescriptions
    assert (rx.prescription_id, rx.patient_id, rx.drug, rx.status, rx.written_on) == (
        "RX-7",
        "MRN-100",
        "capecitabine",
        "active",
        date(2026, 9, 28),
    )
    (fill,) = rows.fills
    assert (
        fill.fill_id,
        fill.prescription_id,
        fill.dispensed_on,
        fill.days_supply,
        fill.quantity,
        fill.copay_cents,
    ) == (
        "FILL-1",
        "RX-7",
        date(2026, 10, 1),
        21,
        84.0,
        1250,
    )


def test_one_invalid_dispense_rejects_the_bundle_naming_it() -> None:
    bundle = _bundle()
    bundle["entry"][2]["resource"]["daysSupply"] = {"value": "three weeks"}
    rows, outcome = parse_bundle(bundle)
    assert rows.patients == [] and rows.prescriptions == [] and rows.fills == []
    assert isinstance(outcome, OperationOutcome)
    OperationOutcome.model_validate(outcome.model_dump(mode="json"))  # a valid resource on the wire
    (issue,) = outcome.issue
    assert issue.severity == "error" and issue.code == "invalid"
    assert issue.diagnostics is not None and issue.diagnostics.startswith(
        "urn:uuid:0a1b-dispense: daysSupply.value:"
    )
    assert issue.expression == ["Bundle.entry[2].resource.daysSupply.value"]


def test_every_bad_resource_gets_its_own_issue() -> None:
    bundle = _bundle()
    del bundle["entry"][2]["resource"]["authorizingPrescription"]
    del bundle["entry"][2]["fullUrl"]
    bundle["entry"][2]["resource"]["id"] = "md9"
    bundle["entry"][1]["resource"]["status"] = "bogus"
    bundle["entry"][0]["resource"]["telecom"] = [{"system": "phone", "value": "555-1234"}]
    _, outcome = parse_bundle(bundle)
    assert outcome is not None
    found = sorted((i.code, i.diagnostics) for i in outcome.issue)
    assert found == [
        ("invalid", "urn:uuid:0a1b-patient: telecom: not a valid phone number"),
        ("not-supported", "urn:uuid:0a1b-request: status: bogus cannot be imported"),
        (
            "required",
            "MedicationDispense/md9: authorizingPrescription: needs a reference to a MedicationRequest",
        ),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.update(resourceType="Patient"), "Bundle.resourceType: expected a Bundle"),
        (lambda b: b.update(type="searchset"), "Bundle.type: must be one of transaction, batch, collection"),
        (
            lambda b: b["entry"][0]["resource"].pop("managingOrganization"),
            "urn:uuid:0a1b-patient: managingOrganization: needs Organization/{site_id}",
        ),
        (
            lambda b: b["entry"][2]["resource"]["authorizingPrescription"][0].update(
                reference="urn:uuid:elsewhere"
            ),
            "urn:uuid:0a1b-dispense: authorizingPrescription[0]: cannot resolve MedicationRequest reference",
        ),
        (
            lambda b: b["entry"][2]["resource"].pop("whenHandedOver"),
            "urn:uuid:0a1b-dispense: whenHandedOver: needs the day the fill was handed over",
        ),
        (
            lambda b: b["entry"][0]["resource"].update(birthDate="1958-13-45"),
            "urn:uuid:0a1b-patient: birthDate:",
        ),
        (lambda b: b["entry"][1].update(request={"method": "DELETE", "url": "x"}), "request.method: DELETE"),
        (
            lambda b: b["entry"].append({"fullUrl": "urn:uuid:empty"}),
            "Bundle.entry[3]: entry needs a resource",
        ),
    ],
)
def test_rejections_name_the_resource_and_field(mutate: Any, expected: str) -> None:
    bundle = _bundle()
    mutate(bundle)
    _, outcome = parse_bundle(bundle)
    assert outcome is not None
    assert any(expected in (issue.diagnostics or "") for issue in outcome.issue), [
        i.diagnostics for i in outcome.issue
    ]


def test_site_argument_identifier_references_and_skips() -> None:
    bundle = _bundle()
    entries = bundle["entry"]
    del entries[0]["resource"]["managingOrganization"]
    entries[1]["resource"]["subject"] = {"identifier": {"system": "urn:midbot:patient", "value": "MRN-100"}}
    entries[2]["resource"]["authorizingPrescription"] = [{"reference": "MedicationRequest/mr1"}]
    pending = copy.deepcopy(entries[2])
    pending["fullUrl"] = "urn:uuid:pending"
    pending["resource"]["status"] = "in-progress"
    entries.append(pending)
    entries.append(
        {"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization", "name": "Lakeside"}}
    )
    rows, outcome = parse_bundle(bundle, site_id="desert")
    assert outcome is None
    assert rows.patients[0].site_id == "desert"
    assert rows.prescriptions[0].patient_id == "MRN-100"
    assert [f.prescription_id for f in rows.fills] == ["RX-7"]
    assert sorted(rows.skipped) == [
        "urn:uuid:org: Organization not imported",
        "urn:uuid:pending: status in-progress is not a completed dispense",
    ]


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated SQLite store with the site lakeside."""
    engine = make_engine(sqlite_url)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        session.add(Site(id="lakeside", name="Lakeside", phone="+13125550100", time_zone="America/Chicago"))
    yield sessionmaker
    await engine.dispose()


async def test_a_valid_bundle_imports_and_reimports_unchanged(
    store: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    for expected in ("created", "unchanged"):
        rows, outcome = parse_bundle(_bundle())
        assert outcome is None
        async with store.begin() as session:
            results = [
                await import_patients(session, rows.patients, site_scope="lakeside"),
                await import_prescriptions(session, rows.prescriptions, site_scope="lakeside", now=now),
                await import_fills(session, rows.fills, site_scope="lakeside"),
            ]
        assert [getattr(r, expected) for r in results] == [1, 1, 1]
        assert all(r.errors == [] for r in results)
    async with store() as session:
        patient = await session.get(Patient, "MRN-100")
        rx = await session.get(Prescription, "RX-7")
        fill = await session.get(Fill, "FILL-1")
    assert patient is not None and patient.sms_consent is True and patient.language == "es"
    assert rx is not None and rx.patient_id == "MRN-100" and rx.site_id == "lakeside"
    assert fill is not None and (fill.days_supply, fill.copay_cents) == (21, 1250)
