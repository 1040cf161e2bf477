"""The signal store: record adherence and abandonment signals once, and read them back in export order."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.base import utcnow
from bot.db.models import Signal
from bot.db.vocabulary import SIGNAL_KINDS, SIGNAL_SOURCES

__all__ = [
    "SIGNAL_KINDS",
    "SIGNAL_SOURCES",
    "record_signal",
    "signal_row",
    "signal_to_dict",
    "signals_since",
]

_LOGGER = logging.getLogger(__name__)
_INSERT = {
    name: dialect.insert(Signal).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Signal.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


def record_signal(
    conn: Connection,
    *,
    patient_id: str,
    site_id: str,
    kind: str,
    source: str,
    occurred_at: datetime,
    value: dict[str, Any] | None = None,
    prescription_id: str | None = None,
    source_message_id: int | None = None,
    dedupe_key: str | None = None,
    created_at: datetime | None = None,
) -> int | None:
    """Store one signal, unless a signal with the same ``dedupe_key`` already exists; returns its id or None.

    The insert is a single ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``, so concurrent writers and
    re-runs never raise and never leave the transaction broken.

    Args:
        conn: the unit of work; the caller commits.
        patient_id: the patient the signal is about.
        site_id: the site that owns the patient or prescription.
        kind: one of SIGNAL_KINDS.
        source: one of SIGNAL_SOURCES (patient, computed, staff, provider).
        occurred_at: when it happened (aware datetime).
        value: JSON-safe details (e.g. ``{"pdc": 0.62}``, ``{"symptom": "nausea", "grade": 3}``).
        prescription_id: the therapy it concerns, if any.
        source_message_id: the inbound message it came from, if any.
        dedupe_key: a stable key; a second signal with the same key is not stored.
        created_at: the recording time (defaults to now; tests pass their clock's time).

    Raises:
        ValueError: an unknown kind or source, or a naive ``occurred_at``.
    """
    row = signal_row(
        patient_id=patient_id,
        site_id=site_id,
        kind=kind,
        source=source,
        occurred_at=occurred_at,
        value=value,
        prescription_id=prescription_id,
        source_message_id=source_message_id,
        dedupe_key=dedupe_key,
        created_at=created_at,
    )
    signal_id: int | None = conn.execute(_INSERT[conn.dialect.name], row).scalar_one_or_none()
    if signal_id is None:
        _LOGGER.debug("signal %s for patient %s already recorded", kind, patient_id)
    else:
        _LOGGER.info("signal %s id=%s recorded for patient %s", kind, signal_id, patient_id)
    return signal_id


def _since_query(
    since_id: int, since_time: datetime | None, site_id: str | None, limit: int
) -> Select[Signal]:
    query = select(Signal).where(Signal.id > since_id)
    if since_time is not None:
        query = query.where(Signal.created_at >= since_time)
    if site_id is not None:
        query = query.where(Signal.site_id == site_id)
    return query.order_by(Signal.id).limit(limit)


async def signals_since(
    session: AsyncSession,
    *,
    since_id: int = 0,
    since_time: datetime | None = None,
    site_id: str | None = None,
    limit: int = 1000,
) -> list[Signal]:
    """Signals after a watermark, oldest first (ascending id), at most ``limit`` of them.

    Args:
        session: a session to read with.
        since_id: only signals with an id greater than this (the last id a caller has seen).
        since_time: only signals recorded (``created_at``) at or after this time.
        site_id: only this site's signals.
        limit: page size (1..10000).

    Raises:
        ValueError: a negative ``since_id``, a naive ``since_time`` or a limit out of range.
    """
    if since_id < 0:
        raise ValueError("since: must be 0 or a positive signal id")
    if since_time is not None and since_time.tzinfo is None:
        raise ValueError("since: a time needs a time zone")
    if not 1 <= limit <= 10000:
        raise ValueError("limit: must be between 1 and 10000")
    return list(await session.scalars(_since_query(since_id, since_time, site_id, limit)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def signal_to_dict(signal: Signal) -> dict[str, Any]:
    """The export shape of a signal (webhook, NDJSON, CSV and the REST API all use it)."""
    return {
        "id": signal.id,
        "patient_id": signal.patient_id,
        "prescription_id": signal.prescription_id,
        "site_id": signal.site_id,
        "kind": signal.kind,
        "value": dict(signal.value or {}),
        "source": signal.source,
        "source_message_id": signal.source_message_id,
        "occurred_at": _iso(signal.occurred_at),
        "created_at": _iso(signal.created_at),
    }


def signal_row(
    *,
    patient_id: str,
    site_id: str,
    kind: str,
    source: str,
    occurred_at: datetime,
    value: dict[str, Any] | None = None,
    prescription_id: str | None = None,
    source_message_id: int | None = None,
    dedupe_key: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The validated column values of one signal .

    Raises:
        ValueError: an unknown kind or source, or a naive ``occurred_at``.
    """
    if kind not in SIGNAL_KINDS:
        raise ValueError(f"kind: unknown signal kind {kind!r}")
    if source not in SIGNAL_SOURCES:
        raise ValueError(f"source: unknown signal source {source!r}")
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at: needs a time zone")
    return {
        "patient_id": patient_id,
        "site_id": site_id,
        "prescription_id": prescription_id,
        "kind": kind,
        "value": dict(value or {}),
        "source": source,
        "source_message_id": source_message_id,
        "dedupe_key": dedupe_key,
        "occurred_at": occurred_at,
        "created_at": created_at or utcnow(),
    }
