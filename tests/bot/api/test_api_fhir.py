"""POST /api/v1/fhir through the real app: identity by (system, value), transactions all or nothing, batch answers.

The Bundles are built from ``tests.integrations.fhir.hl7_like``: resources shaped like HL7's R4 examples.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from bot.db.models import AuditEvent, Fill, Outreach, Patient, Prescription, Site, SourceId
from bot.keys import SESSIONMAKER
from integrations.fhir.store import FHIR_SYSTEMS
from tests.bot.support import Seeded, bearer
from tests.integrations.fhir import hl7_like as hl7

COUNTED = (Patient, Prescription, Fill, SourceId, AuditEvent, Outreach)


async def counts(client: TestClient) -> dict[str, int]:
    """Rows of every table a FHIR import writes."""
    async with client.server.app[SESSIONMAKER]() as session:
        return {
            model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in COUNTED
        }


async def post(client: TestClient, seeded: Seeded, bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/fhir", json=bundle, headers=bearer(seeded))
    return response.status, await response.json(content_type=None)


async def stored(client: TestClient, model: type, **where: Any) -> list[Any]:
    async with client.server.app[SESSIONMAKER]() as session:
        rows = await session.scalars(select(model).filter_by(**where))
        return list(rows)


def a_fill_bundle(kind: str = "transaction", *, status: str = "completed") -> dict[str, Any]:
    """A patient, a prescription whose drug is only in a contained Medication, and one dispense."""
    return hl7.bundle(
        kind,
        hl7.patient("pat1", phone="312-555-0140"),
        hl7.request_contained("rx1", "Patient/pat1", value="RX-0001"),
        hl7.dispense("d1", "MedicationRequest/rx1", status=status),
    )


async def test_the_same_value_under_two_systems_is_two_patients(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    bundle = hl7.bundle(
        "transaction",
        hl7.patient("a", system=hl7.MRN_A, value="1001", phone="312-555-0141"),
        hl7.patient("b", system=hl7.MRN_B, value="1001", phone="312-555-0142"),
    )
    status, body = await post(client, seeded, bundle)
    assert status == 200, body
    assert body["created"] == 2 and body["rejected"] == 0
    sources = await stored(client, SourceId, kind="patient", value="1001")
    assert {s.system for s in sources} == {hl7.MRN_A, hl7.MRN_B}
    patients = {s.system: (await stored(client, Patient, id=s.target_id))[0] for s in sources}
    assert patients[hl7.MRN_A].id != patients[hl7.MRN_B].id
    assert (patients[hl7.MRN_A].phone, patients[hl7.MRN_B].phone) == ("+13125550141", "+13125550142")
    # Sent again: each is matched to its own patient, nothing merges or duplicates.
    status, again = await post(client, seeded, bundle)
    assert status == 200 and again["unchanged"] == 2 and again["created"] == 0
    assert len(await stored(client, SourceId, kind="patient", value="1001")) == 2


async def test_a_site_that_trusts_one_system_refuses_the_other(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    async with client.server.app[SESSIONMAKER].begin() as session:
        await session.execute(update(Site).where(Site.id == "north").values(settings={FHIR_SYSTEMS: [hl7.MRN_A]}))
    bundle = hl7.bundle("transaction", hl7.patient("a", system=hl7.MRN_B, value="1001"))
    status, outcome = await post(client, seeded, bundle)
    assert status == 422 and outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["expression"] == ["Bundle.entry[0].resource.identifier"]
    assert "trusts" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("bad", "index", "expression"),
    [
        # Fails when read: a days supply that is no number.
        ("days", 3, "Bundle.entry[3].resource.daysSupply.value"),
        # Fails only in the store: the prescription it names is nowhere (not in the Bundle, not on file).
        ("reference", 4, "Bundle.entry[4].resource.authorizingPrescription[0]"),
        # Fails in the store too: the patient is another site's.
        ("other-site", 2, "Bundle.entry[2].resource.subject"),
    ],
)
async def test_a_transaction_with_one_bad_entry_stores_nothing(
    api: tuple[TestClient, Seeded], bad: str, index: int, expression: str
) -> None:
    client, seeded = api
    resources = [
        hl7.patient("pat1"),
        hl7.request_contained("rx1", "Patient/pat1", value="RX-0001"),
        hl7.request_contained("rx2", "Patient/pat1", value="RX-0002"),
        hl7.dispense("d1", "MedicationRequest/rx1"),
        hl7.dispense("d2", "MedicationRequest/rx2"),
    ]
    if bad == "days":
        resources[3]["daysSupply"]["value"] = "a month"
    elif bad == "reference":
        resources[4]["authorizingPrescription"] = [{"reference": "MedicationRequest/nowhere"}]
    else:
        resources[2]["subject"] = {"reference": "Patient/pat-s1"}
    before = await counts(client)
    status, outcome = await post(client, seeded, hl7.bundle("transaction", *resources))
    assert 400 <= status < 500 and status == 422, outcome
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [[expression]]
    assert outcome["issue"][0]["severity"] == "error"
    assert await counts(client) == before


async def test_two_entries_with_one_identity_fail_a_transaction(api: tuple[TestClient, Seeded]) -> None:
    # FHIR: a transaction whose entries resolve to the same resource fails (HL7's MedicationRequest
    # examples all carry one identifier: sent together they are one prescription, or an error).
    client, seeded = api
    before = await counts(client)
    bundle = hl7.bundle(
        "transaction",
        hl7.patient("pat1"),
        hl7.request_contained("rx1", "Patient/pat1", value="12345689"),
        hl7.request_contained("rx2", "Patient/pat1", value="12345689", status="completed"),
    )
    status, outcome = await post(client, seeded, bundle)
    assert status == 422, outcome
    (issue,) = outcome["issue"]
    assert issue["expression"] == ["Bundle.entry[2].resource.identifier"]
    assert "Bundle.entry[1]" in issue["diagnostics"]
    assert await counts(client) == before


async def test_a_batch_answers_each_entry_with_its_status(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    bundle = hl7.bundle(
        "batch",
        hl7.patient("pat1"),
        hl7.request_contained("rx1", "Patient/pat1", value="RX-0001"),
        hl7.dispense("d1", "MedicationRequest/rx1"),
        hl7.dispense("d2", "MedicationRequest/rx1", status="in-progress"),
        hl7.dispense("d3", "MedicationRequest/nowhere"),
        hl7.patient("pat2", phone="555-1234"),  # not a phone number
        {"resourceType": "Organization", "id": "1", "name": "Acme Healthcare"},
    )
    status, answer = await post(client, seeded, bundle)
    assert status == 200, answer
    assert answer["resourceType"] == "Bundle" and answer["type"] == "batch-response"
    responses = [e["response"] for e in answer["entry"]]
    assert len(responses) == len(bundle["entry"])
    assert [r["status"] for r in responses] == [
        "201 Created",
        "201 Created",
        "201 Created",
        "200 OK",
        "404 Not Found",
        "422 Unprocessable Entity",
        "200 OK",
    ]
    assert responses[0]["location"].startswith("Patient/")
    skipped = responses[3]["outcome"]["issue"][0]
    assert skipped["severity"] == "information" and "in-progress" in skipped["diagnostics"]
    assert responses[4]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[4].resource.authorizingPrescription[0]"
    ]
    assert responses[5]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[5].resource.telecom"]
    assert "Organization not imported" in responses[6]["outcome"]["issue"][0]["diagnostics"]
    # The good entries are kept, the failed and skipped ones are not.
    fills = await stored(client, Fill)
    assert len([f for f in fills if f.prescription_id not in ("rx-n1",)]) == 1
    assert len(await stored(client, SourceId, kind="fill")) == 1
    # The same batch again: the stored entries are 200 OK (unchanged), each still answered in order.
    status, again = await post(client, seeded, bundle)
    assert [e["response"]["status"] for e in again["entry"]][:3] == ["200 OK"] * 3


async def test_a_transaction_reports_the_dispense_it_skipped(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    status, body = await post(client, seeded, a_fill_bundle(status="preparation"))
    assert status == 200, body
    assert body["created"] == 2  # the patient and the prescription; the dispense is not a fill yet
    assert [s["index"] for s in body["skipped"]] == [2]
    assert "preparation" in body["skipped"][0]["reason"]
    assert await stored(client, SourceId, kind="fill") == []


async def test_a_drug_only_in_a_contained_medication_is_read_from_it(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    status, body = await post(client, seeded, a_fill_bundle())
    assert status == 200, body
    (source,) = await stored(client, SourceId, kind="prescription", value="RX-0001")
    (rx,) = await stored(client, Prescription, id=source.target_id)
    assert rx.drug == "Oral Form Oxycodone (product)" and rx.site_id == "north"


async def test_a_drug_in_a_medication_elsewhere_in_the_bundle_is_read_from_it(
    api: tuple[TestClient, Seeded],
) -> None:
    client, seeded = api
    bundle = hl7.bundle(
        "transaction",
        hl7.medication("med0301", "Capecitabine 500 MG Oral Tablet"),
        hl7.patient("pat1"),
        hl7.request_bundled("rx1", "Patient/pat1", "Medication/med0301", value="RX-0009"),
        hl7.request_bundled("rx2", "Patient/pat1", "urn:uuid:medication-med0301", value="RX-0010"),
    )
    status, body = await post(client, seeded, bundle)
    assert status == 200, body
    drugs = {s.value: (await stored(client, Prescription, id=s.target_id))[0].drug
             for s in await stored(client, SourceId, kind="prescription")}  # fmt: skip
    assert drugs == {"RX-0009": "Capecitabine 500 MG Oral Tablet", "RX-0010": "Capecitabine 500 MG Oral Tablet"}


async def test_entered_in_error_voids_the_fill_and_replans(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    status, body = await post(client, seeded, a_fill_bundle())
    assert status == 200 and body["created"] == 3, body
    (source,) = await stored(client, SourceId, kind="fill")
    assert len(await stored(client, Fill, id=source.target_id)) == 1
    status, voided = await post(client, seeded, a_fill_bundle(status="entered-in-error"))
    assert status == 200, voided
    assert voided["updated"] == 1 and voided["replanned"] is not None
    assert await stored(client, Fill, id=source.target_id) == []
    changes = await stored(client, AuditEvent, action="fill.update")
    assert any(e.detail.get("after", {}).get("status") == "entered-in-error" for e in changes), changes
    # In a batch the void is answered like any other entry, with where it was.
    status, batch = await post(client, seeded, a_fill_bundle("batch", status="entered-in-error"))
    assert batch["entry"][2]["response"]["status"] == "200 OK"
    assert batch["entry"][2]["response"]["location"] == f"MedicationDispense/{source.target_id}"


async def test_unknown_status_keeps_the_prescriptions_and_a_new_one_is_active(
    api: tuple[TestClient, Seeded],
) -> None:
    client, seeded = api
    patient = hl7.patient("pat1")
    on_hold = hl7.request_contained("rx1", "Patient/pat1", value="RX-1", status="on-hold")
    assert (await post(client, seeded, hl7.bundle("transaction", patient, on_hold)))[0] == 200
    unknown = hl7.request_contained("rx1", "Patient/pat1", value="RX-1", status="unknown")
    fresh = hl7.request_contained("rx2", "Patient/pat1", value="RX-2", status="unknown")
    status, body = await post(client, seeded, hl7.bundle("transaction", patient, unknown, fresh))
    assert status == 200, body
    by_value = {s.value: (await stored(client, Prescription, id=s.target_id))[0].status
                for s in await stored(client, SourceId, kind="prescription")}  # fmt: skip
    assert by_value == {"RX-1": "on_hold", "RX-2": "active"}


async def test_a_token_site_needs_no_managing_organization_and_one_word_names_import(
    api: tuple[TestClient, Seeded],
) -> None:
    client, seeded = api
    patient = hl7.patient("pat1")  # managingOrganization is the source's own Organization/1
    mononym = hl7.mononym("pat2")
    del mononym["identifier"]  # only the resource id: the site's own id system
    status, body = await post(client, seeded, hl7.bundle("collection", patient, mononym))
    assert status == 200 and body["created"] == 2, body
    (xenia,) = await stored(client, Patient, id="pat2")
    assert (xenia.site_id, xenia.first_name, xenia.last_name) == ("north", "Xenia", "Xenia")
    assert all(p.site_id == "north" for p in await stored(client, Patient, first_name="Peter James"))


async def test_a_batch_takes_two_entries_of_one_identity_in_order(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    bundle = hl7.bundle(
        "batch",
        hl7.patient("pat1"),
        hl7.request_contained("rx1", "Patient/pat1", value="12345689"),
        hl7.request_contained("rx2", "Patient/pat1", value="12345689", status="completed"),
    )
    status, answer = await post(client, seeded, bundle)
    assert status == 200, answer
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created", "201 Created", "200 OK"], statuses  # created, then updated
    (source,) = await stored(client, SourceId, kind="prescription", value="12345689")
    (rx,) = await stored(client, Prescription, id=source.target_id)
    assert rx.status == "completed"  # the later entry is the prescription's last word
