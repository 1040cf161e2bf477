"""FHIR R4 resources built from signals, messages and tasks validate and carry stable identifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.task import Task as FhirTask

from bot.db.models import Message, Task
from bot.db.vocabulary import SIGNAL_KINDS
from integrations.fhir.resources import (
    bundle_json,
    communication_resource,
    conditional_url,
    signal_resource,
    task_resource,
    transaction_bundle,
)

AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _signal(kind: str, value: dict | None = None, **extra: object) -> dict:
    data = {
        "id": 41,
        "patient_id": "p1",
        "prescription_id": "rx1",
        "site_id": "s1",
        "kind": kind,
        "value": value or {},
        "source": "patient",
        "source_message_id": None,
        "occurred_at": "2026-11-24T15:00:00Z",
        "created_at": "2026-11-24T15:00:05Z",
    }
    data.update(extra)
    return data


def _roundtrip(resource):
    """Serialise and parse again with fhir.resources: what a receiver would do."""
    return type(resource).model_validate_json(resource.model_dump_json(by_alias=True, exclude_none=True))


def test_pdc_observation() -> None:
    value = {"pdc": 0.6234, "threshold": 0.8, "period_start": "2026-06-01", "period_end": "2026-11-24"}
    obs = _roundtrip(signal_resource(_signal("pdc_below_threshold", value, source="computed")))
    assert isinstance(obs, Observation)
    assert obs.code.text == "Proportion of days covered"
    assert float(obs.valueQuantity.value) == pytest.approx(62.3) and obs.valueQuantity.unit == "%"
    assert obs.interpretation[0].coding[0].code == "L"
    assert obs.identifier[0].system == "urn:midbot:signal" and obs.identifier[0].value == "41"
    assert obs.subject.identifier.value == "p1"
    assert obs.basedOn[0].identifier.value == "rx1"


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        ({"symptom": "diarrhea", "grade": 3}, 3),
        ({"symptom": "nausea", "severity": "mild"}, 1),
        ({"symptoms": ["rash"], "severity": "very_severe"}, 4),
        ({"symptom": "fatigue", "severity": "none"}, 0),
    ],
)
def test_symptom_grade_observation(value: dict, grade: int) -> None:
    obs = _roundtrip(signal_resource(_signal("side_effect", value)))
    assert obs.code.text == (value.get("symptom") or value["symptoms"][0])
    assert obs.valueInteger == grade
    assert obs.category[0].coding[0].code == "survey"


def test_several_symptoms_become_components_and_unknown_grade_is_absent() -> None:
    obs = _roundtrip(signal_resource(_signal("side_effect", {"symptoms": ["nausea", "rash"]})))
    assert [c.code.text for c in obs.component] == ["nausea", "rash"]
    assert all(c.valueInteger is None and c.dataAbsentReason is not None for c in obs.component)


@pytest.mark.parametrize("kind", ["primary_abandonment", "secondary_abandonment", "unreachable"])
def test_risk_flags(kind: str) -> None:
    flag = _roundtrip(signal_resource(_signal(kind, {"reason": "x"}, source="computed")))
    assert isinstance(flag, Flag)
    assert flag.status == "active" and flag.code.coding[0].code == kind
    assert flag.period.start is not None and flag.subject.identifier.value == "p1"


@pytest.mark.parametrize("kind", sorted(SIGNAL_KINDS))
def test_every_signal_kind_has_a_valid_resource(kind: str) -> None:
    resource = signal_resource(_signal(kind, {"missed_doses": 2, "note": "x"}))
    parsed = _roundtrip(resource)
    assert parsed.identifier[0].value == "41"
    assert conditional_url(resource) == f"{resource.get_resource_type()}?identifier=urn:midbot:signal|41"


def test_missed_doses_is_an_integer() -> None:
    obs = signal_resource(_signal("missed_dose", {"missed_doses": 3}))
    assert obs.valueInteger == 3 and obs.code.text == "Doses missed in the last 7 days"


def test_communication_and_task() -> None:
    message = Message(
        id=7, direction="in", patient_id="p1", body="I feel sick", status="received", created_at=AT
    )
    comm = _roundtrip(communication_resource(message))
    assert isinstance(comm, Communication)
    assert comm.identifier[0].system == "urn:midbot:message" and comm.identifier[0].value == "7"
    assert comm.payload[0].contentString == "I feel sick" and comm.sender.identifier.value == "p1"
    out = communication_resource(Message(id=8, direction="out", patient_id="p1", body="Hi", status="failed",
                                         created_at=AT))  # fmt: skip
    assert out.status == "stopped" and out.recipient[0].identifier.value == "p1"

    task = Task(id=9, site_id="s1", patient_id="p1", prescription_id="rx1", queue="urgent_clinical",
                kind="side_effect", priority=1, status="resolved", outcome="called_patient",
                title="Severe nausea", due_by=AT + timedelta(hours=1), created_at=AT)  # fmt: skip
    fhir_task = _roundtrip(task_resource(task))
    assert isinstance(fhir_task, FhirTask)
    assert fhir_task.status == "completed" and fhir_task.priority == "stat" and fhir_task.intent == "order"
    assert fhir_task.for_fhir.identifier.value == "p1"
    assert fhir_task.identifier[0].system == "urn:midbot:task"
    assert fhir_task.statusReason.text == "called_patient"


def test_transaction_bundle_uses_conditional_puts_and_stable_full_urls() -> None:
    resources = [
        signal_resource(_signal("refill_confirmed", id=1)),
        signal_resource(_signal("unreachable", id=2)),
    ]
    first = bundle_json(transaction_bundle(resources))
    again = bundle_json(transaction_bundle([*resources, resources[0]]))  # a duplicate is dropped
    assert first == again
    parsed = Bundle.model_validate(first)
    assert parsed.type == "transaction" and len(parsed.entry) == 2
    assert [e.request.method for e in parsed.entry] == ["PUT", "PUT"]
    assert [e.request.url for e in parsed.entry] == [
        "Observation?identifier=urn:midbot:signal|1",
        "Flag?identifier=urn:midbot:signal|2",
    ]
    assert all(e.fullUrl.startswith("urn:uuid:") for e in parsed.entry)


def test_resource_without_identifier_is_refused() -> None:
    bare = Observation.model_validate({"status": "final", "code": {"text": "x"}})
    with pytest.raises(ValueError, match="identifier"):
        transaction_bundle([bare])
