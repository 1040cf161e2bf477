"""A synthetic medically integrated dispensing practice: deterministic, realistic, fictional data for demos."""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.db.models import Fill, Patient, Prescription, PrescriptionEvent, Site

__all__ = [
    "DRUGS",
    "ONCOLOGY_CLASSES",
    "SCENARIOS",
    "DrugSpec",
    "EventRecord",
    "FillRecord",
    "PatientRecord",
    "Practice",
    "PrescriptionRecord",
    "SiteRecord",
    "generate_practice",
    "load_practice",
    "write_csvs",
]

_LOGGER = logging.getLogger(__name__)

# Column layouts of DESIGN.md "CSV import"; the importer reads exactly these.
PATIENT_COLUMNS = (
    "patient_id",
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
PRESCRIPTION_COLUMNS = (
    "prescription_id",
    "patient_id",
    "drug",
    "therapy_class",
    "payer_type",
    "status",
    "written_on",
)
FILL_COLUMNS = ("fill_id", "prescription_id", "dispensed_on", "days_supply", "quantity", "copay")

# What happens to a prescription over time. "due_soon" is a steady patient whose supply runs out in 1-5 days.
SCENARIOS = (
    "adherent",
    "early",
    "late",
    "new_start",
    "due_soon",
    "pending",
    "primary_abandonment",
    "secondary_abandonment",
    "on_hold",
    "discontinued",
    "completed",
)
_SCENARIO_WEIGHTS = {
    "adherent": 40,
    "early": 8,
    "late": 14,
    "new_start": 7,
    "pending": 3,
    "primary_abandonment": 5,
    "secondary_abandonment": 7,
    "on_hold": 2,
    "discontinued": 5,
    "completed": 3,
}
_STATUS = {
    "pending": "received",
    "on_hold": "on_hold",
    "discontinued": "discontinued",
    "completed": "completed",
}
_HISTORY_DAYS = 380  # fill history reaches back about a year, never further
_PAYERS = {"commercial": 40, "medicare_d": 40, "medicaid": 13, "cash": 7}


@dataclass(frozen=True, slots=True)
class DrugSpec:
    """A drug the practice dispenses: class, cost tier, usual supplies and units per day."""

    name: str
    therapy_class: str
    area: str  # oncology | immunology
    specialty: bool  # brand specialty (high list price, prior authorisation) vs generic
    supplies: tuple[int, ...]
    units_per_day: float
    weight: int
    companion: str | None = None


DRUGS: tuple[DrugSpec, ...] = (
    DrugSpec("capecitabine", "antimetabolite", "oncology", False, (28, 30), 4.0, 10),
    DrugSpec("abiraterone", "antiandrogen", "oncology", False, (30, 90), 4.0, 9, "prednisone"),
    DrugSpec("enzalutamide", "antiandrogen", "oncology", True, (30,), 4.0, 7),
    DrugSpec("ibrutinib", "btk inhibitor", "oncology", True, (30,), 1.0, 6),
    DrugSpec("palbociclib", "cdk4/6 inhibitor", "oncology", True, (28,), 0.75, 8, "letrozole"),
    DrugSpec("olaparib", "parp inhibitor", "oncology", True, (30,), 4.0, 5),
    DrugSpec("lenalidomide", "immunomodulator", "oncology", True, (28,), 0.75, 6, "dexamethasone"),
    DrugSpec("osimertinib", "egfr inhibitor", "oncology", True, (30,), 1.0, 5),
    DrugSpec("imatinib", "bcr-abl tyrosine kinase inhibitor", "oncology", False, (30, 90), 1.0, 4),
    DrugSpec("venetoclax", "bcl-2 inhibitor", "oncology", True, (28,), 4.0, 3),
    DrugSpec("cabozantinib", "multikinase inhibitor", "oncology", True, (30,), 1.0, 2),
    DrugSpec("anastrozole", "aromatase inhibitor", "oncology", False, (30, 90), 1.0, 6),
    DrugSpec("tamoxifen", "selective estrogen receptor modulator", "oncology", False, (30, 90), 1.0, 3),
    DrugSpec("adalimumab", "tnf inhibitor", "immunology", True, (28,), 2 / 28, 7, "methotrexate"),
    DrugSpec("etanercept", "tnf inhibitor", "immunology", True, (28,), 4 / 28, 2),
    DrugSpec("methotrexate", "dmard", "immunology", False, (28,), 6 / 7, 3),
    DrugSpec("tofacitinib", "jak inhibitor", "immunology", True, (30,), 2.0, 3),
    DrugSpec("apremilast", "pde4 inhibitor", "immunology", True, (30,), 2.0, 3),
    DrugSpec("dupilumab", "il-4/il-13 inhibitor", "immunology", True, (28,), 2 / 28, 4),
)
# Companions are dispensed alongside a main drug, never chosen on their own.
_COMPANIONS: dict[str, DrugSpec] = {
    spec.name: spec
    for spec in (
        DrugSpec("prednisone", "corticosteroid", "oncology", False, (30, 90), 2.0, 0),
        DrugSpec("letrozole", "aromatase inhibitor", "oncology", False, (28, 90), 1.0, 0),
        DrugSpec("dexamethasone", "corticosteroid", "oncology", False, (28,), 1.0, 0),
        DrugSpec("methotrexate", "dmard", "immunology", False, (28,), 6 / 7, 0),
    )
}
ONCOLOGY_CLASSES: frozenset[str] = frozenset(
    spec.therapy_class for spec in (*DRUGS, *_COMPANIONS.values()) if spec.area == "oncology"
)

_EN_FIRST = (
    "James Robert John Michael William David Richard Joseph Thomas Charles Gary Larry Dennis Ronald "
    "Donald Kenneth Steven Edward Walter Harold Roger Wayne Frank Raymond Brian Kevin Jason Matthew "
    "Mary Patricia Linda Barbara Elizabeth Susan Margaret Dorothy Carol Sandra Nancy Karen Donna Sharon "
    "Deborah Judith Janet Brenda Kathleen Shirley Diane Helen Ruth Joyce Beverly Marilyn Carolyn "
    "Cheryl Jessica Amanda Nicole Megan"
).split()
_EN_LAST = (
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Jackson Martin "
    "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill Green Adams "
    "Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart "
    "Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Kelly Howard Ward Cox Richardson Wood "
    "Watson Brooks Bennett Gray Hughes Price Sanders Myers Long Ross Foster Kowalski Nowak Schmidt Olson "
    "Novak Nguyen Kim Patel Washington Jefferson Coleman Jenkins Perry Powell O'Brien Sullivan"
).split()
_ES_FIRST = (
    "José Juan Luis Carlos Jesús Manuel Francisco Antonio Miguel Pedro Jorge Ramón Alejandro Roberto "
    "Raúl Arturo Rafael Ernesto Héctor Enrique Sergio Fernando María Rosa Ana Carmen Juana Guadalupe "
    "Margarita Teresa Josefina Elena Sofía Alicia Leticia Lucía Martha Esperanza Dolores Consuelo "
    "Beatriz Yolanda Silvia Graciela"
).split()
_ES_LAST = (
    "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres Flores Rivera Gómez "
    "Díaz Reyes Morales Cruz Ortiz Gutiérrez Chávez Ramos Ruiz Mendoza Álvarez Castillo Jiménez Vásquez "
    "Romero Herrera Medina Aguilar Vargas Guzmán Salazar Peña Delgado Contreras Navarro Soto Ibarra "
    "Ochoa Zamora Valenzuela Cervantes Barrera Espinoza Domínguez Acosta"
).split()

# Real area codes; 555-0100..0199 in any of them is reserved for fiction, so no real person is texted.
_NATIONAL_AREA_CODES = (
    "201 202 205 206 207 208 212 213 214 215 216 217 218 219 225 228 231 234 239 240 248 251 252 253 "
    "254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 313 314 315 316 317 318 "
    "319 320 321 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 425 432 434 435 440 "
    "443 469 501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 530 540 541 551 559 561 562 "
    "563 567 570 571 573 574 575 580 585 586 601 603 605 606 607 608 609 610 612 614 615 616 617 618"
).split()


@dataclass(frozen=True, slots=True)
class _SiteTemplate:
    id: str
    prefix: str
    name: str
    phone: str
    time_zone: str
    area_codes: tuple[str, ...]
    share: float  # fraction of the network's patients
    spanish: float  # fraction preferring Spanish
    delivery: float  # fraction of patients who take delivery when both are offered
    away_zones: tuple[str, ...]  # where patients living elsewhere part of the year are
    settings: dict[str, Any]
    quiet_start: str = "09:00"
    quiet_end: str = "20:00"


_SITES = (
    _SiteTemplate(
        id="lakeside",
        prefix="LK",
        name="Lakeside Oncology Dispensary",
        phone="+13125550100",
        time_zone="America/Chicago",
        area_codes=("312", "773", "872", "708", "630", "847", "224", "331"),
        share=0.6,
        spanish=0.2,
        delivery=0.55,
        away_zones=("America/Phoenix", "America/New_York", "America/Denver"),
        settings={
            "offers_delivery": True,
            "offers_pickup": True,
            "business_hours": ["08:30", "17:00"],
            "business_days": [0, 1, 2, 3, 4],
            "copay_threshold": 100.0,
        },
    ),
    _SiteTemplate(
        id="desert-valley",
        prefix="DV",
        name="Desert Valley Cancer Center Pharmacy",
        phone="+16025550100",
        time_zone="America/Phoenix",
        area_codes=("602", "480", "623", "520", "928"),
        share=0.4,
        spanish=0.33,
        delivery=1.0,
        away_zones=("America/Los_Angeles", "America/Denver", "America/Chicago"),
        settings={
            "offers_delivery": True,
            "offers_pickup": False,
            "business_hours": ["08:00", "16:30"],
            "business_days": [0, 1, 2, 3, 4],
            "closed_days": [6],
            "copay_threshold": 100.0,
        },
        quiet_start="09:00",
        quiet_end="19:00",
    ),
)


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """A dispensing site of the network (the Site row)."""

    id: str
    name: str
    phone: str
    time_zone: str
    quiet_start: str
    quiet_end: str
    send_rate: float
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient as the dispensary record has them; ``time_zone`` None means the site's."""

    id: str
    site_id: str
    first_name: str
    last_name: str
    birth_date: date
    phone: str
    language: str
    time_zone: str | None
    sms_consent: bool
    detailed_consent: bool
    opted_out_at: datetime | None = None
    delivery: bool = True  # takes delivery (shipped) rather than pickup; not part of the record


@dataclass(frozen=True, slots=True)
class PrescriptionRecord:
    """A prescription; ``scenario`` says what the generator made happen to it (see SCENARIOS)."""

    id: str
    patient_id: str
    site_id: str
    drug: str
    therapy_class: str
    payer_type: str
    status: str
    written_on: date
    status_changed_at: datetime
    scenario: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One dispense; the copay is kept in cents."""

    id: str
    prescription_id: str
    dispensed_on: date
    days_supply: int
    quantity: float
    copay_cents: int

    @property
    def copay(self) -> str:
        """The copay in dollars as the CSV carries it, e.g. "12.50"."""
        return f"{self.copay_cents // 100}.{self.copay_cents % 100:02d}"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A dated dispensary event: received, pa_approved, ready, shipped or picked_up (aware UTC)."""

    prescription_id: str
    name: str
    occurred_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Practice:
    """A generated network: its sites and their patients, prescriptions, fills and events."""

    seed: int
    today: date
    sites: tuple[SiteRecord, ...]
    patients: tuple[PatientRecord, ...]
    prescriptions: tuple[PrescriptionRecord, ...]
    fills: tuple[FillRecord, ...]
    events: tuple[EventRecord, ...]

    def counts(self) -> dict[str, int]:
        """How many rows of each kind (the keys ``load_practice`` reports)."""
        return {
            "sites": len(self.sites),
            "patients": len(self.patients),
            "prescriptions": len(self.prescriptions),
            "fills": len(self.fills),
            "prescription_events": len(self.events),
        }

    def run_outs(self) -> dict[str, date]:
        """Each filled prescription's run-out date: last fill plus supply, early refills carried forward."""
        ends: dict[str, date] = {}
        for fill in sorted(self.fills, key=lambda f: (f.prescription_id, f.dispensed_on)):
            start = max(ends.get(fill.prescription_id, fill.dispensed_on), fill.dispensed_on)
            ends[fill.prescription_id] = start + timedelta(days=fill.days_supply)
        return ends


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _at(day: date, hour: int, minute: int, zone: str) -> datetime:
    """A local wall-clock time at a site, as aware UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


class _PhoneBook:
    """Hands out unique fictional numbers (+1 AAA 555-01XX), regional area codes first."""

    def __init__(self, rng: random.Random, reserved: Iterable[str]) -> None:
        self._rng = rng
        self._used = set(reserved)

    def take(self, area_codes: Sequence[str]) -> str:
        for _ in range(50):
            number = f"+1{self._rng.choice(area_codes)}5550{self._rng.randint(101, 199)}"
            if number not in self._used:
                self._used.add(number)
                return number
        for code in (*area_codes, *_NATIONAL_AREA_CODES):
            for line in range(101, 200):
                number = f"+1{code}5550{line}"
                if number not in self._used:
                    self._used.add(number)
                    return number
        raise ValueError("no fictional phone numbers left; ask for fewer patients")


class _Generator:
    """Builds one practice; all randomness comes from one seeded Random, in a fixed order."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.yesterday = today - timedelta(days=1)
        self.phones = _PhoneBook(self.rng, (tmpl.phone for tmpl in _SITES))
        self.templates = {tmpl.id: tmpl for tmpl in _SITES}
        self.patients: list[PatientRecord] = []
        self.prescriptions: list[PrescriptionRecord] = []
        self.fills: list[FillRecord] = []
        self.events: list[EventRecord] = []
        self.rx_serial = 0
        self.fill_serial = 0

    # -- sites and patients -------------------------------------------------------------------------

    def sites(self) -> tuple[SiteRecord, ...]:
        return tuple(
            SiteRecord(t.id, t.name, t.phone, t.time_zone, t.quiet_start, t.quiet_end, 1.0, dict(t.settings))
            for t in _SITES
        )

    def make_patients(self, count: int) -> None:
        first_site = round(count * _SITES[0].share)
        for index in range(count):
            tmpl = _SITES[0] if index < first_site else _SITES[1]
            serial = index + 1 if tmpl is _SITES[0] else index - first_site + 1
            self.patients.append(self.patient(tmpl, f"{tmpl.prefix}-P{serial:05d}"))
        self.opt_out(max(1, round(count * 0.02)))
        if first_site >= 10 and count - first_site >= 10:
            self.share_across_sites()

    def patient(self, tmpl: _SiteTemplate, patient_id: str) -> PatientRecord:
        rng = self.rng
        spanish = rng.random() < tmpl.spanish
        hispanic_name = spanish or rng.random() < 0.12
        first = rng.choice(_ES_FIRST if hispanic_name else _EN_FIRST)
        last = rng.choice(_ES_LAST if hispanic_name else _EN_LAST)
        if hispanic_name and rng.random() < 0.2:
            last = f"{last} {rng.choice(_ES_LAST)}"
        sms = self.rng.random() >= 0.03
        detailed = sms and self.rng.random() < 0.52
        return PatientRecord(
            id=patient_id,
            site_id=tmpl.id,
            first_name=first,
            last_name=last,
            birth_date=self.birth_date(),
            phone=self.phones.take(tmpl.area_codes),
            language="es" if spanish else "en",
            time_zone=rng.choice(tmpl.away_zones) if rng.random() < 0.08 else None,
            sms_consent=sms,
            detailed_consent=detailed,
            delivery=rng.random() < tmpl.delivery,
        )

    def birth_date(self) -> date:
        age_days = int(self.rng.triangular(28, 92, 68) * 365.25)
        return self.today - timedelta(days=age_days)

    def opt_out(self, count: int) -> None:
        """A few consented patients texted STOP some time ago (their consent is withdrawn too)."""
        # Not the last patient: share_across_sites may overwrite that record.
        pool = range(max(1, len(self.patients) - 1))
        chosen = self.rng.sample(pool, min(count, len(pool)))
        for index in sorted(chosen):
            day = self.today - timedelta(days=self.rng.randint(5, 150))
            at = _at(day, self.rng.randint(15, 23), self.rng.randint(0, 59), "UTC")
            self.patients[index] = replace(
                self.patients[index], sms_consent=False, detailed_consent=False, opted_out_at=at
            )

    def share_across_sites(self) -> None:
        """One person is a patient of both sites (winters in Arizona): same phone, two records."""
        source = next((p for p in self.patients if p.site_id == _SITES[0].id and p.sms_consent), None)
        if source is None:
            return
        index = len(self.patients) - 1
        self.patients[index] = replace(
            source, id=self.patients[index].id, site_id=_SITES[1].id, time_zone=None, delivery=True
        )

    # -- prescriptions ------------------------------------------------------------------------------

    def make_prescriptions(self) -> None:
        eligible = [p for p in self.patients if p.sms_consent and p.opted_out_at is None]
        due = {p.id for p in self.rng.sample(eligible, min(len(eligible), max(3, len(self.patients) // 25)))}
        for patient in self.patients:
            scenario = "due_soon" if patient.id in due else _weighted(self.rng, _SCENARIO_WEIGHTS)
            spec = self.rng.choices(DRUGS, weights=[d.weight for d in DRUGS])[0]
            payer = self.payer(patient, spec)
            self.prescription(patient, spec, payer, scenario)
            if spec.companion and self.rng.random() < 0.6:
                companion = "adherent" if scenario == "due_soon" else scenario
                self.prescription(patient, _COMPANIONS[spec.companion], payer, companion)

    def payer(self, patient: PatientRecord, spec: DrugSpec) -> str:
        age = (self.today - patient.birth_date).days / 365.25
        if age >= 65 and self.rng.random() < 0.85:
            return "medicare_d"
        payer = _weighted(self.rng, {k: v for k, v in _PAYERS.items() if k != "medicare_d"})
        # Cash patients buy generics; a brand specialty drug on cash would be someone else's story.
        return "commercial" if payer == "cash" and spec.specialty else payer

    def prescription(self, patient: PatientRecord, spec: DrugSpec, payer: str, scenario: str) -> None:
        self.rx_serial += 1
        rx_id = f"{patient.id.split('-')[0]}-RX{self.rx_serial:06d}"
        zone = self.templates[patient.site_id].time_zone
        supply = self.rng.choice(spec.supplies)
        if supply == 90 and self.rng.random() < 0.6:
            supply = min(spec.supplies)  # most start on a month at a time
        dates = self.fill_dates(scenario, supply)
        needs_pa = spec.specialty and payer in ("commercial", "medicare_d") and self.rng.random() < 0.7
        lead = self.rng.randint(3, 12) if needs_pa else self.rng.randint(0, 3)
        written = (dates[0] if dates else self.unfilled_ready_day(scenario)) - timedelta(days=lead)
        written = min(written, self.yesterday)
        status = _STATUS.get(scenario, "active")
        if scenario == "primary_abandonment" and self.rng.random() < 0.4:
            status = "received"  # never got as far as ready: the patient did not go ahead
        changed = self.status_changed(scenario, written, dates, supply, zone)
        rx = PrescriptionRecord(
            id=rx_id,
            patient_id=patient.id,
            site_id=patient.site_id,
            drug=spec.name,
            therapy_class=spec.therapy_class,
            payer_type=payer,
            status=status,
            written_on=written,
            status_changed_at=changed,
            scenario=scenario,
        )
        self.prescriptions.append(rx)
        self.add_intake_events(rx, needs_pa, dates, zone)
        self.add_fills(rx, spec, supply, dates, patient.delivery, zone)

    def unfilled_ready_day(self, scenario: str) -> date:
        """For a prescription never dispensed: the day it was (or would have been) ready."""
        if scenario == "pending":
            return self.yesterday - timedelta(days=self.rng.randint(0, 2))
        return self.today - timedelta(days=self.rng.randint(5, 45))

    def status_changed(
        self, scenario: str, written: date, dates: list[date], supply: int, zone: str
    ) -> datetime:
        if scenario in ("discontinued", "completed") and dates:
            day = min(dates[-1] + timedelta(days=supply + self.rng.randint(-5, 3)), self.yesterday)
        elif scenario == "on_hold":
            day = self.today - timedelta(days=self.rng.randint(1, 14))
        else:
            day = dates[0] if dates else written
        return _at(day, self.rng.randint(9, 16), self.rng.randint(0, 59), zone)

    # -- fills --------------------------------------------------------------------------------------

    def fill_dates(self, scenario: str, supply: int) -> list[date]:
        """Dispense dates up to yesterday, shaped by the scenario; [] for never-dispensed prescriptions."""
        rng = self.rng
        if scenario in ("pending", "primary_abandonment"):
            return []
        if scenario == "due_soon":
            run_out = self.today + timedelta(days=rng.randint(1, 5))
            count = max(2, rng.randint(180, 330) // supply)
            return [run_out - timedelta(days=supply * k) for k in range(count, 0, -1)]
        if scenario == "new_start":
            return self.walk(
                self.today - timedelta(days=rng.randint(3, 40)), self.yesterday, supply, scenario
            )
        earliest = self.today - timedelta(days=_HISTORY_DAYS)
        if scenario in ("secondary_abandonment", "discontinued"):
            stop = self.today - timedelta(days=supply + rng.randint(15, 120))
            start = max(earliest, stop - timedelta(days=rng.randint(40, 240)))
            return self.walk(start, stop, supply, scenario)
        if scenario == "completed":
            count = rng.randint(3, max(3, 240 // supply))
            start = self.today - timedelta(days=count * supply + rng.randint(10, 100))
            return self.walk(max(earliest, start), self.yesterday, supply, scenario)[:count]
        start = self.today - timedelta(days=rng.randint(180, 365))
        return self.walk(start, self.yesterday, supply, scenario)

    def walk(self, start: date, stop: date, supply: int, scenario: str) -> list[date]:
        """Refill dates from ``start`` while on or before ``stop``: each near the carried-forward run-out."""
        dates: list[date] = []
        day, covered = start, start
        while day <= stop:
            dates.append(day)
            covered = max(covered, day) + timedelta(days=supply)
            day = covered + timedelta(days=self.refill_delta(scenario))
        return dates

    def refill_delta(self, scenario: str) -> int:
        """Days between run-out and the next refill: negative is early, positive a gap."""
        rng = self.rng
        if scenario == "early":
            return rng.choice((-7, -6, -5, -4, -3, -2, 0))
        if scenario == "late":
            return rng.randint(5, 25) if rng.random() < 0.4 else rng.randint(-1, 3)
        return rng.randint(-3, 1)

    def add_fills(
        self,
        rx: PrescriptionRecord,
        spec: DrugSpec,
        supply: int,
        dates: list[date],
        delivery: bool,
        zone: str,
    ) -> None:
        profile = self.copay_profile(rx.payer_type, spec)
        previous: date | None = None
        for day in dates:
            self.fill_serial += 1
            new_year = previous is None or previous.year != day.year
            cents = self.copay_cents(profile, new_year)
            self.fills.append(
                FillRecord(
                    id=f"{rx.id.split('-')[0]}-F{self.fill_serial:07d}",
                    prescription_id=rx.id,
                    dispensed_on=day,
                    days_supply=supply,
                    quantity=round(spec.units_per_day * supply),
                    copay_cents=cents,
                )
            )
            self.add_dispense_events(rx, day, delivery, zone, cents)
            previous = day

    def copay_profile(self, payer: str, spec: DrugSpec) -> tuple[str, int]:
        """How this prescription's copays behave: (kind, base cents). Most are low; a few are large."""
        rng = self.rng
        if payer == "medicaid":
            return "flat", rng.choice((0, 0, 100, 300, 400))
        if not spec.specialty:
            top = 9000 if payer == "cash" else 2500
            return "flat", rng.randrange(0, top, 100 if payer == "cash" else 5)
        roll = rng.random()
        if payer == "medicare_d":
            if roll < 0.45:  # low-income subsidy
                return "flat", rng.choice((0, 495, 1215))
            if roll < 0.8:  # pays up to the yearly out-of-pocket cap on the first fill of the year
                return "cap", rng.randrange(120000, 200001, 500)
            return "coinsurance", rng.randrange(10000, 60000, 100)
        if roll < 0.7:  # manufacturer copay card
            return "flat", rng.choice((0, 0, 500, 1000, 2500))
        if roll < 0.9:
            return "coinsurance", rng.randrange(10000, 50000, 100)
        return "deductible", rng.randrange(100000, 300001, 500)

    def copay_cents(self, profile: tuple[str, int], new_year: bool) -> int:
        kind, base = profile
        if kind == "cap":
            return base if new_year else 0
        if kind == "deductible":
            return base if new_year else self.rng.choice((2500, 5000, 7500))
        if kind == "coinsurance":
            return max(0, base + self.rng.randint(-20, 20) * 100)
        return base

    # -- events -------------------------------------------------------------------------------------

    def add_dispense_events(
        self, rx: PrescriptionRecord, day: date, delivery: bool, zone: str, cents: int
    ) -> None:
        rng, rx_id = self.rng, rx.id
        ready_day = max(rx.written_on, day - timedelta(days=rng.randint(0, 1 if delivery else 2)))
        ready_at = _at(ready_day, rng.randint(10, 11), rng.randint(0, 59), zone)
        self.events.append(EventRecord(rx_id, "ready", ready_at, {"copay_cents": cents}))
        if delivery:
            shipped = _at(day, rng.randint(13, 15), rng.randint(0, 59), zone)
            self.events.append(EventRecord(rx_id, "shipped", shipped, {"carrier": "courier"}))
        else:
            picked = _at(day, rng.randint(12, 16), rng.randint(0, 59), zone)
            self.events.append(EventRecord(rx_id, "picked_up", picked, {}))

    def add_intake_events(self, rx: PrescriptionRecord, needs_pa: bool, dates: list[date], zone: str) -> None:
        """Received (and PA approved) before the first fill; for never-dispensed ones, maybe ready."""
        rng = self.rng
        received = _at(rx.written_on, rng.randint(8, 9), rng.randint(0, 59), zone)
        self.events.append(EventRecord(rx.id, "received", received, {"source": "erx"}))
        # The first fill's own ready event comes up to two days before it; PA approval precedes that.
        span = ((dates[0] - timedelta(days=3)) if dates else self.yesterday) - rx.written_on
        ready = rx.written_on
        if needs_pa and not (rx.scenario == "pending" and rng.random() < 0.6):
            ready = rx.written_on + timedelta(days=max(0, min(span.days, rng.randint(1, 5))))
            approved = _at(ready, rng.randint(12, 13), rng.randint(0, 59), zone)
            self.events.append(EventRecord(rx.id, "pa_approved", approved, {}))
        if not dates and rx.status == "active":
            ready = min(ready + timedelta(days=1), self.yesterday)
            self.events.append(EventRecord(rx.id, "ready", _at(ready, 16, rng.randint(0, 59), zone), {}))


def generate_practice(*, seed: int = 7, patients: int = 200, today: date) -> Practice:
    """Generate a synthetic two-site MID network, the same for the same seed, patient count and day.

    Args:
        seed: Seed of the only random source used.
        patients: How many patient records (at least 1); a few share data with the other site.
        today: The day the practice is "as of"; every date is relative to it and history ends yesterday.

    Returns:
        The practice as plain dataclasses, ready for ``load_practice`` or ``write_csvs``.

    Raises:
        ValueError: ``patients`` is not positive, or so large the fictional number range runs out.
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    gen = _Generator(seed, today)
    sites = gen.sites()
    gen.make_patients(patients)
    gen.make_prescriptions()
    return Practice(
        seed=seed,
        today=today,
        sites=sites,
        patients=tuple(gen.patients),
        prescriptions=tuple(gen.prescriptions),
        fills=tuple(gen.fills),
        events=tuple(gen.events),
    )


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _quantity(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def write_csvs(practice: Practice, directory: Path) -> dict[str, Path]:
    """Write patients.csv, prescriptions.csv and fills.csv in the `midbot import` layout (UTF-8, ISO dates).

    Opted-out patients are written with ``sms_consent`` false, since the CSV has no opt-out column.

    Returns:
        The path of each file, keyed "patients", "prescriptions", "fills".
    """
    directory.mkdir(parents=True, exist_ok=True)
    rows: dict[str, tuple[tuple[str, ...], list[list[str]]]] = {
        "patients": (
            PATIENT_COLUMNS,
            [
                [
                    p.id,
                    p.site_id,
                    p.first_name,
                    p.last_name,
                    p.birth_date.isoformat(),
                    p.phone,
                    p.language,
                    p.time_zone or "",
                    _bool(p.sms_consent and p.opted_out_at is None),
                    _bool(p.detailed_consent),
                ]
                for p in practice.patients
            ],
        ),
        "prescriptions": (
            PRESCRIPTION_COLUMNS,
            [
                [
                    r.id,
                    r.patient_id,
                    r.drug,
                    r.therapy_class,
                    r.payer_type,
                    r.status,
                    r.written_on.isoformat(),
                ]
                for r in practice.prescriptions
            ],
        ),
        "fills": (
            FILL_COLUMNS,
            [
                [
                    f.id,
                    f.prescription_id,
                    f.dispensed_on.isoformat(),
                    str(f.days_supply),
                    _quantity(f.quantity),
                    f.copay,
                ]
                for f in practice.fills
            ],
        ),
    }
    paths: dict[str, Path] = {}
    for name, (header, body) in rows.items():
        path = directory / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body)
        paths[name] = path
    _LOGGER.info("synthetic practice CSVs written to %s", directory)
    return paths


async def _existing(session: AsyncSession, column: InstrumentedAttribute[str], ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update((await session.scalars(select(column).where(column.in_(chunk)))).all())
    return found


async def _insert_new(
    session: AsyncSession, model: Any, records: Sequence[Any], drop: tuple[str, ...] = ()
) -> set[str]:
    """Insert the records whose id is not in the table yet; return the ids inserted."""
    have = await _existing(session, model.id, [r.id for r in records])
    fresh = [r for r in records if r.id not in have]
    if fresh:
        rows = [{k: v for k, v in asdict(r).items() if k not in drop} for r in fresh]
        await session.execute(insert(model), rows)
    return {r.id for r in fresh}


async def load_practice(session: AsyncSession, practice: Practice) -> dict[str, int]:
    """Insert the practice with the ORM models; rows whose id already exists are left as they are.

    Runs inside the caller's unit of work (``async with sessionmaker.begin() as session``): it flushes
    but does not commit. Events are added only for prescriptions inserted by this call, so loading the
    same practice twice inserts nothing the second time.

    Returns:
        Rows inserted per kind: sites, patients, prescriptions, fills, prescription_events.
    """
    sites = await _insert_new(session, Site, practice.sites)
    patients = await _insert_new(session, Patient, practice.patients, drop=("delivery",))
    prescriptions = await _insert_new(session, Prescription, practice.prescriptions, drop=("scenario",))
    fills = await _insert_new(session, Fill, practice.fills)
    events = [asdict(e) for e in practice.events if e.prescription_id in prescriptions]
    if events:
        await session.execute(insert(PrescriptionEvent), events)
    await session.flush()
    counts = {
        "sites": len(sites),
        "patients": len(patients),
        "prescriptions": len(prescriptions),
        "fills": len(fills),
        "prescription_events": len(events),
    }
    _LOGGER.info("synthetic practice loaded (seed %d): %s", practice.seed, counts)
    return counts
