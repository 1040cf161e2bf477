"""Computed signals: PDC below threshold, primary/secondary abandonment, unreachable — once per episode."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Fill, Message, Patient, Prescription, PrescriptionEvent, Signal
from integrations.dispensary.computed import compute_signals

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 09:00 in Chicago


def _rx(rx_id: str, patient: str, status: str = "active") -> Prescription:
    return Prescription(id=rx_id, patient_id=patient, site_id="s1", drug="capecitabine", status=status)


def _fills(rx_id: str, days: list[str], supply: int = 30) -> list[Fill]:
    return [
        Fill(
            id=f"{rx_id}-f{i}", prescription_id=rx_id, dispensed_on=date.fromisoformat(d), days_supply=supply
        )
        for i, d in enumerate(days)
    ]


def _event(rx_id: str, name: str, day: str, **detail: str) -> PrescriptionEvent:
    at = datetime.fromisoformat(day).replace(hour=16, tzinfo=UTC)
    return PrescriptionEvent(prescription_id=rx_id, name=name, occurred_at=at, detail=detail)


def _failed(patient: str, n: int) -> list[Message]:
    return [
        Message(
            direction="out",
            kind="outreach",
            patient_id=patient,
            site_id="s1",
            from_number="+15550000001",
            to_number="+15551110009",
            body="x",
            status="undelivered",
            error_code=30003,
            created_at=NOW - timedelta(days=10 - i),
        )  # fmt: skip
        for i in range(n)
    ]


async def _seed(session: AsyncSession) -> None:
    session.add_all(
        [
            Patient(id="p3", site_id="s1", first_name="C", last_name="C", phone="+15551110003", phone_status="invalid"),
            Patient(id="p4", site_id="s1", first_name="D", last_name="D", phone="+15551110004"),
            Patient(id="p5", site_id="s1", first_name="E", last_name="E", phone="+15551110005",
                    phone_status="invalid", opted_out_at=NOW - timedelta(days=3)),
            Patient(id="p6", site_id="s1", first_name="F", last_name="F", phone="+15551110006",
                    deliverability={"consecutive_failures": 3, "last_delivered_at": "2026-10-01T15:00:00+00:00",
                                    "last_error_at": "2026-11-20T15:00:00+00:00", "last_error_code": 30005}),
        ]
    )  # fmt: skip
    await session.flush()
    session.add_all(
        [_rx("rxA", "p1"), _rx("rxB", "p1"), _rx("rxC", "p4"), _rx("rxD", "p4", "received"),
         _rx("rxE", "p4", "received"), _rx("rxF", "p1", "discontinued"), _rx("rxG", "p1", "on_hold")]
    )  # fmt: skip
    await session.flush()
    session.add_all(
        _fills("rxA", ["2026-05-01", "2026-07-15", "2026-09-20", "2026-11-10"])  # gaps: PDC 0.56
        + _fills(
            "rxB",
            [
                "2026-05-01",
                "2026-05-29",
                "2026-06-27",
                "2026-07-26",
                "2026-08-24",
                "2026-09-22",
                "2026-10-21",
                "2026-11-19",
            ],
        )  # on time: adherent  # fmt: skip
        + _fills("rxC", ["2026-06-01", "2026-07-01", "2026-08-01", "2026-09-01"])  # stopped: ran out 10-01
        + _fills("rxF", ["2026-03-01"])  # discontinued: a planned stop
    )
    session.add_all(
        [
            _event("rxD", "received", "2026-10-01"),  # never filled: primary abandonment
            _event("rxE", "received", "2026-11-10"),  # still within 30 days: pending
            _event("rxG", "received", "2026-09-01"),
            _event("rxG", "declined", "2026-09-05", reason="cost"),
        ]
    )
    session.add_all(_failed("p4", 3))


async def test_compute_signals_finds_each_rule_once(maker) -> None:
    async with maker.begin() as session:
        await _seed(session)
    async with maker.begin() as session:
        added = await compute_signals(session, now=NOW)
    async with maker() as session:
        signals = (await session.scalars(select(Signal).order_by(Signal.id))).all()
    found = {(s.kind, s.prescription_id or s.patient_id): s for s in signals}
    assert set(found) == {
        ("pdc_below_threshold", "rxA"),
        ("pdc_below_threshold", "rxC"),
        ("secondary_abandonment", "rxC"),
        ("primary_abandonment", "rxD"),
        ("primary_abandonment", "rxG"),
        ("unreachable", "p3"),
        ("unreachable", "p4"),
        ("unreachable", "p6"),
    }
    assert added == 8 and all(s.source == "computed" for s in signals)

    pdc_a = found[("pdc_below_threshold", "rxA")].value
    assert pdc_a["pdc"] == round(75 / 133, 4) and pdc_a["period_start"] == "2026-07-15"
    assert pdc_a["days_in_period"] == 133 and pdc_a["threshold"] == 0.8
    secondary = found[("secondary_abandonment", "rxC")]
    assert secondary.value["run_out_on"] == "2026-10-01" and secondary.value["days_since_run_out"] == 54
    assert secondary.occurred_at == datetime(
        2026, 11, 1, 5, 0, tzinfo=UTC
    )  # run-out + 31 days, Chicago midnight
    primary = found[("primary_abandonment", "rxD")]
    assert primary.value["reason"] == "not_dispensed_within_30_days" and primary.value["days_waiting"] == 54
    declined = found[("primary_abandonment", "rxG")]
    assert declined.value["reason"] == "declined: cost"
    assert declined.occurred_at == datetime(2026, 9, 5, 16, 0, tzinfo=UTC)
    assert found[("unreachable", "p3")].value["reason"] == "invalid_number"
    assert found[("unreachable", "p4")].value == {
        "reason": "delivery_failures", "last_error_code": 30003, "consecutive_failures": 3,
    }  # fmt: skip
    assert found[("unreachable", "p6")].occurred_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

    # Re-running adds nothing.
    async with maker.begin() as session:
        assert await compute_signals(session, now=NOW + timedelta(hours=5)) == 0

    # A month later: new monthly PDC signals, and rxE's 30 days have run out; the rest are the same episodes.
    async with maker.begin() as session:
        later = await compute_signals(session, now=NOW + timedelta(days=30))
    async with maker() as session:
        newest = (await session.scalars(select(Signal).where(Signal.id > signals[-1].id))).all()
    assert later == 3 and {(s.kind, s.prescription_id) for s in newest} == {
        ("pdc_below_threshold", "rxA"),
        ("pdc_below_threshold", "rxC"),
        ("primary_abandonment", "rxE"),
    }


async def test_a_refill_after_a_lapse_starts_a_new_episode(maker) -> None:
    async with maker.begin() as session:
        session.add(_rx("rxC", "p1"))
        await session.flush()
        session.add_all(_fills("rxC", ["2026-09-01"]))
    async with maker.begin() as session:
        assert await compute_signals(session, now=NOW, pdc_threshold=0.0) == 1  # ran out 10-01
    async with maker.begin() as session:
        session.add(Fill(id="late", prescription_id="rxC", dispensed_on=date(2026, 11, 25), days_supply=7))
    async with maker.begin() as session:
        # After the 7-day fill runs out (12-02) and 30 more days pass, it is a second lapse.
        assert (
            await compute_signals(session, now=datetime(2027, 1, 3, 15, tzinfo=UTC), pdc_threshold=0.0) == 1
        )
    async with maker() as session:
        keys = (await session.scalars(select(Signal.dedupe_key).order_by(Signal.id))).all()
    assert keys == ["secondary_abandonment:rxC:2026-10-01", "secondary_abandonment:rxC:2026-12-02"]


async def test_site_filter_and_naive_time(maker) -> None:
    async with maker.begin() as session:
        session.add(
            Patient(
                id="p9", site_id="s2", first_name="G", last_name="G", phone="+1555", phone_status="invalid"
            )
        )
    async with maker.begin() as session:
        assert await compute_signals(session, now=NOW, site_id="s1") == 0
        assert await compute_signals(session, now=NOW, site_id="s2") == 1
        with pytest.raises(ValueError, match="now"):
            await compute_signals(session, now=NOW.replace(tzinfo=None))
