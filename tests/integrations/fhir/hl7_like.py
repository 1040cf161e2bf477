"""FHIR R4 resources shaped like HL7's published examples (written for midbot, not copied).

They keep what makes the HL7 examples hard for an importer: every MedicationRequest shares one
identifier system and value pattern, drugs named only in a contained ``Medication`` (``#med…``), plain
``Patient/…`` references, ``managingOrganization`` pointing at the source's own organization ids,
one-word names, and dispenses in every status.
"""

from __future__ import annotations

import copy
from typing import Any

MRN_A = "urn:oid:1.2.36.146.595.217.0.1"  # a hospital's MRN system
MRN_B = "http://hospital.example.org/patients"
RX_SYSTEM = "http://www.bmc.nl/portal/prescriptions"


def patient(pid: str, *, system: str = MRN_A, value: str = "12345", phone: str = "312-555-0140") -> dict[str, Any]:
    """A Patient like HL7's ``example``: official and usual names, several telecoms, an organization."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": system,
                "value": value,
                "period": {"start": "2001-05-06"},
                "assigner": {"display": "Acme Healthcare"},
            }
        ],
        "active": True,
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]},
        ],
        "telecom": [
            {"use": "home"},
            {"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1},
            {"system": "phone", "value": phone, "use": "mobile", "rank": 2},
            {"system": "phone", "value": "(03) 3410 5613", "use": "old", "period": {"end": "2014"}},
        ],
        "gender": "male",
        "birthDate": "1974-12-25",
        "managingOrganization": {"reference": "Organization/1"},
    }


def mononym(pid: str) -> dict[str, Any]:
    """A Patient known by one name only."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": MRN_A, "value": f"mono-{pid}"}],
        "name": [{"text": "Xenia"}],
        "telecom": [{"system": "sms", "value": "+13125550161"}],
    }


def request_contained(rid: str, patient_ref: str, *, value: str, status: str = "active") -> dict[str, Any]:
    """A MedicationRequest like HL7's ``medrx03xx``: the drug only in a contained Medication."""
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med0310",
                "code": {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "430127000", "display": "Oral Form Oxycodone (product)"}
                    ]
                },
            }
        ],
        "identifier": [{"use": "official", "system": RX_SYSTEM, "value": value}],
        "status": status,
        "intent": "order",
        "medicationReference": {"reference": "#med0310"},
        "subject": {"reference": patient_ref},
        "authoredOn": "2015-01-15",
        "dosageInstruction": [{"sequence": 1, "text": "6 mg PO daily for remission induction"}],
    }


def request_bundled(rid: str, patient_ref: str, medication_ref: str, *, value: str) -> dict[str, Any]:
    """A MedicationRequest whose drug is a Medication elsewhere in the Bundle."""
    body = request_contained(rid, patient_ref, value=value)
    del body["contained"]
    body["medicationReference"] = {"reference": medication_ref}
    return body


def medication(mid: str, display: str) -> dict[str, Any]:
    """A Medication like HL7's ``med0301``."""
    return {
        "resourceType": "Medication",
        "id": mid,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0409-6531-02", "display": display}]},
    }


def dispense(did: str, request_ref: str, *, status: str = "completed", days: int = 30) -> dict[str, Any]:
    """A MedicationDispense like HL7's ``meddisp0301``."""
    return {
        "resourceType": "MedicationDispense",
        "id": did,
        "identifier": [{"system": "http://pharmacy.example.org/dispenses", "value": f"disp-{did}"}],
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "430127000"}]},
        "subject": {"reference": "Patient/pat1"},
        "authorizingPrescription": [{"reference": request_ref}],
        "quantity": {"value": 60, "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm", "code": "TAB"},
        "daysSupply": {"value": days, "unit": "Day", "system": "http://unitsofmeasure.org", "code": "d"},
        "whenPrepared": "2026-11-01T07:13:00+05:00",
        "whenHandedOver": "2026-11-01T07:13:00+05:00",
    }


def bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    """A Bundle of the resources, each with a ``fullUrl`` (``urn:uuid:{id}``) and a request."""
    entries = []
    for resource in resources:
        body = copy.deepcopy(resource)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{body['resourceType'].lower()}-{body['id']}",
                "resource": body,
                "request": {"method": "POST", "url": body["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": kind, "entry": entries}
