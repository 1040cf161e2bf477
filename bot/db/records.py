"""Upsert patients, prescriptions and fills from the dispensary record (CSV, REST or FHIR) into the store.

The input models (``PatientIn``, ``PrescriptionIn``, ``FillIn``) carry exactly the CSV columns of
DESIGN.md, so the REST API validates the same shapes. Ids are the source system's: a known id updates
its row, an unknown one creates it, and a row equal to the stored one is counted as unchanged.

An optional field left out (None) keeps what the store holds, or takes the model default on creation,
so a partial feed (FHIR without payer, say) never erases what a fuller feed set.

Work is done in batches of ``BATCH_SIZE`` rows with the existing ids preloaded per batch and written
with bulk INSERT/UPDATE statements. The caller owns the transaction (nothing is committed here).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy import Insert, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import identity
from bot.db.audit import RecordChange, record_changes
from bot.db.base import utcnow
from bot.db.consent import apply_number_suppression
from bot.db.models import Fill, Patient, Prescription, PrescriptionEvent, Site
from bot.db.unit import in_session

__all__ = [
    "BATCH_SIZE",
    "PAYER_TYPES",
    "PRESCRIPTION_STATUSES",
    "Editor",
    "FillIn",
    "ImportIssue",
    "ImportResult",
    "PatientIn",
    "PrescriptionIn",
    "import_fills",
    "import_patients",
    "import_prescriptions",
    "issues_from_validation",
    "validate_rows",
    "void_fills",
]

_LOGGER = logging.getLogger(__name__)

BATCH_SIZE = 1000
PAYER_TYPES = ("commercial", "medicare_d", "medicaid", "cash", "other")
PRESCRIPTION_STATUSES = ("received", "active", "on_hold", "discontinued", "completed")
PayerType = Literal["commercial", "medicare_d", "medicaid", "cash", "other"]
RxStatus = Literal["received", "active", "on_hold", "discontinued", "completed"]
_TRUE = frozenset({"true", "yes", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "n", "f"})
_MONEY = re.compile(r"^\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?$")


# --- validation helpers (used as pydantic "before" validators; context may carry date_format/region) ---


ISO_DATE = "%Y-%m-%d"


def parse_date(value: str, fmt: str = ISO_DATE) -> date:
    """Parse a date in ``fmt`` (strftime codes; ISO by default).

    Raises:
        ValueError: with a message such as ``not a date (expected YYYY-MM-DD)``.
    """
    text = value.strip()
    if not text:
        raise ValueError("required")
    if fmt == ISO_DATE:
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        raise ValueError("not a date (expected YYYY-MM-DD)")
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        raise ValueError(f"not a date (expected {fmt})") from None


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _date_value(value: Any, info: ValidationInfo) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        fmt = (info.context or {}).get("date_format", ISO_DATE)
        return parse_date(value, fmt)
    if isinstance(value, datetime):
        raise ValueError("expected a date, not a date and time")
    return value


def _bool_value(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be true or false")
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise ValueError("must be true or false")


@lru_cache(maxsize=1024)
def _zone_ok(name: str) -> bool:
    if len(name) > 64:  # IANA names are far shorter; a long one is a path the OS refuses (OSError)
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=65536)
def _e164(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _enum_text(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        return re.sub(r"[\s-]+", "_", value.strip().lower())
    return value


class _In(BaseModel):
    """Base of the import rows: unknown fields rejected, text stripped, immutable, no NUL characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refusing it here keeps one bad cell from failing its batch.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value


class PatientIn(_In):
    """A patient row: the CSV columns of ``midbot import patients`` and ``POST /api/v1/patients``."""

    patient_id: str = Field(min_length=1, max_length=64)
    site_id: str = Field(min_length=1, max_length=64)
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    birth_date: date | None = None
    phone: str
    language: Literal["en", "es"] | None = None  # None: keep (new: en)
    time_zone: str | None = None  # None: the site's
    sms_consent: bool | None = None  # None: keep (new: true)
    detailed_consent: bool | None = None  # None: keep (new: false)

    _dates = field_validator("birth_date", mode="before")(_date_value)
    _bools = field_validator("sms_consent", "detailed_consent", mode="before")(_bool_value)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("required")
        return _e164(value.strip(), (info.context or {}).get("phone_region", "US"))

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if isinstance(value, str):
            primary = value.strip().lower().replace("_", "-").split("-")[0]
            if primary not in ("en", "es"):
                raise ValueError("must be en or es")
            return primary
        return value

    @field_validator("time_zone", mode="before")
    @classmethod
    def _time_zone(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if isinstance(value, str):
            if not _zone_ok(value.strip()):
                raise ValueError("not an IANA time zone (e.g. America/Chicago)")
            return value.strip()
        return value

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= utcnow().date():
            raise ValueError("not a plausible birth date")
        return value


class PrescriptionIn(_In):
    """A prescription row: the CSV columns of ``midbot import prescriptions``."""

    prescription_id: str = Field(min_length=1, max_length=64)
    patient_id: str = Field(min_length=1, max_length=64)
    drug: str = Field(min_length=1, max_length=200)
    therapy_class: str | None = Field(None, max_length=100)  # None: keep (new: "")
    payer_type: PayerType | None = None  # None: keep (new: other)
    status: RxStatus | None = None  # None: keep (new: active)
    written_on: date | None = None

    _dates = field_validator("written_on", mode="before")(_date_value)

    @field_validator("therapy_class", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("payer_type", mode="before")
    @classmethod
    def _payer(cls, value: Any) -> Any:
        value = _enum_text(value)
        if value is not None and value not in PAYER_TYPES:
            raise ValueError(f"must be one of {', '.join(PAYER_TYPES)}")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        value = _enum_text(value)
        if value is not None and value not in PRESCRIPTION_STATUSES:
            raise ValueError(f"must be one of {', '.join(PRESCRIPTION_STATUSES)}")
        return value


class FillIn(_In):
    """A fill row: the CSV columns of ``midbot import fills`` (copay in dollars)."""

    fill_id: str = Field(min_length=1, max_length=64)
    prescription_id: str = Field(min_length=1, max_length=64)
    dispensed_on: date
    days_supply: int = Field(ge=1, le=365)
    quantity: float | None = Field(None, ge=0, le=1_000_000, allow_inf_nan=False)  # None: keep (new: 0)
    copay: Decimal | None = Field(None, ge=0, le=1_000_000)  # dollars; None: keep (new: 0)

    _dates = field_validator("dispensed_on", mode="before")(_date_value)

    @field_validator("days_supply", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if value is None:
            raise ValueError("required")
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ValueError("not a number") from None
            if not number.is_integer():
                raise ValueError("not a whole number of days")
            return int(number)
        return value

    @field_validator("quantity", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError("not a number") from None
        return value

    @field_validator("copay", mode="before")
    @classmethod
    def _copay(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        if isinstance(value, str):
            text = value.strip()
            if not _MONEY.match(text):
                raise ValueError("not an amount in dollars (e.g. 12.50)")
            try:
                return Decimal(text.lstrip("$").strip().replace(",", ""))
            except InvalidOperation:
                raise ValueError("not an amount in dollars (e.g. 12.50)") from None
        return value

    @field_validator("dispensed_on")
    @classmethod
    def _plausible_dispense(cls, value: date) -> date:
        if value < date(1990, 1, 1):
            raise ValueError("not a plausible dispense date")
        return value

    @property
    def copay_cents(self) -> int | None:
        """The copay in cents (half-up), or None when not given."""
        if self.copay is None:
            return None
        return int((self.copay * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- results ---


@dataclass(frozen=True, slots=True, order=True)
class ImportIssue:
    """A row that was not imported: its row number, the field at fault and why."""

    row: int
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Editor:
    """Who changes the record through an import, so every change is audited (CLI imports pass none).

    Attributes:
        actor: ``user:ID`` or ``token:ID``.
        source: the way in (``api``, ``fhir``, ``web``).
        at: when (the app clock).
    """

    actor: str
    source: str
    at: datetime


@dataclass(slots=True)
class ImportResult:
    """Counts of an import, its rejected rows, and the patients whose outreach must be re-planned."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    affected_patient_ids: set[str] = field(default_factory=set)
    stored: dict[int, tuple[str, str]] = field(
        default_factory=dict
    )  # row -> (created|updated|unchanged, store id)

    def merge(self, other: ImportResult) -> None:
        """Add another result's counts, errors and affected patients to this one."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors.extend(other.errors)
        self.affected_patient_ids |= other.affected_patient_ids
        self.stored.update(other.stored)

    def summary(self) -> dict[str, int]:
        """Counts for a JSON summary line."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": len(self.errors),
        }


def issues_from_validation(row: int, exc: ValidationError) -> list[ImportIssue]:
    """Turn a pydantic error into one issue per field, with plain reasons."""
    issues = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "row"
        reason = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            reason = "required"
        elif err["type"] == "extra_forbidden":
            reason = "unknown field"
        issues.append(ImportIssue(row, name, reason))
    return issues


# --- upserts ---

_Row = tuple[int, Any]
_State = dict[str, dict[str, Any]]


@dataclass(slots=True)
class _Batch:
    """Pending writes of one batch: inserts and per-id updates."""

    state: _State
    inserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (id, changed fields before or None for a new row, after) for the audit trail
    changes: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = field(default_factory=list)

    def apply(self, key: str, values: dict[str, Any], defaults: dict[str, Any], result: ImportResult) -> str:
        """Record a row; returns "created", "updated" or "unchanged"."""
        current = self.state.get(key)
        if current is None:
            row = {"id": key, **defaults}
            row.update((k, v) for k, v in values.items() if v is not None or k not in defaults)
            self.inserts[key] = row
            self.state[key] = row
            self.changes.append((key, None, {k: v for k, v in row.items() if k != "id"}))
            result.created += 1
            return "created"
        changed = {
            k: v for k, v in values.items() if current.get(k) != v and (v is not None or k not in defaults)
        }
        if not changed:
            result.unchanged += 1
            return "unchanged"
        self.changes.append((key, {k: current.get(k) for k in changed}, dict(changed)))
        current.update(changed)
        if key not in self.inserts:
            self.updates.setdefault(key, {"id": key}).update(changed)
        result.updated += 1
        return "updated"

    async def flush(
        self,
        session: AsyncSession,
        model: type[Any],
        editor: Editor | None = None,
        owner: Callable[[str, dict[str, Any]], tuple[str | None, str | None]] | None = None,
    ) -> None:
        """Write the batch; with an editor, one audit event per changed row (``owner``: its site, patient)."""
        if editor is not None and owner is not None and self.changes:
            audited = [
                RecordChange(model.__tablename__, key, *owner(key, self.state[key]), before, after)
                for key, before, after in self.changes
            ]
            await in_session(
                session, record_changes, audited, actor=editor.actor, source=editor.source, at=editor.at
            )
        if self.inserts:
            await session.execute(insert(model), list(self.inserts.values()))
        if self.updates:
            await session.execute(update(model), list(self.updates.values()))


def _numbered(rows: Sequence[Any], row_numbers: Sequence[int] | None) -> list[_Row]:
    numbers: Iterable[int] = row_numbers if row_numbers is not None else range(1, len(rows) + 1)
    return list(zip(numbers, rows, strict=True))


def _chunks(rows: list[_Row]) -> Iterable[list[_Row]]:
    for start in range(0, len(rows), BATCH_SIZE):
        yield rows[start : start + BATCH_SIZE]


async def _load(
    session: AsyncSession, model: type[Any], columns: Sequence[str], ids: Iterable[str]
) -> _State:
    keys = sorted(set(ids))
    if not keys:
        return {}
    cols = [getattr(model, c) for c in ("id", *columns)]
    rows = await session.execute(select(*cols).where(model.id.in_(keys)))
    return {r[0]: dict(zip(columns, r[1:], strict=True)) for r in rows}


def _in_scope(site_id: str | None, site_scope: str | None) -> bool:
    return site_id is not None and (site_scope is None or site_id == site_scope)


_PATIENT_COLUMNS = (
    "site_id",
    "first_name",
    "last_name",
    "birth_date",
    "phone",
    "language",
    "time_zone",
    "sms_consent",
    "detailed_consent",
)
# Fields listed here keep the stored value when a row leaves them out (None); these are their values for a
# new row. Fields not listed (time_zone: None means "the site's") are written as given.
_PATIENT_DEFAULTS: dict[str, Any] = {
    "birth_date": None,
    "language": "en",
    "sms_consent": True,
    "detailed_consent": False,
}


async def import_patients(
    session: AsyncSession,
    rows: Sequence[PatientIn],
    *,
    site_scope: str | None = None,
    row_numbers: Sequence[int] | None = None,
    editor: Editor | None = None,
    store_ids: bool = False,
) -> ImportResult:
    """Create or update patients by the source system's ``patient_id`` (the site's own id system).

    Args:
        session: an open session; the caller commits.
        rows: validated patient rows.
        site_scope: when set (an API token's site), rows of any other site are rejected as not found.
        row_numbers: the row number to report for each row (default: 1-based position in ``rows``).
        editor: the staff user or token making the change; each changed row is audited with its
            fields before and after.
        store_ids: the ids are already store ids (resolved by ``bot.db.identity``, as FHIR does).

    Returns:
        Counts, per-row errors (``site_id: not found``) and the created or updated patient ids.
    """
    result = ImportResult()
    for batch in _chunks(_numbered(rows, row_numbers)):
        sites = await _load(session, Site, (), (r.site_id for _, r in batch))
        if not store_ids:
            batch = await _patient_store_ids(session, batch, sites, site_scope)
        pending = _Batch(await _load(session, Patient, _PATIENT_COLUMNS, (r.patient_id for _, r in batch)))
        for number, row in batch:
            existing = pending.state.get(row.patient_id)
            if row.site_id not in sites or not _in_scope(row.site_id, site_scope):
                result.errors.append(ImportIssue(number, "site_id", "not found"))
            elif existing is not None and not _in_scope(existing["site_id"], site_scope):
                result.errors.append(ImportIssue(number, "patient_id", "not found"))
            else:
                values = row.model_dump(exclude={"patient_id"})
                outcome = pending.apply(row.patient_id, values, _PATIENT_DEFAULTS, result)
                result.stored[number] = (outcome, row.patient_id)
                if outcome != "unchanged":
                    result.affected_patient_ids.add(row.patient_id)
        await pending.flush(session, Patient, editor, lambda key, row: (row["site_id"], key))
        # A number that opted out before its patient was on file (or given this number) stays opted out.
        ids = [row.patient_id for _number, row in batch if row.patient_id in result.affected_patient_ids]
        await in_session(session, apply_number_suppression, ids, utcnow())
    _LOGGER.info("patients imported: %s", result.summary())
    return result


_RX_COLUMNS = ("patient_id", "site_id", "drug", "therapy_class", "payer_type", "status", "written_on")
_RX_DEFAULTS: dict[str, Any] = {
    "therapy_class": "",
    "payer_type": "other",
    "status": "active",
    "written_on": None,
}


async def import_prescriptions(
    session: AsyncSession,
    rows: Sequence[PrescriptionIn],
    *,
    site_scope: str | None = None,
    row_numbers: Sequence[int] | None = None,
    now: datetime | None = None,
    editor: Editor | None = None,
    store_ids: bool = False,
) -> ImportResult:
    """Create or update prescriptions by ``prescription_id``; status changes record a PrescriptionEvent.

    A prescription takes its site from its patient. On first sight an event named after its status is
    recorded (``received``, ``active``, ...); on each later status change, one named after the new status
    (``discontinued``, ``on_hold``, ...), with the previous status in its detail.

    Args:
        session: an open session; the caller commits.
        rows: validated prescription rows.
        site_scope: when set, a patient or prescription of another site is rejected as not found.
        row_numbers: the row number to report for each row.
        now: when the change is recorded (default: the system clock).
        editor: the staff user or token making the change (each changed row is audited).
        store_ids: the ids are already store ids.
    """
    at = now or utcnow()
    result = ImportResult()
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in _chunks(_numbered(rows, row_numbers)):
        if not store_ids:
            batch = await _rx_store_ids(session, batch, site_scope, result)
        patients = await _load(session, Patient, ("site_id",), (r.patient_id for _, r in batch))
        pending = _Batch(
            await _load(session, Prescription, _RX_COLUMNS, (r.prescription_id for _, r in batch))
        )
        for number, row in batch:
            patient = patients.get(row.patient_id)
            existing = pending.state.get(row.prescription_id)
            if patient is None or not _in_scope(patient["site_id"], site_scope):
                result.errors.append(ImportIssue(number, "patient_id", "not found"))
                continue
            if existing is not None and not _in_scope(existing["site_id"], site_scope):
                result.errors.append(ImportIssue(number, "prescription_id", "not found"))
                continue
            before = dict(existing) if existing is not None else None
            values = {**row.model_dump(exclude={"prescription_id"}), "site_id": patient["site_id"]}
            outcome = pending.apply(row.prescription_id, values, _RX_DEFAULTS, result)
            result.stored[number] = (outcome, row.prescription_id)
            if outcome == "unchanged":
                continue
            result.affected_patient_ids.add(row.patient_id)
            if before is not None and before["patient_id"] != row.patient_id:
                result.affected_patient_ids.add(before["patient_id"])
            status = pending.state[row.prescription_id]["status"]
            if before is None or before["status"] != status:
                _status_event(events, pending, row.prescription_id, status, before, at)
        await pending.flush(
            session, Prescription, editor, lambda _key, row: (row["site_id"], row["patient_id"])
        )
    await _insert_events(session, list(events.values()))
    _LOGGER.info("prescriptions imported: %s, %d status events", result.summary(), len(events))
    return result


def _status_event(
    events: dict[tuple[str, str], dict[str, Any]],
    pending: _Batch,
    rx_id: str,
    status: str,
    before: dict[str, Any] | None,
    at: datetime,
) -> None:
    detail = {"source": "import"} | ({"from": before["status"]} if before is not None else {})
    events[(rx_id, status)] = {"prescription_id": rx_id, "name": status, "occurred_at": at, "detail": detail}
    target = pending.inserts.get(rx_id) or pending.updates.setdefault(rx_id, {"id": rx_id})
    target["status_changed_at"] = at


async def _insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    # The same status at the same instant (a file flipping back and forth under a fixed --now) is one event.
    key = ["prescription_id", "name", "occurred_at"]
    stmt: Insert
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(PrescriptionEvent).on_conflict_do_nothing(index_elements=key)
    else:
        stmt = sqlite.insert(PrescriptionEvent).on_conflict_do_nothing(index_elements=key)
    for start in range(0, len(rows), BATCH_SIZE):
        await session.execute(stmt, rows[start : start + BATCH_SIZE])


_FILL_COLUMNS = ("prescription_id", "dispensed_on", "days_supply", "quantity", "copay_cents")
_FILL_DEFAULTS: dict[str, Any] = {"quantity": 0.0, "copay_cents": 0}


async def import_fills(
    session: AsyncSession,
    rows: Sequence[FillIn],
    *,
    site_scope: str | None = None,
    row_numbers: Sequence[int] | None = None,
    editor: Editor | None = None,
    store_ids: bool = False,
) -> ImportResult:
    """Create or update fills by ``fill_id``; the prescription must exist (and be in scope).

    Args:
        session: an open session; the caller commits.
        rows: validated fill rows.
        site_scope: when set, a prescription or fill of another site is rejected as not found.
        row_numbers: the row number to report for each row.
        editor: the staff user or token making the change (each changed row is audited).
        store_ids: the ids are already store ids.
    """
    result = ImportResult()
    for batch in _chunks(_numbered(rows, row_numbers)):
        if not store_ids:
            batch = await _fill_store_ids(session, batch, site_scope, result)
        pending = _Batch(await _load(session, Fill, _FILL_COLUMNS, (r.fill_id for _, r in batch)))
        rx_ids = {r.prescription_id for _, r in batch} | {
            s["prescription_id"] for s in pending.state.values()
        }
        prescriptions = await _load(session, Prescription, ("patient_id", "site_id"), rx_ids)
        for number, row in batch:
            rx = prescriptions.get(row.prescription_id)
            existing = pending.state.get(row.fill_id)
            if rx is None or not _in_scope(rx["site_id"], site_scope):
                result.errors.append(ImportIssue(number, "prescription_id", "not found"))
                continue
            old_rx = prescriptions.get(existing["prescription_id"]) if existing is not None else None
            if old_rx is not None and not _in_scope(old_rx["site_id"], site_scope):
                result.errors.append(ImportIssue(number, "fill_id", "not found"))
                continue
            values = {
                "prescription_id": row.prescription_id,
                "dispensed_on": row.dispensed_on,
                "days_supply": row.days_supply,
                "quantity": row.quantity,
                "copay_cents": row.copay_cents,
            }
            outcome = pending.apply(row.fill_id, values, _FILL_DEFAULTS, result)
            result.stored[number] = (outcome, row.fill_id)
            if outcome != "unchanged":
                result.affected_patient_ids.add(rx["patient_id"])
                if old_rx is not None:
                    result.affected_patient_ids.add(old_rx["patient_id"])
        await pending.flush(session, Fill, editor, _fill_owner(prescriptions))
    _LOGGER.info("fills imported: %s", result.summary())
    return result


def _fill_owner(
    prescriptions: _State,
) -> Callable[[str, dict[str, Any]], tuple[str | None, str | None]]:
    def owner(_key: str, row: dict[str, Any]) -> tuple[str | None, str | None]:
        rx = prescriptions.get(row["prescription_id"], {})
        return rx.get("site_id"), rx.get("patient_id")

    return owner


async def void_fills(
    session: AsyncSession, fill_ids: Sequence[str], *, site_scope: str, editor: Editor | None = None
) -> ImportResult:
    """Remove fills recorded in error (FHIR ``entered-in-error``); their patients' outreach must be re-planned.

    A fill not on file, or of another site, is left alone (``updated`` counts the removed ones). With an
    ``editor``, each removal is audited with the fill's dates before.
    """
    result = ImportResult()
    if not fill_ids:
        return result
    rows = await session.execute(
        select(Fill.id, Prescription.patient_id, Fill.dispensed_on, Fill.days_supply)
        .join(Prescription, Prescription.id == Fill.prescription_id)
        .where(Fill.id.in_(sorted(set(fill_ids))), Prescription.site_id == site_scope)
    )
    listed = rows.all()
    found = {row[0]: row[1] for row in listed}
    if found:
        await session.execute(delete(Fill).where(Fill.id.in_(sorted(found))))
        if editor is not None:
            changes = [
                RecordChange(
                    "fill",
                    fid,
                    site_scope,
                    pid,
                    {"dispensed_on": dispensed, "days_supply": days, "status": "completed"},
                    {"status": "entered-in-error"},
                )
                for fid, pid, dispensed, days in listed
            ]
            await in_session(
                session, record_changes, changes, actor=editor.actor, source=editor.source, at=editor.at
            )
    result.updated = len(found)
    result.affected_patient_ids = set(found.values())
    _LOGGER.info("fills voided: %d", len(found))
    return result


# --- source ids → store ids (REST/CSV: each site's own id system) ---


async def _patient_store_ids(
    session: AsyncSession, batch: list[_Row], sites: _State, site_scope: str | None
) -> list[_Row]:
    keys = {
        (r.site_id, identity.site_system(r.site_id), r.patient_id)
        for _, r in batch
        if r.site_id in sites and _in_scope(r.site_id, site_scope)
    }
    ids = await identity.assign(session, "patient", Patient, keys)
    out = []
    for number, row in batch:
        store_id = ids.get((row.site_id, identity.site_system(row.site_id), row.patient_id))
        out.append((number, row if store_id is None else row.model_copy(update={"patient_id": store_id})))
    return out


def _ref_or_issue(
    refs: dict[str, identity.Ref | str], value: str, number: int, name: str, result: ImportResult
) -> identity.Ref | None:
    ref = refs.get(value)
    if isinstance(ref, identity.Ref):
        return ref
    reason = "the same id is on file at several sites" if ref == identity.AMBIGUOUS else "not found"
    result.errors.append(ImportIssue(number, name, reason))
    return None


async def _rx_store_ids(
    session: AsyncSession, batch: list[_Row], site_scope: str | None, result: ImportResult
) -> list[_Row]:
    refs = await identity.resolve_refs(
        session, "patient", Patient, (r.patient_id for _, r in batch), site_scope
    )
    resolved = []
    for number, row in batch:
        ref = _ref_or_issue(refs, row.patient_id, number, "patient_id", result)
        if ref is not None:
            resolved.append((number, row, ref))
    keys = {(ref.site_id, identity.site_system(ref.site_id), row.prescription_id) for _, row, ref in resolved}
    ids = await identity.assign(session, "prescription", Prescription, keys)
    return [
        (
            number,
            row.model_copy(
                update={
                    "patient_id": ref.target_id,
                    "prescription_id": ids[
                        (ref.site_id, identity.site_system(ref.site_id), row.prescription_id)
                    ],
                }
            ),
        )
        for number, row, ref in resolved
    ]


async def _fill_store_ids(
    session: AsyncSession, batch: list[_Row], site_scope: str | None, result: ImportResult
) -> list[_Row]:
    refs = await identity.resolve_refs(
        session, "prescription", Prescription, (r.prescription_id for _, r in batch), site_scope
    )
    resolved = []
    for number, row in batch:
        ref = _ref_or_issue(refs, row.prescription_id, number, "prescription_id", result)
        if ref is not None:
            resolved.append((number, row, ref))
    keys = {(ref.site_id, identity.site_system(ref.site_id), row.fill_id) for _, row, ref in resolved}
    ids = await identity.assign(session, "fill", Fill, keys)
    return [
        (
            number,
            row.model_copy(
                update={
                    "prescription_id": ref.target_id,
                    "fill_id": ids[(ref.site_id, identity.site_system(ref.site_id), row.fill_id)],
                }
            ),
        )
        for number, row, ref in resolved
    ]


def validate_rows(
    model: type[PatientIn] | type[PrescriptionIn] | type[FillIn],
    rows: Iterable[tuple[int, dict[str, Any]]],
    *,
    date_format: str = ISO_DATE,
    phone_region: str = "US",
    on_row: Callable[[int], None] | None = None,
) -> tuple[list[Any], list[int], list[ImportIssue]]:
    """Validate raw rows into models: (models, their row numbers, issues of the rejected rows)."""
    context = {"date_format": date_format, "phone_region": phone_region}
    good: list[Any] = []
    numbers: list[int] = []
    issues: list[ImportIssue] = []
    for number, raw in rows:
        try:
            good.append(model.model_validate(raw, context=context))
            numbers.append(number)
        except ValidationError as exc:
            issues.extend(issues_from_validation(number, exc))
        if on_row is not None:
            on_row(number)
    return good, numbers, issues
