"""FHIR R4 in: a Bundle of Patient, MedicationRequest and MedicationDispense → import rows, or an OperationOutcome.

Resources are validated with the ``fhir.resources`` R4B models (FHIR 4.3, wire-compatible with R4 for
these three resources), then mapped onto the importer's ``PatientIn``/``PrescriptionIn``/``FillIn``.
Every problem is an OperationOutcome issue naming the resource (fullUrl, else ``Type/id``, else its
entry index) and the field, with the FHIR path ``Bundle.entry[i].resource.FIELD`` as its expression and
the entry index kept beside it, so a ``transaction`` (all or nothing) can reject the whole Bundle and a
``batch`` can answer each entry on its own. ``parse_bundle`` reports problems that way and does not
raise; ``FhirInboundError`` is the (so far empty) root of this module's exceptions::

    FhirInboundError

Mapping:

Identity is (system, value): each row carries the key of its resource and of what it refers to, and
``integrations.fhir.store`` turns keys into store ids. The key is the first identifier whose system the
site trusts (every system when it names none; an identifier without a system, or the resource id, is the
site's own id system, ``""`` here). In a transaction or collection, two entries naming one resource (same
type and identity) are an error on the later one (FHIR: overlapping identities fail a transaction); a
batch takes them in order.

* Patient → patient: identity as above; official (else first) name (one word is both names);
  birthDate; telecom sms > mobile phone > other phone; first en/es ``communication`` (preferred
  first); site: the ``site_id`` argument (an API token fixes it; ``managingOrganization`` is then the
  source's own and not read), else ``managingOrganization`` (``Organization/{site_id}`` or its
  identifier value); IANA zone from the core ``timezone`` extension when present.
* MedicationRequest → prescription: id as above; ``subject`` → patient; drug from
  ``medicationCodeableConcept`` text, else coding display/code, else the ``Medication`` that
  ``medicationReference`` names (contained ``#id``, or in the bundle) by its code, else the reference's
  display; status active/on-hold/stopped/cancelled/completed/draft/entered-in-error → active/on_hold/
  discontinued/discontinued/completed/received/discontinued; ``unknown`` keeps the stored status (a new
  prescription is active); ``authoredOn`` → written_on.
* MedicationDispense ``completed`` → fill; ``entered-in-error`` voids the fill (removed, outreach
  re-planned); other statuses are skipped and reported. Fill: ``authorizingPrescription``
  → prescription; ``whenHandedOver`` else ``whenPrepared`` → dispensed_on; ``daysSupply.value``;
  ``quantity.value``; copay from the extension ``COPAY_EXTENSION`` (valueMoney, dollars).

References resolve against the bundle (fullUrl or ``Type/id``), then as a logical identifier
(``reference.identifier`` system and value), then as ``Type/{id}`` for resources imported earlier (the
site's own id, or the store id that FHIR out shows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.medication import Medication
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
    "Issue",
    "ReadBundle",
    "RowItem",
    "parse_bundle",
    "read_bundle",
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
    "entered-in-error": "discontinued",
    "unknown": None,  # keeps the stored status; a new prescription is active
}
_TYPED_REF = re.compile(
    r"^(?:.*/)?(Patient|MedicationRequest|Organization|Medication)/([^/]+?)(?:/_history/[^/]+)?$"
)
SITE_SYSTEM = ""  # the site's own id system (identifiers without a system, resource ids)
FhirKey = tuple[str, str]  # (system, value)


class FhirInboundError(Exception):
    """Base of the FHIR inbound errors (parse_bundle reports problems as an OperationOutcome instead)."""


class _Problem(Exception):
    """A resource cannot be mapped: the FHIR field and why."""

    def __init__(self, path: str, reason: str, code: str = "required") -> None:
        super().__init__(reason)
        self.path, self.reason, self.code = path, reason, code


@dataclass(frozen=True, slots=True)
class RowItem:
    """One row to import: the bundle entry it came from, its identity, and the identity it refers to."""

    index: int
    kind: str  # Patient | MedicationRequest | MedicationDispense
    row: PatientIn | PrescriptionIn | FillIn | None  # None: a voided (entered-in-error) dispense
    key: FhirKey
    ref: FhirKey | None = None  # the patient of a request, the request of a dispense


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem, with the entry it belongs to (None: the Bundle itself) and its OperationOutcome issue.

    ``follows`` is the entry whose failure caused this one (a fill whose prescription was refused): a batch
    answers it, a rejected transaction names only the causes.
    """

    index: int | None
    issue: dict[str, Any]
    follows: int | None = None


@dataclass(slots=True)
class ImportRows:
    """What a bundle imports, in dependency order, plus the entries it skipped (index, note)."""

    items: list[RowItem] = field(default_factory=list)
    skipped_entries: list[tuple[int, str]] = field(default_factory=list)

    def _rows(self, kind: str) -> list[Any]:
        return [i.row for i in self.items if i.kind == kind and i.row is not None]

    @property
    def patients(self) -> list[PatientIn]:
        return self._rows("Patient")

    @property
    def prescriptions(self) -> list[PrescriptionIn]:
        return self._rows("MedicationRequest")

    @property
    def fills(self) -> list[FillIn]:
        return self._rows("MedicationDispense")

    @property
    def skipped(self) -> list[str]:
        return [note for _, note in self.skipped_entries]


@dataclass(slots=True)
class _Entry:
    index: int
    label: str
    kind: str
    resource: Any = None
    our_id: str | None = None
    key: FhirKey = (SITE_SYSTEM, "")
    ref: FhirKey | None = None


@dataclass(slots=True)
class _Parse:
    default_site: str | None
    trusted: tuple[str, ...] = ()
    entries: list[_Entry] = field(default_factory=list)
    refs: dict[str, tuple[str, FhirKey]] = field(default_factory=dict)  # fullUrl or Type/id -> (Type, key)
    medications: dict[str, Any] = field(default_factory=dict)  # fullUrl or Medication/id -> Medication
    issues: list[Issue] = field(default_factory=list)
    rows: ImportRows = field(default_factory=ImportRows)

    def issue(self, entry: _Entry | None, path: str, reason: str, code: str = "invalid") -> None:
        where = f"Bundle.entry[{entry.index}].resource" if entry else "Bundle"
        label = f"{entry.label}: " if entry else "Bundle."
        self.issues.append(
            Issue(
                entry.index if entry else None,
                {
                    "severity": "error",
                    "code": code,
                    "diagnostics": f"{label}{path}: {reason}" if path else f"{label}{reason}",
                    "expression": [f"{where}.{path}" if path else where],
                },
            )
        )


def _key(resource: Any, trusted: tuple[str, ...]) -> FhirKey | None:
    for ident in resource.identifier or []:
        value = str(ident.value or "").strip()
        system = str(ident.system or "").strip()
        if value and (not trusted or system in trusted):
            return (system, value)
    if trusted and any(str(i.value or "").strip() for i in resource.identifier or []):
        raise _Problem("identifier", "no identifier of a system this site trusts", "business-rule")
    return (SITE_SYSTEM, str(resource.id)) if resource.id else None


def _raw_key(resource: dict[str, Any], trusted: tuple[str, ...]) -> FhirKey | None:
    idents = resource.get("identifier")
    for ident in idents if isinstance(idents, list) else []:
        if isinstance(ident, dict) and str(ident.get("value") or "").strip():
            system = str(ident.get("system") or "").strip()
            if not trusted or system in trusted:
                return (system, str(ident["value"]).strip())
    return (SITE_SYSTEM, str(resource["id"])) if resource.get("id") else None


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
        if given or family:  # one word (a mononym, or only one part given): it is both names
            return given or family, family or given
    raise _Problem("name", "needs a name (given, family or text)")


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
    if default:
        return default  # the token fixes the site; the source's organization ids are its own
    org = patient.managingOrganization
    if org is not None:
        if org.reference:
            match = _TYPED_REF.match(org.reference)
            if match and match.group(1) == "Organization":
                return match.group(2)
            raise _Problem("managingOrganization", "expected a reference to Organization/{site_id}")
        if org.identifier is not None and org.identifier.value:
            return str(org.identifier.value)
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


def _resolve(p: _Parse, ref: Any, kind: str, path: str) -> FhirKey:
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
            return (SITE_SYSTEM, match.group(2))
        raise _Problem(path, f"cannot resolve {kind} reference", "not-found")
    if ref.identifier is not None and ref.identifier.value:
        return (str(ref.identifier.system or "").strip(), str(ref.identifier.value).strip())
    raise _Problem(path, f"needs a reference to a {kind}")


# --- MedicationRequest ---


def _concept_name(concept: Any) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return str(coding.display or coding.code)
    return None


def _medication(p: _Parse, request: MedicationRequest, reference: str) -> Any:
    if reference.startswith("#"):
        for resource in request.contained or []:
            if isinstance(resource, Medication) and resource.id == reference[1:]:
                return resource
        return None
    return p.medications.get(reference)


def _drug(p: _Parse, request: MedicationRequest) -> str:
    name = _concept_name(request.medicationCodeableConcept)
    ref = request.medicationReference
    if name is None and ref is not None:
        medication = _medication(p, request, ref.reference) if ref.reference else None
        name = _concept_name(medication.code) if medication is not None else None
        name = name or (str(ref.display) if ref.display else None)
        if name is None:
            raise _Problem(
                "medicationReference", "names no Medication with a code (contained or in the bundle)"
            )
    if name is None:
        raise _Problem("medicationCodeableConcept", "needs the drug's name (text or coding display)")
    return name


def _map_request(p: _Parse, entry: _Entry) -> dict[str, Any]:
    request: MedicationRequest = entry.resource
    if str(request.status) not in _RX_STATUS:
        raise _Problem("status", f"{request.status!s} cannot be imported", "not-supported")
    patient = _resolve(p, request.subject, "Patient", "subject")
    entry.ref = patient
    return {
        "prescription_id": entry.our_id,
        "patient_id": patient[1],
        "status": _RX_STATUS[str(request.status)],
        "drug": _drug(p, request),
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
    request = _resolve(p, prescriptions[0], "MedicationRequest", "authorizingPrescription[0]")
    entry.ref = request
    return {
        "fill_id": entry.our_id,
        "prescription_id": request[1],
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
    entries = data.get("entry", [])
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


def _register_medication(p: _Parse, raw: dict[str, Any], entry: _Entry) -> None:
    try:
        medication = Medication.model_validate(raw["resource"])
    except ValidationError:
        p.rows.skipped_entries.append((entry.index, f"{entry.label}: Medication not valid, not read"))
        return
    for ref in (raw.get("fullUrl"), f"Medication/{medication.id}" if medication.id else None):
        if ref:
            p.medications[str(ref)] = medication


def _validate_entry(p: _Parse, index: int, raw: Any) -> None:
    if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
        p.issue(_Entry(index, f"Bundle.entry[{index}]", "?"), "", "entry needs a resource", "structure")
        return
    resource = raw["resource"]
    kind = str(resource.get("resourceType", ""))
    entry = _Entry(index, _label(index, raw, resource), kind)
    method = (raw.get("request") or {}).get("method") if isinstance(raw.get("request"), dict) else None
    if kind == "Medication":
        _register_medication(p, raw, entry)
        return
    if kind not in _MODELS:
        p.rows.skipped_entries.append((index, f"{entry.label}: {kind or 'resource'} not imported"))
        return
    raw_key = _raw_key(resource, p.trusted)
    # Registered before validation, so a reference to a bad resource is not reported a second time.
    for ref in (raw.get("fullUrl"), f"{kind}/{resource['id']}" if resource.get("id") else None):
        if ref and raw_key:
            p.refs[str(ref)] = (kind, raw_key)
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
    try:
        key = _key(entry.resource, p.trusted)
    except _Problem as problem:
        p.issue(entry, problem.path, problem.reason, problem.code)
        return
    if key is None:
        p.issue(entry, "identifier", "needs an identifier value or an id", "required")
        return
    entry.key, entry.our_id = key, key[1]
    p.entries.append(entry)


def _skipped_dispense(entry: _Entry) -> bool:
    status = str(getattr(entry.resource, "status", "") or "")
    return entry.kind == "MedicationDispense" and status not in ("completed", "entered-in-error")


def _map_entry(p: _Parse, entry: _Entry) -> None:
    mapper, model, _bucket = _MAPPERS[entry.kind]
    status = str(getattr(entry.resource, "status", "") or "")
    if _skipped_dispense(entry):
        p.rows.skipped_entries.append(
            (entry.index, f"{entry.label}: status {status} is not a completed dispense")
        )
        return
    voided = entry.kind == "MedicationDispense" and status == "entered-in-error"
    try:
        values = mapper(p, entry) if not voided else {}
    except _Problem as problem:
        p.issue(entry, problem.path, problem.reason, problem.code)
        return
    if voided:
        p.rows.items.append(RowItem(entry.index, entry.kind, None, entry.key))
        return
    try:
        row = model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            ours = str(err["loc"][0]) if err["loc"] else "resource"
            p.issue(entry, _FIELD_PATHS.get(ours, ours), str(err["msg"]).removeprefix("Value error, "))
        return
    p.rows.items.append(RowItem(entry.index, entry.kind, row, entry.key, entry.ref))  # type: ignore[arg-type]


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


def _one_entry_per_identity(p: _Parse) -> None:
    """FHIR: a transaction whose entries resolve to one resource fails (which one would win?)."""
    first: dict[tuple[str, FhirKey], int] = {}
    kept = []
    for entry in p.entries:
        if _skipped_dispense(entry):  # read, never written: no conflict
            kept.append(entry)
            continue
        seen = first.setdefault((entry.kind, entry.key), entry.index)
        if seen == entry.index:
            kept.append(entry)
        else:
            p.issue(entry, "identifier", f"names the same {entry.kind} as Bundle.entry[{seen}]", "duplicate")
    p.entries = kept


@dataclass(slots=True)
class ReadBundle:
    """A read Bundle: its type, the rows of its good entries, and every problem found."""

    type: str
    rows: ImportRows
    issues: list[Issue]
    entries: int  # how many entries the Bundle has

    def outcome(self, index: int | None = None) -> OperationOutcome:
        """The OperationOutcome of every issue (or of one entry's)."""
        chosen = [i.issue for i in self.issues if index is None or i.index == index]
        return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": chosen})


def read_bundle(
    data: Any, *, site_id: str | None = None, trusted_systems: tuple[str, ...] = ()
) -> ReadBundle:
    """Validate and map a FHIR R4 Bundle, keeping the good entries beside the problems of the bad ones.

    Args:
        data: the Bundle as parsed JSON (transaction, batch or collection).
        site_id: the site every patient belongs to (the API token's site), if fixed.
        trusted_systems: the identifier systems the site trusts (empty: every system).
    """
    p = _Parse(default_site=site_id, trusted=tuple(trusted_systems))
    raw_entries = _envelope(p, data)
    for index, raw in enumerate(raw_entries):
        _validate_entry(p, index, raw)
    kind = str(data.get("type")) if isinstance(data, dict) else ""
    if kind != "batch":
        _one_entry_per_identity(p)
    for entry in p.entries:
        _map_entry(p, entry)
    _LOGGER.info(
        "FHIR %s bundle read: %d rows, %d issues, %d skipped",
        kind if kind in BUNDLE_TYPES else "unknown",
        len(p.rows.items),
        len(p.issues),
        len(p.rows.skipped_entries),
    )
    return ReadBundle(kind, p.rows, p.issues, len(raw_entries))


def parse_bundle(
    data: dict[str, Any], *, site_id: str | None = None, trusted_systems: tuple[str, ...] = ()
) -> tuple[ImportRows, OperationOutcome | None]:
    """Validate and map a FHIR R4 Bundle; all or nothing.

    Args:
        data: the Bundle as parsed JSON (transaction, batch or collection).
        site_id: the site of every patient (e.g. the API token's site).
        trusted_systems: the identifier systems the site trusts (empty: every system).

    Returns:
        (rows, None) when every resource is valid and mappable; (empty rows, OperationOutcome) otherwise,
        with one error issue per problem naming the resource and the field.
    """
    read = read_bundle(data, site_id=site_id, trusted_systems=trusted_systems)
    if read.issues:
        return ImportRows(), read.outcome()
    return read.rows, None
