"""REST imports from the dispensary record: patients, prescriptions, fills (JSON) and FHIR R4 Bundles.

Each takes one object or a list, is idempotent on the source system's ids, is scoped to the token's site,
keeps good rows and reports bad ones by index and field, and re-plans the affected patients' outreach.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bot.api.routes import ApiCall, ApiRoute, add_api_route
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
from integrations.fhir.inbound import parse_bundle
from scheduler.planner import replan

__all__ = ["setup_imports"]

_MAX_ROWS = 10_000


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


def _route(kind: str, model: type[BaseModel], importer: Any) -> ApiRoute:
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
        f"Import {kind} (one object or a list; same fields as the CSV columns)",
        response=ImportOut,
        tag="imports",
        edits_records=True,
    )


def _editor(call: ApiCall, source: str) -> Editor:
    return Editor(call.principal.actor, source, call.now)


async def _fhir(call: ApiCall) -> web.StreamResponse | ImportOut:
    if not isinstance(call.payload, dict):
        raise TaskInvalid("send a FHIR R4 Bundle (a JSON object)", "body")
    rows, outcome = parse_bundle(call.payload, site_id=call.principal.site_id)
    if outcome is not None:
        return web.json_response(
            outcome.model_dump(mode="json", exclude_none=True),
            status=422,
            content_type="application/fhir+json",
        )
    total = ImportResult()
    scope, editor = call.principal.site_id, _editor(call, "fhir")
    async with call.sessionmaker.begin() as session:
        results = [
            await import_patients(session, rows.patients, site_scope=scope, editor=editor)
            if rows.patients
            else None,
            await import_prescriptions(session, rows.prescriptions, site_scope=scope, editor=editor)
            if rows.prescriptions
            else None,
            await import_fills(session, rows.fills, site_scope=scope, editor=editor) if rows.fills else None,
        ]
        for result in results:
            if result is not None:
                total.created += result.created
                total.updated += result.updated
                total.unchanged += result.unchanged
                total.errors.extend(result.errors)
                total.affected_patient_ids |= result.affected_patient_ids
    return await _finish(call, total, [])


def setup_imports(app: web.Application) -> None:
    """POST /api/v1/patients, /prescriptions, /fills and /fhir (after setup_api)."""
    add_api_route(app, _route("patients", PatientIn, import_patients))
    add_api_route(app, _route("prescriptions", PrescriptionIn, import_prescriptions))
    add_api_route(app, _route("fills", FillIn, import_fills))
    add_api_route(
        app,
        ApiRoute(
            "POST",
            "/fhir",
            _fhir,
            "import_fhir",
            "Import a FHIR R4 transaction or collection Bundle of Patient, MedicationRequest "
            "and MedicationDispense; an invalid Bundle is rejected whole with an "
            "OperationOutcome",
            response=ImportOut,
            tag="imports",
            edits_records=True,
        ),
    )
