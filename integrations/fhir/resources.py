"""FHIR R4 resources for midbot's signals, messages and tasks, and the transaction Bundle that carries them.

Built with the ``fhir.resources`` R4B models (FHIR 4.3, wire-compatible with R4 for these resources), so
every resource is validated as it is built. Each resource carries a stable identifier (system
``urn:midbot:signal`` / ``urn:midbot:message`` / ``urn:midbot:task``, value = our id) and travels as a
conditional update (``PUT Type?identifier=system|value``), so a resend updates instead of duplicating.

Patients and prescriptions are referenced by logical identifier (``urn:midbot:patient`` /
``urn:midbot:prescription`` by default), because our ids are the dispensary system's, not the FHIR
server's.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.task import Task as FhirTask

from bot.db.vocabulary import SIGNAL_LABELS

if TYPE_CHECKING:
    from datetime import datetime

    from bot.db.models import Message, Task

__all__ = [
    "MESSAGE_SYSTEM",
    "PATIENT_SYSTEM",
    "PRESCRIPTION_SYSTEM",
    "SIGNAL_KIND_SYSTEM",
    "SIGNAL_SYSTEM",
    "TASK_SYSTEM",
    "abandonment_flag",
    "bundle_json",
    "communication_resource",
    "conditional_url",
    "identifier_of",
    "pdc_observation",
    "signal_observation",
    "signal_resource",
    "symptom_observation",
    "task_resource",
    "transaction_bundle",
]

_LOGGER = logging.getLogger(__name__)

SIGNAL_SYSTEM = "urn:midbot:signal"
MESSAGE_SYSTEM = "urn:midbot:message"
TASK_SYSTEM = "urn:midbot:task"
PATIENT_SYSTEM = "urn:midbot:patient"
PRESCRIPTION_SYSTEM = "urn:midbot:prescription"
SIGNAL_KIND_SYSTEM = "urn:midbot:signal-kind"

_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
_UCUM = "http://unitsofmeasure.org"

SEVERITY_GRADES: dict[str, int] = {"none": 0, "mild": 1, "moderate": 2, "severe": 3, "very_severe": 4}
FLAG_KINDS = frozenset({"primary_abandonment", "secondary_abandonment", "unreachable"})

_LABELS = SIGNAL_LABELS


def _ident(system: str, value: object) -> dict[str, str]:
    return {"system": system, "value": str(value)}


def _patient_ref(patient_id: str, system: str) -> dict[str, Any]:
    return {"type": "Patient", "identifier": _ident(system, patient_id)}


def _prescription_ref(prescription_id: str) -> dict[str, Any]:
    return {"type": "MedicationRequest", "identifier": _ident(PRESCRIPTION_SYSTEM, prescription_id)}


def _kind_code(kind: str, text: str | None = None) -> dict[str, Any]:
    label = _LABELS.get(kind, kind.replace("_", " ").capitalize())
    return {"coding": [{"system": SIGNAL_KIND_SYSTEM, "code": kind, "display": label}], "text": text or label}


def _obs_category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": _OBS_CATEGORY, "code": code}]}]


def _fhir_time(value: str | datetime | None) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else value.isoformat()
    return text.replace("+00:00", "Z")


def _observation_base(signal: Mapping[str, Any], patient_system: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [_ident(SIGNAL_SYSTEM, signal["id"])],
        "status": "final",
        "subject": _patient_ref(signal["patient_id"], patient_system),
        "effectiveDateTime": _fhir_time(signal["occurred_at"]),
    }
    if signal.get("created_at"):
        data["issued"] = _fhir_time(signal["created_at"])
    if signal.get("prescription_id"):
        data["basedOn"] = [_prescription_ref(signal["prescription_id"])]
    return data


def pdc_observation(signal: Mapping[str, Any], *, patient_system: str = PATIENT_SYSTEM) -> Observation:
    """An Observation of the proportion of days covered (valueQuantity in %), flagged low below threshold."""
    value = signal.get("value") or {}
    pdc = float(value.get("pdc", 0.0))
    data = _observation_base(signal, patient_system)
    data["category"] = _obs_category("therapy")
    data["code"] = {
        "coding": [{"system": SIGNAL_KIND_SYSTEM, "code": "pdc", "display": "Proportion of days covered"}],
        "text": "Proportion of days covered",
    }
    data["valueQuantity"] = {"value": round(pdc * 100, 1), "unit": "%", "system": _UCUM, "code": "%"}
    threshold = value.get("threshold")
    if threshold is not None and pdc < float(threshold):
        data["interpretation"] = [{"coding": [{"system": _INTERPRETATION, "code": "L", "display": "Low"}]}]
    if value.get("period_start") and value.get("period_end"):
        data["note"] = [{"text": f"Measured {value['period_start']} to {value['period_end']}"}]
    return Observation.model_validate(data)


def _grade(value: Mapping[str, Any]) -> int | None:
    grade = value.get("grade")
    if isinstance(grade, int) and 0 <= grade <= 4:
        return grade
    severity = value.get("severity")
    return SEVERITY_GRADES.get(severity) if isinstance(severity, str) else None


def _symptoms(value: Mapping[str, Any]) -> list[str]:
    if isinstance(value.get("symptom"), str) and value["symptom"]:
        return [value["symptom"]]
    found = value.get("symptoms")
    return [s for s in found if isinstance(s, str) and s] if isinstance(found, list) else []


def symptom_observation(signal: Mapping[str, Any], *, patient_system: str = PATIENT_SYSTEM) -> Observation:
    """A patient-reported symptom grade: code text = the symptom, valueInteger 0-4, category survey.

    Several symptoms in one report become components of one Observation (each with the reported grade).
    """
    value = signal.get("value") or {}
    grade = _grade(value)
    symptoms = _symptoms(value)
    data = _observation_base(signal, patient_system)
    data["category"] = _obs_category("survey")
    if len(symptoms) > 1:
        data["code"] = _kind_code("side_effect")
        data["component"] = [_symptom_component(name, grade) for name in symptoms]
    else:
        data["code"] = _kind_code("side_effect", symptoms[0] if symptoms else None)
        data.update(_grade_value(grade))
    return Observation.model_validate(data)


def _grade_value(grade: int | None) -> dict[str, Any]:
    if grade is None:
        return {
            "dataAbsentReason": {"coding": [{"system": _ABSENT, "code": "unknown"}], "text": "not stated"}
        }
    return {"valueInteger": grade}


def _symptom_component(name: str, grade: int | None) -> dict[str, Any]:
    return {"code": {"text": name}, **_grade_value(grade)}


def abandonment_flag(signal: Mapping[str, Any], *, patient_system: str = PATIENT_SYSTEM) -> Flag:
    """A Flag for primary or secondary abandonment risk, or an unreachable patient."""
    kind = signal["kind"]
    category = "admin" if kind == "unreachable" else "drug"
    data = {
        "resourceType": "Flag",
        "identifier": [_ident(SIGNAL_SYSTEM, signal["id"])],
        "status": "active",
        "category": [{"coding": [{"system": _FLAG_CATEGORY, "code": category}]}],
        "code": _kind_code(kind),
        "subject": _patient_ref(signal["patient_id"], patient_system),
        "period": {"start": _fhir_time(signal["occurred_at"])},
    }
    return Flag.model_validate(data)


def signal_observation(signal: Mapping[str, Any], *, patient_system: str = PATIENT_SYSTEM) -> Observation:
    """Any other signal (refill confirmed, missed doses, cost barrier...) as an Observation of its kind."""
    kind = signal["kind"]
    value = dict(signal.get("value") or {})
    data = _observation_base(signal, patient_system)
    data["code"] = _kind_code(kind)
    if signal.get("source") == "patient":
        data["category"] = _obs_category("survey")
    count = value.get("missed_doses", value.get("count"))
    if kind == "missed_dose" and isinstance(count, int) and count >= 0:
        data["valueInteger"] = count
    elif value:
        data["valueString"] = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return Observation.model_validate(data)


def signal_resource(signal: Mapping[str, Any], *, patient_system: str = PATIENT_SYSTEM) -> DomainResource:
    """The FHIR resource for a signal in its export shape (see ``bot.signals.signal_to_dict``)."""
    kind = signal["kind"]
    if kind == "pdc_below_threshold":
        return pdc_observation(signal, patient_system=patient_system)
    if kind == "side_effect":
        return symptom_observation(signal, patient_system=patient_system)
    if kind in FLAG_KINDS:
        return abandonment_flag(signal, patient_system=patient_system)
    return signal_observation(signal, patient_system=patient_system)


def communication_resource(message: Message, *, patient_system: str = PATIENT_SYSTEM) -> Communication:
    """An SMS as a Communication (completed; sender or recipient is the patient)."""
    data: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [_ident(MESSAGE_SYSTEM, message.id)],
        "status": "completed" if message.status not in ("failed", "undelivered") else "stopped",
        "medium": [{"coding": [{"system": _MODE, "code": "SMSWRIT", "display": "SMS message"}]}],
        "sent": _fhir_time(message.created_at),
        "payload": [{"contentString": message.body or ""}],
    }
    if message.patient_id:
        patient = _patient_ref(message.patient_id, patient_system)
        data["subject"] = patient
        if message.direction == "in":
            data["sender"] = patient
        else:
            data["recipient"] = [patient]
    return Communication.model_validate(data)


_TASK_STATUS = {"open": "requested", "claimed": "in-progress", "snoozed": "on-hold", "resolved": "completed"}
_TASK_PRIORITY = {1: "stat", 2: "asap", 3: "routine", 4: "routine"}


def task_resource(task: Task, *, patient_system: str = PATIENT_SYSTEM) -> FhirTask:
    """A pharmacist queue item as a Task (status, priority, queue as businessStatus, due as restriction)."""
    data: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [_ident(TASK_SYSTEM, task.id)],
        "status": _TASK_STATUS.get(task.status, "requested"),
        "businessStatus": {"text": task.queue},
        "intent": "order",
        "priority": _TASK_PRIORITY.get(task.priority, "routine"),
        "code": {"coding": [{"system": "urn:midbot:task-kind", "code": task.kind or "general"}]},
        "description": task.title,
        "authoredOn": _fhir_time(task.created_at),
        "restriction": {"period": {"end": _fhir_time(task.due_by)}},
    }
    if task.patient_id:
        data["for"] = _patient_ref(task.patient_id, patient_system)
    if task.prescription_id:
        data["focus"] = _prescription_ref(task.prescription_id)
    if task.status == "resolved" and task.outcome:
        data["statusReason"] = {"text": task.outcome}
    return FhirTask.model_validate(data)


def identifier_of(resource: DomainResource) -> tuple[str, str]:
    """The (system, value) of a resource's first identifier; raises ValueError when it has none."""
    identifiers = getattr(resource, "identifier", None) or []
    if not identifiers or not identifiers[0].system or not identifiers[0].value:
        raise ValueError(f"{resource.get_resource_type()}: needs an identifier with system and value")
    return identifiers[0].system, identifiers[0].value


def conditional_url(resource: DomainResource) -> str:
    """``Type?identifier=system|value``: the conditional-update target of a resource."""
    system, value = identifier_of(resource)
    return f"{resource.get_resource_type()}?identifier={system}|{value}"


def transaction_bundle(resources: Sequence[DomainResource]) -> Bundle:
    """A transaction Bundle with one conditional PUT per resource (duplicates by identifier are dropped).

    The ``fullUrl`` is a UUID derived from the identifier, so the same resource always gets the same one.
    """
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for resource in resources:
        url = conditional_url(resource)
        if url in seen:
            continue
        seen.add(url)
        system, value = identifier_of(resource)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}|{value}')}",
                "resource": resource.model_dump(mode="json", by_alias=True, exclude_none=True),
                "request": {"method": "PUT", "url": url},
            }
        )
    return Bundle.model_validate({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def bundle_json(bundle: Bundle) -> dict[str, Any]:
    """The Bundle as a JSON-ready dict (aliases such as ``for``, no empty fields)."""
    return bundle.model_dump(mode="json", by_alias=True, exclude_none=True)
