"""FHIR R4 in: a Bundle of Patient, MedicationRequest and MedicationDispense → import rows, or an OperationOutcome.

Resources are validated with the ``fhir.resources`` R4B models (FHIR 4.3, wire-compatible with R4 for
these three resources), then mapped onto the importer's ``PatientIn``/``PrescriptionIn``/``FillIn``.
A bundle is all or nothing: any invalid resource, or one missing a field midbot needs, rejects the
whole bundle with an OperationOutcome whose issues name each bad resource (fullUrl, else
``Type/id``, else its entry index) and the field. ``parse_bundle`` reports problems that way and does
not raise; ``FhirInboundError`` is the (so far empty) root of this module's exceptions::

    FhirInboundError

Mapping:

* Patient → patient: first identifier value (any system) else resource id; official (else first) name;
  birthDate; telecom sms > mobile phone > other phone; first en/es ``communication`` (preferred
  first); site from ``managingOrganization`` (``Organization/{site_id}`` or its identifier value),
  else the ``site_id`` argument; IANA zone from the core ``timezone`` extension when present.
* MedicationRequest → prescription: id as above; ``subject`` → patient; drug from
  ``medicationCodeableConcept`` text, else coding display/code, else ``medicationReference.display``;
  status active/on-hold/stopped/cancelled/completed/draft → active/on_hold/discontinued/discontinued/
  completed/received; ``authoredOn`` → written_on.
* MedicationDispense (status ``completed`` only; others are skipped) → fill: ``authorizingPrescription``
  → prescription; ``whenHandedOver`` else ``whenPrepared`` → dispensed_on; ``daysSupply.value``;
  ``quantity.value``; copay from the extension ``COPAY_EXTENSION`` (valueMoney, dollars).

References resolve against the bundle (fullUrl or ``Type/id``), then as a logical identifier
(``reference.identifier.value``), then as ``Type/{our id}`` for resources imported earlier.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from pydantic import BaseModel, ValidationError

from bot.db.records import FillIn, PatientIn, PrescriptionIn

__all__ = [
    "COPAY_EXTENSION",
    "TIMEZONE_EXTENSION",
    "FhirInboundError",
    "ImportRows",
    "parse_bundle",
]

_LOGGER = logging.getLogger(__name__)

COPAY_EXTENSION = "https://midbot.dev/fhir/StructureDefinition/copay"
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
BUNDLE_TYPES = ("transaction", "batch", "collection")
_MODELS: dict[str, type[Any]] = {
    "Patient": Patient,
    "MedicationRequest": MedicationRequest,
    "MedicationDispense": MedicationDispense,
}
_RX_STATUS = {
    "active": "active",
    "on-hold": "on_hold",
    "stopped": "discontinued",
    "cancelled": "discontinued",
    "completed": "completed",
    "draft": "received",
}
_TYPED_REF = re.compile(r"^(?:.*/)?(Patient|MedicationRequest|Organization)/([^/]+?)(?:/_history/[^/]+)?$")


class FhirInboundError(Exception):
    """Base of the FHIR inbound errors (parse_bundle reports problems as an OperationOutcome instead)."""


class _Problem(Exception):
    """A resource cannot be mapped: the FHIR field and why."""

    def __init__(self, path: str, reason: str, code: str = "required") -> None:
        super().__init__(reason)
        self.path, self.reason, self.code = path, reason, code


@dataclass(slots=True)
class ImportRows:
    """What a valid bundle imports, in dependency order, plus notes on entries it skipped."""

    patients: list[PatientIn] = field(default_factory=list)
    prescriptions: list[PrescriptionIn] = field(default_factory=list)
    fills: list[FillIn] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Entry:
    index: int
    label: str
    kind: str
    resource: Any = None
    our_id: str | None = None


@dataclass(slots=True)
class _Parse:
    default_site: str | None
    entries: list[_Entry] = field(default_factory=list)
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)  # fullUrl or Type/id -> (Type, our id)
    issues: list[dict[str, Any]] = field(default_factory=list)
    rows: ImportRows = field(default_factory=ImportRows)

    def issue(self, entry: _Entry | None, path: str, reason: str, code: str = "invalid") -> None:
        where = f"Bundle.entry[{entry.index}].resource" if entry else "Bundle"
        label = f"{entry.label}: " if entry else "Bundle."
        self.issues.append(
            {
                "severity": "error",
                "code": code,
                "diagnostics": f"{label}{path}: {reason}" if path else f"{label}{reason}",
                "expression": [f"{where}.{path}" if path else where],
            }
        )


def _first_id(resource: Any) -> str | None:
    for ident in resource.identifier or []:
        if ident.value and str(ident.value).strip():
            return str(ident.value).strip()
    return str(resource.id) if resource.id else None


def _raw_id(resource: dict[str, Any]) -> str | None:
    idents = resource.get("identifier")
    for ident in idents if isinstance(idents, list) else []:
        if isinstance(ident, dict) and str(ident.get("value") or "").strip():
            return str(ident["value"]).strip()
    return str(resource["id"]) if resource.get("id") else None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _extension(resource: Any, url: str) -> Any:
    for ext in resource.extension or []:
        if ext.url == url:
            return ext
    return None


# --- Patient ---


def _patient_name(patient: Patient) -> tuple[str, str]:
    names = list(patient.name or [])
    names.sort(key=lambda n: 0 if n.use == "official" else 1)
    for name in names:
        given = " ".join(g for g in (name.given or []) if g)
        family = name.family or ""
        if not (given and family) and name.text:
            parts = name.text.split()
            given, family = given or " ".join(parts[:-1]), family or (parts[-1] if parts else "")
        if given and family:
            return given, family
    raise _Problem("name", "needs a given and a family name")


def _patient_phone(patient: Patient) -> str:
    ranked = []
    for point in patient.telecom or []:
        if point.system not in ("sms", "phone") or not point.value or point.use == "old":
            continue
        rank = 0 if point.system == "sms" else 1 if point.use == "mobile" else 2
        ranked.append((rank, point.rank or 99, point.value))
    if not ranked:
        raise _Problem("telecom", "needs a phone or sms number")
    return str(min(ranked)[2])


def _patient_language(patient: Patient) -> str | None:
    comms = sorted(patient.communication or [], key=lambda c: 0 if c.preferred else 1)
    for comm in comms:
        codes = [c.code for c in (comm.language.coding or []) if c.code] + [comm.language.text or ""]
        for code in codes:
            primary = code.strip().lower().replace("_", "-").split("-")[0]
            if primary in ("en", "es", "english", "spanish", "español", "espanol"):
                return "en" if primary in ("en", "english") else "es"
    return None


def _patient_site(patient: Patient, default: str | None) -> str:
    org = patient.managingOrganization
    if org is not None:
        if org.reference:
            match = _TYPED_REF.match(org.reference)
            if match and match.group(1) == "Organization":
                return match.group(2)
            raise _Problem("managingOrganization", "expected a reference to Organization/{site_id}")
        if org.identifier is not None and org.identifier.value:
            return str(org.identifier.value)
    if default:
        return default
    raise _Problem("managingOrganization", "needs Organization/{site_id} (or a site for the whole bundle)")


def _map_patient(p: _Parse, entry: _Entry) -> dict[str, Any]:
    patient: Patient = entry.resource
    first, last = _patient_name(patient)
    zone = _extension(patient, TIMEZONE_EXTENSION)
    return {
        "patient_id": entry.our_id,
        "site_id": _patient_site(patient, p.default_site),
        "first_name": first,
        "last_name": last,
        "birth_date": _day(patient.birthDate),
        "phone": _patient_phone(patient),
        "language": _patient_language(patient),
        "time_zone": zone.valueCode if zone is not None else None,
    }


# --- references ---


def _resolve(p: _Parse, ref: Any, kind: str, path: str) -> str:
    if ref is None:
        raise _Problem(path, f"needs a reference to a {kind}")
    if ref.reference:
        found = p.refs.get(ref.reference)
        if found is not None:
            if found[0] != kind:
                raise _Problem(path, f"refers to a {found[0]}, expected a {kind}", "invalid")
            return found[1]
        match = _TYPED_REF.match(ref.reference)
        if match and match.group(1) == kind:
            return match.group(2)
        raise _Problem(path, f"cannot resolve {kind} reference", "not-found")
    if ref.identifier is not None and ref.identifier.value:
        return str(ref.identifier.value)
    raise _Problem(path, f"needs a reference to a {kind}")


# --- MedicationRequest ---


def _drug(request: MedicationRequest) -> str:
    concept = request.medicationCodeableConcept
    if concept is not None:
        if concept.text:
            return str(concept.text)
        for coding in concept.coding or []:
            if coding.display or coding.code:
                return str(coding.display or coding.code)
    if request.medicationReference is not None and request.medicationReference.display:
        return str(request.medicationReference.display)
    raise _Problem("medicationCodeableConcept", "needs the drug's name (text or coding display)")


def _map_request(p: _Parse, entry: _Entry) -> dict[str, Any]:
    request: MedicationRequest = entry.resource
    status = _RX_STATUS.get(str(request.status))
    if status is None:
        raise _Problem("status", f"{request.status!s} cannot be imported", "not-supported")
    return {
        "prescription_id": entry.our_id,
        "patient_id": _resolve(p, request.subject, "Patient", "subject"),
        "drug": _drug(request),
        "status": status,
        "written_on": _day(request.authoredOn),
    }


# --- MedicationDispense ---


def _copay(dispense: MedicationDispense) -> Decimal | None:
    ext = _extension(dispense, COPAY_EXTENSION)
    if ext is None:
        return None
    if ext.valueMoney is None or ext.valueMoney.value is None:
        raise _Problem("extension", "copay extension needs valueMoney.value (dollars)")
    return Decimal(str(ext.valueMoney.value))


def _map_dispense(p: _Parse, entry: _Entry) -> dict[str, Any]:
    dispense: MedicationDispense = entry.resource
    prescriptions = dispense.authorizingPrescription or []
    if not prescriptions:
        raise _Problem("authorizingPrescription", "needs a reference to a MedicationRequest")
    handed = _day(dispense.whenHandedOver) or _day(dispense.whenPrepared)
    if handed is None:
        raise _Problem("whenHandedOver", "needs the day the fill was handed over")
    if dispense.daysSupply is None or dispense.daysSupply.value is None:
        raise _Problem("daysSupply", "needs daysSupply.value (days)")
    days = Decimal(str(dispense.daysSupply.value))
    if days != days.to_integral_value():
        raise _Problem("daysSupply", "must be a whole number of days", "invalid")
    quantity = dispense.quantity.value if dispense.quantity is not None else None
    return {
        "fill_id": entry.our_id,
        "prescription_id": _resolve(p, prescriptions[0], "MedicationRequest", "authorizingPrescription[0]"),
        "dispensed_on": handed,
        "days_supply": int(days),
        "quantity": float(quantity) if quantity is not None else None,
        "copay": _copay(dispense),
    }


_MAPPERS: dict[str, tuple[Callable[[_Parse, _Entry], dict[str, Any]], type[BaseModel], str]] = {
    "Patient": (_map_patient, PatientIn, "patients"),
    "MedicationRequest": (_map_request, PrescriptionIn, "prescriptions"),
    "MedicationDispense": (_map_dispense, FillIn, "fills"),
}


# --- bundle ---


def _envelope(p: _Parse, data: Any) -> list[Any]:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        p.issue(None, "resourceType", "expected a Bundle", "structure")
        return []
    if data.get("type") not in BUNDLE_TYPES:
        p.issue(None, "type", f"must be one of {', '.join(BUNDLE_TYPES)}", "not-supported")
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        p.issue(None, "entry", "must be a list", "structure")
        return []
    return entries


def _label(index: int, raw: dict[str, Any], resource: dict[str, Any]) -> str:
    if isinstance(raw.get("fullUrl"), str) and raw["fullUrl"]:
        return str(raw["fullUrl"])
    if resource.get("resourceType") and resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return f"Bundle.entry[{index}]"


def _validate_entry(p: _Parse, index: int, raw: Any) -> None:
    if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
        p.issue(_Entry(index, f"Bundle.entry[{index}]", "?"), "", "entry needs a resource", "structure")
        return
    resource = raw["resource"]
    kind = str(resource.get("resourceType", ""))
    entry = _Entry(index, _label(index, raw, resource), kind)
    method = (raw.get("request") or {}).get("method") if isinstance(raw.get("request"), dict) else None
    if kind not in _MODELS:
        p.rows.skipped.append(f"{entry.label}: {kind or 'resource'} not imported")
        return
    raw_id = _raw_id(resource)
    # Registered before validation, so a reference to a bad resource is not reported a second time.
    for key in (raw.get("fullUrl"), f"{kind}/{resource['id']}" if resource.get("id") else None):
        if key and raw_id:
            p.refs[str(key)] = (kind, raw_id)
    if method not in (None, "POST", "PUT"):
        p.issue(entry, "request.method", f"{method} is not supported", "not-supported")
        return
    try:
        entry.resource = _MODELS[kind].model_validate(resource)
    except ValidationError as exc:
        for err in exc.errors():
            path = ".".join(str(part) for part in err["loc"]) or kind
            p.issue(entry, path, str(err["msg"]).removeprefix("Value error, "))
        return
    entry.our_id = _first_id(entry.resource)
    if entry.our_id is None:
        p.issue(entry, "identifier", "needs an identifier value or an id", "required")
        return
    p.entries.append(entry)


def _map_entry(p: _Parse, entry: _Entry) -> None:
    mapper, model, bucket = _MAPPERS[entry.kind]
    if entry.kind == "MedicationDispense" and entry.resource.status != "completed":
        p.rows.skipped.append(f"{entry.label}: status {entry.resource.status} is not a completed dispense")
        return
    try:
        values = mapper(p, entry)
    except _Problem as problem:
        p.issue(entry, problem.path, problem.reason, problem.code)
        return
    try:
        row = model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            ours = str(err["loc"][0]) if err["loc"] else "resource"
            p.issue(entry, _FIELD_PATHS.get(ours, ours), str(err["msg"]).removeprefix("Value error, "))
        return
    getattr(p.rows, bucket).append(row)


# Where each of our fields comes from, to name the FHIR field when our validation rejects a value.
_FIELD_PATHS = {
    "patient_id": "identifier",
    "site_id": "managingOrganization",
    "first_name": "name",
    "last_name": "name",
    "birth_date": "birthDate",
    "phone": "telecom",
    "language": "communication",
    "time_zone": "extension",
    "prescription_id": "identifier",
    "drug": "medicationCodeableConcept",
    "written_on": "authoredOn",
    "fill_id": "identifier",
    "dispensed_on": "whenHandedOver",
    "days_supply": "daysSupply",
    "quantity": "quantity",
    "copay": "extension",
}


def parse_bundle(
    data: dict[str, Any], *, site_id: str | None = None
) -> tuple[ImportRows, OperationOutcome | None]:
    """Validate and map a FHIR R4 Bundle; all or nothing.

    Args:
        data: the Bundle as parsed JSON (transaction, batch or collection).
        site_id: the site of patients without ``managingOrganization`` (e.g. the API token's site).

    Returns:
        (rows, None) when every resource is valid and mappable; (empty rows, OperationOutcome) otherwise,
        with one error issue per problem naming the resource and the field.
    """
    p = _Parse(default_site=site_id)
    for index, raw in enumerate(_envelope(p, data)):
        _validate_entry(p, index, raw)
    for entry in p.entries:
        _map_entry(p, entry)
    if p.issues:
        _LOGGER.info("FHIR bundle rejected: %d issues", len(p.issues))
        return ImportRows(), OperationOutcome.model_validate(
            {"resourceType": "OperationOutcome", "issue": p.issues}
        )
    _LOGGER.info(
        "FHIR bundle accepted: %d patients, %d prescriptions, %d fills, %d skipped",
        len(p.rows.patients),
        len(p.rows.prescriptions),
        len(p.rows.fills),
        len(p.rows.skipped),
    )
    return p.rows, None
