"""REST imports from the dispensary record: patients, prescriptions, fills (JSON) and FHIR R4 Bundles.

Each takes one object or a list, is idempotent on the source system's ids, is scoped to the token's site,
keeps good rows and reports bad ones by index and field, and re-plans the affected patients' outreach.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, RootModel

from bot.api import schemas
from bot.api.base import Answer, ApiCall, ApiRoute
from bot.api.routes import add_api_route
from bot.db.records import (
    Editor,
    FillIn,
    ImportResult,
    PatientIn,
    PrescriptionIn,
    import_fills,
    import_patients,
    import_prescriptions,
    validate_rows,
)
from bot.staff.errors import TaskInvalid
from integrations.fhir import bundles as fhir_bundles
from integrations.fhir.inbound import read_bundle
from integrations.fhir.store import store_bundle, trusted_systems
from scheduler.planner import replan

__all__ = ["setup_imports"]

_MAX_ROWS = 10_000
_FHIR_JSON = "application/fhir+json"


class ImportIssueOut(BaseModel):
    """A rejected item: its index in the request (0-based), the field and why."""

    index: int
    field: str
    reason: str


class ImportOut(BaseModel):
    """What an import did."""

    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[ImportIssueOut]
    replanned: dict[str, int] | None = None


class PatientsIn(RootModel[PatientIn | Annotated[list[PatientIn], Field(min_length=1, max_length=_MAX_ROWS)]]):
    """One patient or a list (the CSV columns; JSON numbers and booleans are taken as their text)."""


class PrescriptionsIn(
    RootModel[PrescriptionIn | Annotated[list[PrescriptionIn], Field(min_length=1, max_length=_MAX_ROWS)]]
):
    """One prescription or a list."""


class FillsIn(RootModel[FillIn | Annotated[list[FillIn], Field(min_length=1, max_length=_MAX_ROWS)]]):
    """One fill or a list (copay in dollars)."""


def _items(payload: Any) -> list[tuple[int, dict[str, Any]]]:
    items = payload if isinstance(payload, list) else [payload]
    if payload is None or not items:
        raise TaskInvalid("send one object or a non-empty list of objects", "body")
    if len(items) > _MAX_ROWS:
        raise TaskInvalid(f"at most {_MAX_ROWS} items per request", "body")
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise TaskInvalid(f"item {index} is not a JSON object", f"{index}")
        # Same fields as the CSV columns; JSON numbers and booleans are accepted as such.
        rows.append(
            (
                index,
                {k: ("" if v is None else v if isinstance(v, str) else _text(v)) for k, v in item.items()},
            )
        )
    return rows


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _finish(call: ApiCall, result: ImportResult, issues: list[Any]) -> ImportOut:
    replanned = None
    if result.affected_patient_ids:
        async with call.sessionmaker.begin() as session:
            summary = await replan(session, patient_ids=set(result.affected_patient_ids), now=call.now)
            replanned = summary.as_dict()
    errors = [ImportIssueOut(index=i.row, field=i.field, reason=i.reason) for i in [*issues, *result.errors]]
    return ImportOut(
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=len({e.index for e in errors}),
        errors=errors,
        replanned=replanned,
    )


def _route(kind: str, model: type[BaseModel], doc: type[BaseModel], importer: Any) -> ApiRoute:
    async def handler(call: ApiCall) -> ImportOut:
        good, numbers, issues = validate_rows(model, _items(call.payload))  # type: ignore[arg-type]
        async with call.sessionmaker.begin() as session:
            result = await importer(
                session,
                good,
                site_scope=call.principal.site_id,
                row_numbers=numbers,
                editor=_editor(call, "api"),
            )
        return await _finish(call, result, issues)

    return ApiRoute(
        "POST",
        f"/{kind}",
        handler,
        f"import_{kind}",
        f"Import {kind} (one object or a list; same fields as the CSV columns); bad items are named, "
        "good ones kept",
        response=ImportOut,
        tag="imports",
        edits_records=True,
        body_doc=doc,
    )


def _editor(call: ApiCall, source: str) -> Editor:
    return Editor(call.principal.actor, source, call.now)


class SkippedOut(BaseModel):
    """An entry of a FHIR Bundle that was read but not imported, and why."""

    index: int
    reason: str


class FhirImportOut(ImportOut):
    """What a FHIR transaction or collection Bundle did, with the entries it skipped."""

    skipped: list[SkippedOut] = []


class _Rejected(Exception):
    """A transaction with a bad entry: nothing is stored (raised to roll back)."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__("transaction rejected")
        self.outcome = outcome


def _fhir_json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, content_type=_FHIR_JSON)


async def _fhir(call: ApiCall) -> web.StreamResponse | ImportOut:
    if not isinstance(call.payload, dict):
        raise TaskInvalid("send a FHIR R4 Bundle (a JSON object)", "body")
    site = call.principal.site_id
    try:
        async with call.sessionmaker.begin() as session:
            read = read_bundle(
                call.payload, site_id=site, trusted_systems=await trusted_systems(session, site)
            )
            if any(i.index is None for i in read.issues):  # the Bundle itself is wrong
                raise _Rejected(read.outcome().model_dump(mode="json", exclude_none=True))
            if read.type != "batch" and read.issues:
                raise _Rejected(read.outcome().model_dump(mode="json", exclude_none=True))
            stored = await store_bundle(
                session, read, site_id=site, now=call.now, editor=_editor(call, "fhir")
            )
            if read.type != "batch" and stored.issues:
                # The causes only: an entry refused because the one it names was is no news.
                raise _Rejected(fhir_bundles.outcome([i for i in stored.issues if i.follows is None]))
    except _Rejected as rejected:
        return _fhir_json(rejected.outcome, 422)
    if read.type == "batch":
        await _finish(call, stored.result, [])
        return _fhir_json(fhir_bundles.batch_response(read, stored))
    done = await _finish(call, stored.result, [])
    skipped = [SkippedOut(index=i, reason=r) for i, r in read.rows.skipped_entries]
    return FhirImportOut(**done.model_dump(), skipped=skipped)


def setup_imports(app: web.Application) -> None:
    """POST /api/v1/patients, /prescriptions, /fills and /fhir (after setup_api)."""
    add_api_route(app, _route("patients", PatientIn, PatientsIn, import_patients))
    add_api_route(app, _route("prescriptions", PrescriptionIn, PrescriptionsIn, import_prescriptions))
    add_api_route(app, _route("fills", FillIn, FillsIn, import_fills))
    add_api_route(
        app,
        ApiRoute(
            "POST",
            "/fhir",
            _fhir,
            "import_fhir",
            "Import a FHIR R4 Bundle of Patient, MedicationRequest and MedicationDispense (and Medication): "
            "a transaction or collection is all or nothing, a batch is answered entry by entry",
            response=FhirImportOut,
            tag="imports",
            edits_records=True,
            body_doc=schemas.FhirBundleIn,
            answers=(
                Answer(200, "a batch: its batch-response Bundle", schemas.BatchResponseOut, _FHIR_JSON),
                Answer(
                    422,
                    "a transaction or collection with a bad entry (nothing is stored), or a Bundle that is "
                    "not one: an OperationOutcome whose issues name each entry by FHIR path",
                    schemas.FhirOutcomeOut,
                    _FHIR_JSON,
                ),
            ),
        ),
    )
