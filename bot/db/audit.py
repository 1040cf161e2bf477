"""The audit trail's one writer and its readers: who saw or did what to which patient record, and when."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.base import utcnow
from bot.db.models import AuditEvent

__all__ = ["CSV_COLUMNS", "SYSTEM", "event_to_dict", "events_csv", "list_events", "record"]

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


async def list_events(
    session: AsyncSession,
    *,
    site_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    patient_id: str | None = None,
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


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def events_csv(events: Sequence[AuditEvent]) -> str:
    """Audit events as CSV with a header row (formula-like cells are neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = event_to_dict(event)
        row["detail"] = ";".join(f"{k}={v}" for k, v in sorted((event.detail or {}).items()))
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
