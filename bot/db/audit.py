"""The audit trail's one writer and its readers: who saw or did what to which patient record, and when."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.base import utcnow
from bot.db.models import AuditEvent

__all__ = [
    "CSV_COLUMNS",
    "SYSTEM",
    "RecordChange",
    "csv_cell",
    "event_to_dict",
    "events_csv",
    "list_events",
    "record",
    "record_changes",
]

_LOGGER = logging.getLogger(__name__)

SYSTEM = "system"
CSV_COLUMNS = ("id", "at", "actor", "site_id", "action", "patient_id", "target", "detail")
_INSERT = insert(AuditEvent)


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    site_id: str | None,
    patient_id: str | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Write one audit row in the caller's transaction (it commits with the action it records).

    Args:
        conn: the unit of work's connection.
        actor: ``user:ID``, ``token:ID`` or ``system``.
        action: a dotted verb such as ``patient.view`` or ``task.resolve``.
        site_id: the tenant the event belongs to.
        patient_id: the patient whose record was read or changed, if any.
        target: what was acted on, such as ``task:12``.
        detail: ids and codes only (never message text or other PHI).
        at: when it happened (the app clock); defaults to now.
    """
    conn.execute(
        _INSERT,
        {
            "at": at or utcnow(),
            "actor": actor[:200],
            "site_id": site_id,
            "action": action[:60],
            "patient_id": patient_id,
            "target": target[:100],
            "detail": detail or {},
        },
    )
    _LOGGER.debug("audit %s %s %s", actor, action, target)


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One created or changed row of the dispensary record, for its audit event.

    Attributes:
        kind: ``patient``, ``prescription`` or ``fill`` (the action is ``KIND.create`` or ``KIND.update``).
        key: the row's id.
        site_id: the tenant it belongs to.
        patient_id: the patient whose record it is.
        before: the changed fields' stored values (None for a new row).
        after: the changed fields' new values (every given field for a new row).
    """

    kind: str
    key: str
    site_id: str | None
    patient_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any]


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in sorted(values.items())}


def record_changes(
    conn: Connection, changes: Sequence[RecordChange], *, actor: str, source: str, at: datetime | None = None
) -> None:
    """Write one audit row per created or changed record row, with its fields before and after.

    The record's values are the point of this trail (who changed a patient's phone, from what to what), so
    unlike other events these details hold them; the audit trail is read by clinic admins only and is
    never logged.

    Args:
        conn: the unit of work's connection (the rows commit with the change they record).
        changes: what changed.
        actor: ``user:ID`` or ``token:ID``.
        source: the way in: ``api``, ``fhir``, ``web``.
        at: when (the app clock); defaults to now.
    """
    if not changes:
        return
    when = at or utcnow()
    rows = [
        {
            "at": when,
            "actor": actor[:200],
            "site_id": change.site_id,
            "action": f"{change.kind}.{'create' if change.before is None else 'update'}",
            "patient_id": change.patient_id,
            "target": f"{change.kind}:{change.key}"[:100],
            "detail": {
                "source": source,
                "before": _plain(change.before or {}),
                "after": _plain(change.after),
            },
        }
        for change in changes
    ]
    conn.execute(_INSERT, rows)
    _LOGGER.debug("audit %s: %d record changes", actor, len(rows))


async def list_events(
    session: AsyncSession,
    *,
    site_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    patient_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
) -> tuple[list[AuditEvent], int]:
    """One site's audit events (oldest first, or newest first) and the total count matching the filters."""
    filters = [AuditEvent.site_id == site_id]
    if since is not None:
        filters.append(AuditEvent.at >= since)
    if until is not None:
        filters.append(AuditEvent.at < until)
    if action:
        filters.append(AuditEvent.action == action)
    if patient_id:
        filters.append(AuditEvent.patient_id == patient_id)
    if actor:
        filters.append(AuditEvent.actor == actor)
    total = await session.scalar(select(func.count(AuditEvent.id)).where(*filters)) or 0
    order = (AuditEvent.at.desc(), AuditEvent.id.desc()) if newest_first else (AuditEvent.at, AuditEvent.id)
    rows = await session.scalars(
        select(AuditEvent).where(*filters).order_by(*order).limit(limit).offset(offset)
    )
    return list(rows), total


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    """The JSON shape of an audit event."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "site_id": event.site_id,
        "action": event.action,
        "patient_id": event.patient_id,
        "target": event.target,
        "detail": event.detail or {},
    }


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading ``'`` (OWASP).

    Spreadsheets run cells that start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as
    formulas (CSV injection); every CSV export writes its text cells through this. Python numbers are
    written as they are.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number (even a negative one) is never run as a formula: keep it a number
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def events_csv(events: Sequence[AuditEvent]) -> str:
    """Audit events as CSV with a header row (formula-like cells are neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = event_to_dict(event)
        row["detail"] = ";".join(f"{k}={v}" for k, v in sorted((event.detail or {}).items()))
        writer.writerow([csv_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
