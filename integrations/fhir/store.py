"""FHIR R4 in, into the store: identity by (system, value), then the one upsert path of ``bot.db.records``.

``store_bundle`` turns each row's FHIR identity into a store id (``bot.db.identity``), writes the rows with
the dispensary importers and answers per entry: what was stored (created / updated / unchanged / voided,
with its ``Type/id``) or the issues that kept it out (an unresolved reference, another site's record).
Whether a problem rejects the whole Bundle is the caller's choice (transaction: yes; batch: no).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import identity
from bot.db.models import Fill, Patient, Prescription, Site
from bot.db.records import (
    Editor,
    FillIn,
    ImportResult,
    PatientIn,
    PrescriptionIn,
    import_fills,
    import_patients,
    import_prescriptions,
    void_fills,
)
from integrations.fhir.inbound import SITE_SYSTEM, FhirKey, Issue, ReadBundle, RowItem

__all__ = ["FHIR_SYSTEMS", "Stored", "StoredBundle", "store_bundle", "trusted_systems"]

FHIR_SYSTEMS = "fhir_systems"  # Site.settings key: the identifier systems the site trusts
_KINDS = {
    "Patient": ("patient", Patient),
    "MedicationRequest": ("prescription", Prescription),
    "MedicationDispense": ("fill", Fill),
}
_REF_PATHS = {"MedicationRequest": "subject", "MedicationDispense": "authorizingPrescription[0]"}
_FIELD_PATHS = {"site_id": "managingOrganization", "patient_id": "subject"}


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of one entry: created, updated, unchanged or voided, and where (``Type/id``)."""

    outcome: str
    location: str


@dataclass(slots=True)
class StoredBundle:
    """The store's answer per entry, the issues of the entries it could not take, and the totals."""

    stored: dict[int, Stored] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    result: ImportResult = field(default_factory=ImportResult)
    refused: list[RowItem] = field(default_factory=list)  # entries with issues, for their dependents

    def refuse(self, items: list[RowItem]) -> None:
        """Remember the items of one kind that were not stored (after that kind is written)."""
        failed = {i.index for i in self.issues}
        self.refused.extend(i for i in items if i.index in failed)


async def trusted_systems(session: AsyncSession, site_id: str) -> tuple[str, ...]:
    """The FHIR identifier systems a site trusts (``midbot sites add --fhir-system``); empty: every one."""
    settings = await session.scalar(select(Site.settings).where(Site.id == site_id))
    systems = (settings or {}).get(FHIR_SYSTEMS) or []
    return tuple(str(s) for s in systems)


def _full(site_id: str, key: FhirKey) -> identity.Key:
    system = key[0] if key[0] != SITE_SYSTEM else identity.site_system(site_id)
    return (site_id, system, key[1])


def _issue(item: RowItem, path: str, reason: str, code: str, follows: int | None = None) -> Issue:
    return Issue(
        item.index,
        {
            "severity": "error",
            "code": code,
            "diagnostics": f"Bundle.entry[{item.index}]: {path}: {reason}",
            "expression": [f"Bundle.entry[{item.index}].resource.{path}"],
        },
        follows,
    )


async def _refs(
    session: AsyncSession,
    kind: str,
    model: type[Any],
    site_id: str,
    keys: set[FhirKey],
    known: dict[FhirKey, str],
) -> dict[FhirKey, str]:
    """Store ids of referenced keys: this bundle's, then the site's source ids, then store ids."""
    found = {k: known[k] for k in keys if k in known}
    rest = keys - found.keys()
    on_file = await identity.lookup(session, kind, (_full(site_id, k) for k in rest))
    for key in rest:
        if _full(site_id, key) in on_file:
            found[key] = on_file[_full(site_id, key)]
    plain = sorted(k[1] for k in rest - found.keys() if k[0] == SITE_SYSTEM)
    if plain:
        ids = await session.scalars(select(model.id).where(model.id.in_(plain), model.site_id == site_id))
        found.update({(SITE_SYSTEM, i): i for i in ids})
    return found


async def _assign(
    session: AsyncSession,
    out: StoredBundle,
    kind: str,
    items: list[RowItem],
    site_id: str,
    parents: dict[FhirKey, str],
) -> tuple[list[tuple[RowItem, str, str | None]], dict[FhirKey, str]]:
    """(item, store id, parent store id) of each item whose reference resolves, and key → store id."""
    name, model = _KINDS[kind]
    target = "Patient" if kind == "MedicationRequest" else "MedicationRequest"
    refused = {i.key: i.index for i in out.refused if i.kind == target}  # in this Bundle, not stored
    resolved: list[tuple[RowItem, str | None]] = []
    for item in items:
        parent = parents.get(item.ref) if item.ref is not None else None
        if item.ref is not None and parent is None:
            cause = refused.get(item.ref)
            reason = f"{target} not found" if cause is None else f"{target} Bundle.entry[{cause}] was not stored"
            out.issues.append(_issue(item, _REF_PATHS[kind], reason, "not-found", cause))
        else:
            resolved.append((item, parent))
    voided = {_full(site_id, i.key) for i, _ in resolved if i.row is None}
    fresh = {_full(site_id, i.key) for i, _ in resolved if i.row is not None}
    ids = await identity.assign(session, name, model, fresh - voided) if fresh - voided else {}
    ids.update(await identity.lookup(session, name, voided - ids.keys()))
    by_key = {i.key: ids[_full(site_id, i.key)] for i, _ in resolved if _full(site_id, i.key) in ids}
    return [(i, by_key.get(i.key, ""), p) for i, p in resolved], by_key


def _merge(out: StoredBundle, kind: str, result: ImportResult) -> None:
    out.result.merge(result)
    for issue in result.errors:
        path = _FIELD_PATHS.get(issue.field, "identifier")
        reason = "not found at this site" if issue.reason == "not found" else issue.reason
        out.issues.append(_issue(RowItem(issue.row, kind, None, ("", "")), path, reason, "not-found"))
    for index, (outcome, store_id) in result.stored.items():
        out.stored[index] = Stored(outcome, f"{kind}/{store_id}")


async def store_bundle(
    session: AsyncSession, read: ReadBundle, *, site_id: str, now: datetime, editor: Editor | None = None
) -> StoredBundle:
    """Write a read Bundle's rows at one site; entries that cannot be stored are answered with issues.

    Args:
        session: an open session; the caller commits (or rolls back a transaction with issues).
        read: the Bundle as ``read_bundle`` gave it (rows of its good entries).
        site_id: the site of the API token.
        now: when status changes are recorded.
        editor: who sends the Bundle; every changed row is audited with its fields before and after.
    """
    out = StoredBundle()
    by_kind = {kind: [i for i in read.rows.items if i.kind == kind] for kind in _KINDS}
    pids = await _patients(session, out, by_kind["Patient"], site_id, editor)
    out.refuse(by_kind["Patient"])
    rx_ids = await _prescriptions(session, out, by_kind["MedicationRequest"], site_id, pids, now, editor)
    out.refuse(by_kind["MedicationRequest"])
    await _fills(session, out, by_kind["MedicationDispense"], site_id, rx_ids, editor)
    return out


async def _patients(
    session: AsyncSession, out: StoredBundle, items: list[RowItem], site_id: str, editor: Editor | None
) -> dict[FhirKey, str]:
    done, ids = await _assign(session, out, "Patient", items, site_id, {})
    rows = [cast(PatientIn, i.row).model_copy(update={"patient_id": sid}) for i, sid, _ in done]
    numbers = [i.index for i, _, _ in done]
    result = await import_patients(
        session, rows, site_scope=site_id, row_numbers=numbers, store_ids=True, editor=editor
    )
    _merge(out, "Patient", result)
    return ids


async def _prescriptions(
    session: AsyncSession,
    out: StoredBundle,
    items: list[RowItem],
    site_id: str,
    pids: dict[FhirKey, str],
    now: datetime,
    editor: Editor | None,
) -> dict[FhirKey, str]:
    refs = await _refs(session, "patient", Patient, site_id, {i.ref for i in items if i.ref}, pids)
    done, ids = await _assign(session, out, "MedicationRequest", items, site_id, refs)
    rows = [
        cast(PrescriptionIn, i.row).model_copy(update={"prescription_id": sid, "patient_id": parent})
        for i, sid, parent in done
    ]
    numbers = [i.index for i, _, _ in done]
    result = await import_prescriptions(
        session, rows, site_scope=site_id, row_numbers=numbers, now=now, store_ids=True, editor=editor
    )
    _merge(out, "MedicationRequest", result)
    return ids


async def _fills(
    session: AsyncSession,
    out: StoredBundle,
    items: list[RowItem],
    site_id: str,
    rx_ids: dict[FhirKey, str],
    editor: Editor | None,
) -> None:
    refs = await _refs(
        session, "prescription", Prescription, site_id, {i.ref for i in items if i.ref}, rx_ids
    )
    done, _ = await _assign(session, out, "MedicationDispense", items, site_id, refs)
    kept = [(i, sid, parent) for i, sid, parent in done if i.row is not None]
    rows = [
        cast(FillIn, i.row).model_copy(update={"fill_id": sid, "prescription_id": parent})
        for i, sid, parent in kept
    ]
    numbers = [i.index for i, _, _ in kept]
    _merge(
        out,
        "MedicationDispense",
        await import_fills(
            session, rows, site_scope=site_id, row_numbers=numbers, store_ids=True, editor=editor
        ),
    )
    voided = [(i, sid) for i, sid, _ in done if i.row is None]
    out.result.merge(await void_fills(
            session, [sid for _, sid in voided if sid], site_scope=site_id, editor=editor
        ))
    for item, sid in voided:
        out.stored[item.index] = Stored("voided", f"MedicationDispense/{sid or item.key[1]}")
