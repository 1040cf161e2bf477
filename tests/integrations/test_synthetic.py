"""The synthetic practice: determinism, realistic distributions, integrity, CSV layout and loading."""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.migrate import upgrade
from bot.db.models import Fill, Patient, Prescription, PrescriptionEvent, Site
from bot.db.session import make_engine, make_sessionmaker
from bot.db.sitecfg import site_config
from integrations.dispensary.synthetic import (
    ONCOLOGY_CLASSES,
    SCENARIOS,
    Practice,
    generate_practice,
    load_practice,
    write_csvs,
)

TODAY = date(2026, 11, 24)
SEEDS = (7, 11, 2026)
FICTIONAL = re.compile(r"^\+1[2-9]\d{2}55501\d{2}$")


@pytest.fixture(scope="module")
def practice() -> Practice:
    return generate_practice(seed=7, patients=200, today=TODAY)


@pytest.fixture(scope="module", params=SEEDS)
def any_practice(request: pytest.FixtureRequest) -> Practice:
    return generate_practice(seed=request.param, patients=200, today=TODAY)


def _share(values: list[bool]) -> float:
    return sum(values) / len(values)


def test_same_seed_same_practice_other_seed_differs(practice: Practice) -> None:
    again = generate_practice(seed=7, patients=200, today=TODAY)
    other = generate_practice(seed=8, patients=200, today=TODAY)
    assert again == practice
    assert other.patients != practice.patients
    assert other.fills != practice.fills


def test_two_sites_in_different_time_zones_with_valid_settings(practice: Practice) -> None:
    assert len(practice.sites) == 2
    assert len({s.time_zone for s in practice.sites}) == 2
    for record in practice.sites:
        ZoneInfo(record.time_zone)
        config = site_config(
            Site(
                id=record.id,
                name=record.name,
                phone=record.phone,
                time_zone=record.time_zone,
                quiet_start=record.quiet_start,
                quiet_end=record.quiet_end,
                send_rate=record.send_rate,
                settings=record.settings,
            )
        )
        assert config.offers_delivery or config.offers_pickup
        assert config.business_hours[0] < config.business_hours[1]
        assert "08:00" <= config.quiet_start < config.quiet_end <= "21:00"
    assert {s.name for s in practice.sites} == {
        "Lakeside Oncology Dispensary",
        "Desert Valley Cancer Center Pharmacy",
    }


def test_patient_mix(any_practice: Practice) -> None:
    patients = any_practice.patients
    assert len(patients) == 200
    by_site = Counter(p.site_id for p in patients)
    assert set(by_site) == {s.id for s in any_practice.sites} and min(by_site.values()) >= 60
    assert 0.15 <= _share([p.language == "es" for p in patients]) <= 0.35
    assert 0.90 <= _share([p.sms_consent for p in patients]) <= 0.99
    assert 0.35 <= _share([p.detailed_consent for p in patients]) <= 0.65
    opted = [p for p in patients if p.opted_out_at is not None]
    assert 2 <= len(opted) <= 8
    assert all(not p.sms_consent and p.opted_out_at.tzinfo is not None for p in opted)  # type: ignore[union-attr]
    assert not [p for p in patients if p.detailed_consent and not p.sms_consent]
    zones = {s.id: s.time_zone for s in any_practice.sites}
    own = [p for p in patients if p.time_zone is not None]
    assert 4 <= len(own) <= 40 and all(p.time_zone != zones[p.site_id] for p in own)
    for p in own:
        ZoneInfo(p.time_zone)  # type: ignore[arg-type]
    ages = [(TODAY - p.birth_date).days / 365.25 for p in patients]
    assert 18 <= min(ages) and max(ages) <= 95 and 55 <= statistics.median(ages) <= 72


def test_spanish_speakers_have_spanish_names(practice: Practice) -> None:
    spanish = [p for p in practice.patients if p.language == "es"]
    accented = [p for p in spanish if re.search(r"[áéíóúñÁÉÍÓÚÑ]", p.first_name + p.last_name)]
    assert len(accented) >= len(spanish) // 4
    assert {p.last_name.split()[0] for p in spanish} & {"García", "Hernández", "López", "Martínez", "Pérez"}


def test_phones_are_fictional_valid_and_unique_but_for_one_cross_site_patient(any_practice: Practice) -> None:
    numbers = [p.phone for p in any_practice.patients] + [s.phone for s in any_practice.sites]
    for number in numbers:
        assert FICTIONAL.match(number), number
        assert phonenumbers.is_valid_number(phonenumbers.parse(number))
    shared = [n for n, c in Counter(numbers).items() if c > 1]
    assert len(shared) == 1
    pair = [p for p in any_practice.patients if p.phone == shared[0]]
    assert len({p.site_id for p in pair}) == 2
    assert len({(p.first_name, p.last_name, p.birth_date) for p in pair}) == 1


def test_drugs_payers_statuses(any_practice: Practice) -> None:
    rxs = any_practice.prescriptions
    drugs = {r.drug for r in rxs}
    assert {"capecitabine", "abiraterone", "palbociclib", "lenalidomide"} <= drugs
    assert drugs & {"adalimumab", "methotrexate", "tofacitinib", "apremilast", "dupilumab"}
    assert all(r.therapy_class for r in rxs)
    oncology = _share([r.therapy_class in ONCOLOGY_CLASSES for r in rxs])
    assert 0.6 <= oncology <= 0.9
    payers = Counter(r.payer_type for r in rxs)
    assert set(payers) == {"commercial", "medicare_d", "medicaid", "cash"}
    assert payers["commercial"] + payers["medicare_d"] > len(rxs) / 2
    statuses = Counter(r.status for r in rxs)
    assert set(statuses) == {"received", "active", "on_hold", "discontinued", "completed"}
    assert statuses["active"] / len(rxs) >= 0.7
    assert {r.scenario for r in rxs} <= set(SCENARIOS)
    assert len(rxs) > len(any_practice.patients)  # some patients take a companion drug


def test_fills_history_supplies_and_copays(any_practice: Practice) -> None:
    fills = any_practice.fills
    assert 1000 <= len(fills) <= 3000
    assert {f.days_supply for f in fills} <= {28, 30, 90} and len({f.days_supply for f in fills}) == 3
    assert min(f.dispensed_on for f in fills) >= TODAY - timedelta(days=380)
    assert max(f.dispensed_on for f in fills) < TODAY
    assert all(f.quantity > 0 for f in fills)
    dollars = [f.copay_cents / 100 for f in fills]
    assert min(dollars) == 0 and max(dollars) <= 3000
    assert statistics.median(dollars) < 25
    assert 0.04 <= _share([d > 100 for d in dollars]) <= 0.3
    assert 1 <= sum(d >= 1000 for d in dollars) <= len(dollars) * 0.05


def _fills_by_rx(practice: Practice) -> dict[str, list[date]]:
    out: dict[str, list[date]] = {}
    for fill in sorted(practice.fills, key=lambda f: f.dispensed_on):
        out.setdefault(fill.prescription_id, []).append(fill.dispensed_on)
    return out


def test_adherence_patterns_early_late_and_abandoned(practice: Practice) -> None:
    supply = {f.prescription_id: f.days_supply for f in practice.fills}
    early = gaps = 0
    for rx_id, days in _fills_by_rx(practice).items():
        for before, after in zip(days, days[1:], strict=False):
            slack = (after - before).days - supply[rx_id]
            early += slack <= -3
            gaps += slack >= 10
    assert early >= 20 and gaps >= 20
    filled = set(_fills_by_rx(practice))
    ready = {e.prescription_id for e in practice.events if e.name == "ready"}
    never = [r for r in practice.prescriptions if r.id not in filled]
    assert any(r.id in ready and r.status == "active" for r in never)  # ready, never picked up
    assert any(r.status == "received" and r.written_on < TODAY - timedelta(days=10) for r in never)
    run_outs = practice.run_outs()
    stopped = [
        r
        for r in practice.prescriptions
        if r.status == "active" and r.id in run_outs and run_outs[r.id] < TODAY - timedelta(days=30)
    ]
    assert stopped  # secondary abandonment: still active, no refill for a month past run-out


def test_some_consented_patients_run_out_in_the_next_days(any_practice: Practice) -> None:
    patients = {p.id: p for p in any_practice.patients}
    run_outs = any_practice.run_outs()
    due = [
        r
        for r in any_practice.prescriptions
        if r.status == "active"
        and r.id in run_outs
        and 1 <= (run_outs[r.id] - TODAY).days <= 5
        and patients[r.patient_id].sms_consent
        and patients[r.patient_id].opted_out_at is None
    ]
    assert len(due) >= 8
    assert len({patients[r.patient_id].site_id for r in due}) == 2


def test_run_out_carries_early_refills_forward() -> None:
    practice = generate_practice(seed=3, patients=30, today=TODAY)
    fills = [f for f in practice.fills if f.prescription_id == practice.fills[0].prescription_id]
    end = fills[0].dispensed_on
    for fill in fills:
        end = max(end, fill.dispensed_on) + timedelta(days=fill.days_supply)
    assert practice.run_outs()[fills[0].prescription_id] == end
    assert end >= fills[-1].dispensed_on + timedelta(days=fills[-1].days_supply)


def test_references_and_event_order(any_practice: Practice) -> None:
    patients = {p.id: p for p in any_practice.patients}
    rxs = {r.id: r for r in any_practice.prescriptions}
    assert len(rxs) == len(any_practice.prescriptions)
    assert len({f.id for f in any_practice.fills}) == len(any_practice.fills)
    assert all(patients[r.patient_id].site_id == r.site_id for r in rxs.values())
    assert all(f.prescription_id in rxs for f in any_practice.fills)
    assert all(e.prescription_id in rxs for e in any_practice.events)
    keys = [(e.prescription_id, e.name, e.occurred_at) for e in any_practice.events]
    assert len(set(keys)) == len(keys)  # the table's unique constraint
    midnight = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC)  # history ends yesterday, US time
    assert all(e.occurred_at.tzinfo is UTC and e.occurred_at < midnight for e in any_practice.events)
    names = Counter(e.name for e in any_practice.events)
    assert set(names) == {"received", "pa_approved", "ready", "shipped", "picked_up"}
    assert names["received"] == len(rxs)
    assert names["shipped"] + names["picked_up"] == len(any_practice.fills)
    first: dict[str, dict[str, datetime]] = {}
    for event in sorted(any_practice.events, key=lambda e: e.occurred_at):
        first.setdefault(event.prescription_id, {}).setdefault(event.name, event.occurred_at)
    for rx_id, seen in first.items():
        order = [seen[n] for n in ("received", "pa_approved", "ready") if n in seen]
        assert order == sorted(order), rx_id
        assert rxs[rx_id].written_on <= _fills_by_rx(any_practice).get(rx_id, [TODAY])[0]


def test_csvs_have_the_import_layout_and_round_trip(practice: Practice, tmp_path: Path) -> None:
    paths = write_csvs(practice, tmp_path / "out")
    headers = {
        "patients": "patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,"
        "sms_consent,detailed_consent",
        "prescriptions": "prescription_id,patient_id,drug,therapy_class,payer_type,status,written_on",
        "fills": "fill_id,prescription_id,dispensed_on,days_supply,quantity,copay",
    }
    assert set(paths) == set(headers)
    rows = {}
    for name, path in paths.items():
        assert path.name == f"{name}.csv"
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0] == headers[name]
        rows[name] = list(csv.DictReader(text.splitlines()))
    assert len(rows["patients"]) == len(practice.patients)
    assert len(rows["prescriptions"]) == len(practice.prescriptions)
    assert len(rows["fills"]) == len(practice.fills)
    for row, patient in zip(rows["patients"], practice.patients, strict=True):
        assert (row["patient_id"], row["first_name"], row["phone"]) == (
            patient.id,
            patient.first_name,
            patient.phone,
        )
        assert date.fromisoformat(row["birth_date"]) == patient.birth_date
        assert row["time_zone"] == (patient.time_zone or "")
        assert row["sms_consent"] == ("true" if patient.sms_consent else "false")
        assert row["detailed_consent"] in ("true", "false") and row["language"] in ("en", "es")
    for row, rx in zip(rows["prescriptions"], practice.prescriptions, strict=True):
        assert (row["drug"], row["status"], row["payer_type"]) == (rx.drug, rx.status, rx.payer_type)
        assert date.fromisoformat(row["written_on"]) == rx.written_on
    for row, fill in zip(rows["fills"], practice.fills, strict=True):
        assert round(float(row["copay"]) * 100) == fill.copay_cents
        assert re.fullmatch(r"\d+\.\d\d", row["copay"])
        assert date.fromisoformat(row["dispensed_on"]) == fill.dispensed_on
        assert int(row["days_supply"]) == fill.days_supply and float(row["quantity"]) == fill.quantity
    assert any(re.search(r"[áéíóúñ]", r["last_name"]) for r in rows["patients"])


async def _count(session, model) -> int:  # type: ignore[no-untyped-def]
    return int(await session.scalar(select(func.count()).select_from(model)))


async def test_load_into_a_migrated_database(practice: Practice, engine: AsyncEngine) -> None:
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        counts = await load_practice(session, practice)
    assert counts == practice.counts()
    async with maker() as session:
        for model, key in (
            (Site, "sites"),
            (Patient, "patients"),
            (Prescription, "prescriptions"),
            (Fill, "fills"),
            (PrescriptionEvent, "prescription_events"),
        ):
            assert await _count(session, model) == counts[key], key
        total = await session.scalar(select(func.sum(Fill.copay_cents)))
        assert total == sum(f.copay_cents for f in practice.fills)
        opted = next(p for p in practice.patients if p.opted_out_at is not None)
        row = await session.get(Patient, opted.id)
        assert row is not None and row.opted_out_at == opted.opted_out_at and row.sms_consent is False
        site = await session.get(Site, "desert-valley")
        assert site is not None and site.settings["offers_pickup"] is False
        assert site_config(site).time_zone == "America/Phoenix"
    async with maker.begin() as session:
        again = await load_practice(session, practice)
    assert again == dict.fromkeys(counts, 0)
    async with maker() as session:
        assert await _count(session, Fill) == counts["fills"]


async def test_load_on_sqlite_and_postgresql(any_db_url: str) -> None:
    practice = generate_practice(seed=5, patients=60, today=TODAY)
    engine = make_engine(any_db_url)
    try:
        await upgrade(engine)
        maker = make_sessionmaker(engine)
        async with maker.begin() as session:
            assert await load_practice(session, practice) == practice.counts()
        async with maker() as session:
            assert await _count(session, PrescriptionEvent) == len(practice.events)
            first = practice.events[0]
            stored = await session.scalar(
                select(PrescriptionEvent.occurred_at).where(
                    PrescriptionEvent.prescription_id == first.prescription_id,
                    PrescriptionEvent.name == first.name,
                )
            )
            assert stored == first.occurred_at
    finally:
        await engine.dispose()


def test_small_and_invalid_sizes() -> None:
    one = generate_practice(seed=1, patients=1, today=TODAY)
    assert len(one.patients) == 1 and one.prescriptions and len(one.sites) == 2
    with pytest.raises(ValueError, match="patients"):
        generate_practice(patients=0, today=TODAY)
