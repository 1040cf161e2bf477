"""Upserts of patients, prescriptions and fills: create, update, unchanged, scope, events, batches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Fill, Patient, Prescription, PrescriptionEvent
from bot.db.records import (
    FillIn,
    ImportIssue,
    PatientIn,
    PrescriptionIn,
    import_fills,
    import_patients,
    import_prescriptions,
    issues_from_validation,
    validate_rows,
)

Maker = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _patient(pid: str = "P1", **over: Any) -> PatientIn:
    base = {
        "patient_id": pid,
        "site_id": "lakeside",
        "first_name": "Ana",
        "last_name": "Ruiz",
        "birth_date": "1958-04-02",
        "phone": "(312) 555-0142",
        "language": "es",
        "sms_consent": "yes",
        "detailed_consent": "0",
    }
    return PatientIn.model_validate(base | over)


def _rx(rid: str = "RX1", **over: Any) -> PrescriptionIn:
    base = {"prescription_id": rid, "patient_id": "P1", "drug": "capecitabine", "status": "received"}
    return PrescriptionIn.model_validate(base | over)


def _fill(fid: str = "F1", **over: Any) -> FillIn:
    base = {"fill_id": fid, "prescription_id": "RX1", "dispensed_on": "2026-10-01", "days_supply": "28"}
    return FillIn.model_validate(base | over)


async def _run(store: Maker, fn: Any, rows: list[Any], **kw: Any) -> Any:
    async with store.begin() as session:
        return await fn(session, rows, **kw)


async def _count(store: Maker, model: Any) -> int:
    async with store() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def test_patient_rows_are_normalised() -> None:
    row = _patient(language="es-MX", time_zone=" America/Denver ", sms_consent="TRUE", detailed_consent="no")
    assert row.phone == "+13125550142"
    assert row.language == "es" and row.time_zone == "America/Denver"
    assert row.sms_consent is True and row.detailed_consent is False
    assert _patient(language="", time_zone="").language is None


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("phone", "555-1234", "not a valid phone number"),
        ("phone", "call me", "not a phone number"),
        ("language", "fr", "must be en or es"),
        ("time_zone", "Mars/Olympus", "not an IANA time zone"),
        ("sms_consent", "maybe", "must be true or false"),
        ("birth_date", "1958/04/02", "not a date (expected YYYY-MM-DD)"),
        ("birth_date", "1850-01-01", "not a plausible birth date"),
        ("first_name", "", "at least 1 character"),
    ],
)
def test_bad_patient_values_name_the_field(field: str, value: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        _patient(**{field: value})
    (issue,) = issues_from_validation(7, err.value)
    assert issue.row == 7 and issue.field == field and reason in issue.reason


def test_prescription_and_fill_values() -> None:
    assert _rx(status="On-Hold", payer_type="Medicare D").status == "on_hold"
    assert _rx(payer_type="Medicare D").payer_type == "medicare_d"
    fill = _fill(copay="$1,234.56", quantity="56")
    assert fill.copay == Decimal("1234.56") and fill.copay_cents == 123456 and fill.quantity == 56.0
    assert _fill(copay=Decimal("10.005")).copay_cents == 1001  # API numbers round half up to cents
    assert _fill().copay_cents is None
    for field, value, reason in [
        ("status", "pending", "must be one of received"),
        ("payer_type", "medicare", "must be one of commercial"),
        ("days_supply", "3x", "not a number"),
        ("days_supply", "0", "greater than or equal to 1"),
        ("days_supply", "28.5", "whole number"),
        ("copay", "12.345", "not an amount in dollars"),
        ("copay", "-3", "not an amount in dollars"),
        ("dispensed_on", "not-a-date", "not a date"),
        ("quantity", "lots", "not a number"),
    ]:
        model = PrescriptionIn if field in ("status", "payer_type") else FillIn
        base = (
            {"prescription_id": "R", "patient_id": "P", "drug": "x"}
            if model is PrescriptionIn
            else {"fill_id": "F", "prescription_id": "R", "dispensed_on": "2026-01-01", "days_supply": "30"}
        )
        with pytest.raises(ValidationError) as err:
            model.model_validate(base | {field: value})
        issue = issues_from_validation(1, err.value)[0]
        assert issue.field == field and reason in issue.reason, (field, issue)


def test_validate_rows_uses_the_date_format() -> None:
    rows = [
        (2, {"fill_id": "F1", "prescription_id": "R", "dispensed_on": "10/01/2026", "days_supply": "30"}),
        (3, {"fill_id": "F2", "prescription_id": "R", "dispensed_on": "2026-10-01", "days_supply": "30"}),
    ]
    good, numbers, issues = validate_rows(FillIn, rows, date_format="%m/%d/%Y")
    assert [g.dispensed_on for g in good] == [date(2026, 10, 1)] and numbers == [2]
    assert issues == [ImportIssue(3, "dispensed_on", "not a date (expected %m/%d/%Y)")]


async def test_patients_create_update_unchanged(store: Maker) -> None:
    rows = [_patient("P1"), _patient("P2", site_id="desert", phone="602-555-0101", language="")]
    first = await _run(store, import_patients, rows)
    assert (first.created, first.updated, first.unchanged, first.errors) == (2, 0, 0, [])
    assert first.affected_patient_ids == {"P1", "P2"}
    async with store() as session:
        p2 = await session.get(Patient, "P2")
        assert p2 is not None
        assert (p2.phone, p2.language, p2.sms_consent, p2.detailed_consent) == (
            "+16025550101",
            "en",
            True,
            False,
        )
        stamp = p2.updated_at
    again = await _run(store, import_patients, rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.affected_patient_ids == set()
    changed = await _run(store, import_patients, [_patient("P1", language="en"), rows[1]])
    assert (changed.updated, changed.unchanged, changed.affected_patient_ids) == (1, 1, {"P1"})
    async with store() as session:
        p1 = await session.get(Patient, "P1")
        p2 = await session.get(Patient, "P2")
        assert p1 is not None and p1.language == "en"
        assert p2 is not None and p2.updated_at == stamp
    assert await _count(store, Patient) == 2


async def test_blank_optional_values_keep_what_the_store_has(store: Maker) -> None:
    await _run(store, import_patients, [_patient()])
    blanks = {"language": "", "sms_consent": "", "detailed_consent": "", "birth_date": ""}
    result = await _run(store, import_patients, [_patient(**blanks)])
    assert result.unchanged == 1
    async with store() as session:
        patient = await session.get(Patient, "P1")
        assert patient is not None and (patient.language, patient.birth_date) == ("es", date(1958, 4, 2))
    cleared = await _run(store, import_patients, [_patient(time_zone="America/Denver")])
    assert cleared.updated == 1
    back = await _run(store, import_patients, [_patient(time_zone="")])  # empty zone: the site's again
    assert back.updated == 1


async def test_unknown_or_foreign_site_is_not_found(store: Maker) -> None:
    rows = [_patient("P1"), _patient("P2", site_id="nowhere"), _patient("P3", site_id="desert")]
    result = await _run(store, import_patients, rows, site_scope="lakeside", row_numbers=[2, 3, 4])
    assert result.created == 1
    assert result.errors == [ImportIssue(3, "site_id", "not found"), ImportIssue(4, "site_id", "not found")]


async def test_two_sites_may_use_the_same_source_ids(store: Maker) -> None:
    # Site-scoped ids: desert's P9/RX9/F9 are not "taken" by lakeside's, and nothing moves between sites.
    for site in ("desert", "lakeside"):
        patients = await _run(store, import_patients, [_patient("P9", site_id=site)], site_scope=site)
        rxs = await _run(store, import_prescriptions, [_rx("RX9", patient_id="P9")], site_scope=site, now=NOW)
        fills = await _run(store, import_fills, [_fill("F9", prescription_id="RX9")], site_scope=site)
        assert (patients.created, rxs.created, fills.created) == (1, 1, 1), site
        assert patients.errors == rxs.errors == fills.errors == []
    async with store() as session:
        rows = (await session.execute(select(Patient.id, Patient.site_id).order_by(Patient.id))).all()
        fill_rx = {f.id: f.prescription_id for f in await session.scalars(select(Fill))}
        rx_site = {r.id: (r.site_id, r.patient_id) for r in await session.scalars(select(Prescription))}
    assert [site for _, site in rows] == ["desert", "lakeside"] and rows[0][
        0
    ] == "P9"  # the first keeps its id
    for fill_id, rx_id in fill_rx.items():
        site, patient_id = rx_site[rx_id]
        assert dict(rows)[patient_id] == site, (fill_id, rx_id)
    # Re-importing each site's rows updates that site's records only.
    again = await _run(store, import_patients, [_patient("P9", site_id="lakeside", first_name="Eva")])
    assert (again.updated, again.created) == (1, 0)
    # Without a site (the CLI), an id used by two sites cannot be guessed: it is named, not merged.
    ambiguous = await _run(store, import_prescriptions, [_rx("RX10", patient_id="P9")], now=NOW)
    assert ambiguous.errors == [ImportIssue(1, "patient_id", "the same id is on file at several sites")]


async def test_prescription_status_changes_record_events(store: Maker) -> None:
    await _run(store, import_patients, [_patient()])
    first = await _run(store, import_prescriptions, [_rx(payer_type="medicare_d")], now=NOW)
    assert first.created == 1 and first.affected_patient_ids == {"P1"}
    later = NOW + timedelta(days=2)
    active = await _run(store, import_prescriptions, [_rx(status="active")], now=later)
    assert active.updated == 1
    same = await _run(store, import_prescriptions, [_rx(status="active")], now=later + timedelta(hours=1))
    assert same.unchanged == 1
    stopped = await _run(
        store, import_prescriptions, [_rx(status="discontinued")], now=later + timedelta(days=1)
    )
    assert stopped.updated == 1
    async with store() as session:
        events = (
            await session.execute(
                select(
                    PrescriptionEvent.name, PrescriptionEvent.occurred_at, PrescriptionEvent.detail
                ).order_by(PrescriptionEvent.occurred_at)
            )
        ).all()
        rx = await session.get(Prescription, "RX1")
    assert [e.name for e in events] == ["received", "active", "discontinued"]
    assert events[1].detail == {"source": "import", "from": "received"}
    assert rx is not None and rx.site_id == "lakeside" and rx.payer_type == "medicare_d"  # kept: blank payer
    assert rx.status_changed_at == later + timedelta(days=1)


async def test_status_flip_at_one_instant_is_one_event(store: Maker) -> None:
    await _run(store, import_patients, [_patient()])
    rows = [_rx(status="received"), _rx(status="active"), _rx(status="received")]
    result = await _run(store, import_prescriptions, rows, now=NOW)
    assert (result.created, result.updated) == (1, 2)
    again = await _run(store, import_prescriptions, [_rx(status="active")], now=NOW)
    assert again.updated == 1  # the event (active, NOW) exists already: not duplicated, no error
    async with store() as session:
        names = (await session.scalars(select(PrescriptionEvent.name).order_by(PrescriptionEvent.name))).all()
        rx = await session.get(Prescription, "RX1")
    assert sorted(names) == ["active", "received"]
    assert rx is not None and rx.status == "active"


async def test_prescription_needs_a_patient_in_scope(store: Maker) -> None:
    await _run(store, import_patients, [_patient("P1"), _patient("P2", site_id="desert")])
    rows = [_rx("RX1"), _rx("RX2", patient_id="ghost"), _rx("RX3", patient_id="P2")]
    result = await _run(store, import_prescriptions, rows, site_scope="lakeside")
    assert result.created == 1
    assert [(e.row, e.field) for e in result.errors] == [(2, "patient_id"), (3, "patient_id")]


async def test_fills_upsert_and_report_patients(store: Maker) -> None:
    await _run(store, import_patients, [_patient("P1"), _patient("P2", site_id="desert")])
    await _run(store, import_prescriptions, [_rx("RX1"), _rx("RX2", patient_id="P2")], now=NOW)
    rows = [
        _fill("F1", copay="12.5", quantity="56"),
        _fill("F2", prescription_id="RX2"),
        _fill("F3", prescription_id="X"),
    ]
    result = await _run(store, import_fills, rows)
    assert (result.created, result.errors) == (2, [ImportIssue(3, "prescription_id", "not found")])
    assert result.affected_patient_ids == {"P1", "P2"}
    again = await _run(store, import_fills, rows[:2])
    assert (again.unchanged, again.affected_patient_ids) == (2, set())
    longer = await _run(store, import_fills, [_fill("F1", copay="12.5", quantity="56", days_supply="30")])
    assert (longer.updated, longer.affected_patient_ids) == (1, {"P1"})
    scoped = await _run(store, import_fills, [_fill("F2", prescription_id="RX2")], site_scope="lakeside")
    assert scoped.errors == [ImportIssue(1, "prescription_id", "not found")]
    async with store() as session:
        f1 = await session.get(Fill, "F1")
        f2 = await session.get(Fill, "F2")
    assert f1 is not None and (f1.days_supply, f1.copay_cents, f1.quantity) == (30, 1250, 56.0)
    assert f2 is not None and (f2.copay_cents, f2.quantity) == (0, 0.0)


async def test_many_rows_cross_batches_and_repeat_ids(store: Maker) -> None:
    await _run(store, import_patients, [_patient()])
    await _run(store, import_prescriptions, [_rx()], now=NOW)
    start = date(2020, 1, 1)
    rows = [_fill(f"F{i}", dispensed_on=(start + timedelta(days=i)).isoformat()) for i in range(2500)]
    rows.append(_fill("F5", dispensed_on="2026-01-01"))  # the same id again, later in the same import
    result = await _run(store, import_fills, rows)
    assert (result.created, result.updated, result.unchanged) == (2500, 1, 0)
    again = await _run(store, import_fills, rows)
    # F5 goes back to its first date in the first batch, then forward again in the last one.
    assert (again.unchanged, again.updated) == (2499, 2)
    assert await _count(store, Fill) == 2500
    async with store() as session:
        f5 = await session.get(Fill, "F5")
    assert f5 is not None and f5.dispensed_on == date(2026, 1, 1)
