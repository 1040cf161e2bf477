"""The planner: triggers, conditions, time zones and DST, idempotence and incremental re-planning."""

from __future__ import annotations

from datetime import date, timedelta

from sched_helpers import add_event, add_fill, add_patient, add_rx, add_site, outreach, utc
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Outreach, Patient, Prescription
from scheduler.planner import replan
from scheduler.programs import parse_programs, replace_site_programs

REFILL = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger: {run_out: {days_before: [5, 2]}}
"""
CHECKIN = """\
programs:
  - id: checkin
    kind: side_effect_checkin
    trigger: {first_fill: {days_after: [3, 7, 14], then_every: 30}}
    send_at: "11:00"
"""


async def setup(
    sm: async_sessionmaker[AsyncSession],
    programs: str | None = REFILL,
    patients: int = 1,
    tz: str = "America/Chicago",
) -> None:
    async with sm.begin() as s:
        await add_site(s, tz=tz)
        for i in range(1, patients + 1):
            await add_patient(s, f"P{i}")
            await add_rx(s, f"RX{i}", f"P{i}")
        if programs is not None:
            await replace_site_programs(s, "S1", parse_programs(programs))


async def plan(sm: async_sessionmaker[AsyncSession], now, **kw):  # type: ignore[no-untyped-def]
    async with sm.begin() as s:
        kw.setdefault("patient_ids", None)
        return (await replan(s, now=now, **kw)).as_dict()


async def rows(sm: async_sessionmaker[AsyncSession], **filters):  # type: ignore[no-untyped-def]
    async with sm() as s:
        return await outreach(s, **filters)


async def test_run_out_reminders_at_ten_local_and_idempotent_rerun(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await setup(sm)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)  # runs out 12-08
    assert await plan(sm, utc(2026, 11, 24, 15)) == {"planned": 2, "cancelled": 0, "unchanged": 0}
    planned = await rows(sm)
    assert [(r.step, r.due_at, r.deadline_at) for r in planned] == [
        ("run_out-5", utc(2026, 12, 3, 16), utc(2026, 12, 4, 16)),
        ("run_out-2", utc(2026, 12, 6, 16), utc(2026, 12, 7, 16)),
    ]
    assert planned[0].idempotency_key == "P1:RX1:refill:run_out-5:2026-12-03"
    assert {r.state for r in planned} == {"planned"} and planned[0].kind == "refill_reminder"
    assert await plan(sm, utc(2026, 11, 24, 15)) == {"planned": 0, "cancelled": 0, "unchanged": 2}


async def test_early_refill_moves_the_reminders_and_only_that_patient_is_replanned(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await setup(sm, patients=2)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)
        await add_fill(s, "F2", "RX2", date(2026, 11, 10), 28)
    now = utc(2026, 11, 28, 15)
    await plan(sm, now)
    async with sm.begin() as s:
        await add_fill(s, "F1b", "RX1", date(2026, 12, 1), 28)  # 7 days early: runs out 2027-01-05
    assert await plan(sm, now, patient_ids={"P1"}) == {"planned": 1, "cancelled": 2, "unchanged": 0}
    p1 = await rows(sm, patient_id="P1")
    assert [(r.step, r.due_at.date(), r.state, r.reason) for r in p1] == [
        ("run_out-5", date(2026, 12, 3), "cancelled", "replanned"),
        ("run_out-2", date(2026, 12, 6), "cancelled", "replanned"),
        ("run_out-5", date(2026, 12, 31), "planned", ""),
        # run_out-2 on 2027-01-03 is past the 35-day horizon (2027-01-02): planned on a later run.
    ]
    assert {r.state for r in await rows(sm, patient_id="P2")} == {"planned"}
    assert await plan(sm, utc(2026, 11, 29, 15)) == {"planned": 1, "cancelled": 0, "unchanged": 3}


async def test_late_refill_plans_from_the_new_fill(sm: async_sessionmaker[AsyncSession]) -> None:
    await setup(sm)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 9, 1), 28)
        await add_fill(s, "F2", "RX1", date(2026, 11, 20), 28)  # weeks late: runs out 12-18
    await plan(sm, utc(2026, 11, 24, 15))
    assert [r.due_at.date() for r in await rows(sm)] == [date(2026, 12, 13), date(2026, 12, 16)]


async def test_nothing_past_its_deadline_is_planned(sm: async_sessionmaker[AsyncSession]) -> None:
    await setup(sm)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)
    # 12-03 10:00 CST + 24 h = 12-04 16:00Z: at 17:00Z it has expired, run_out-2 is still ahead.
    await plan(sm, utc(2026, 12, 4, 17))
    assert [r.step for r in await rows(sm)] == ["run_out-2"]
    async with sm.begin() as s:
        await add_fill(s, "F0", "RX1", date(2026, 11, 9), 1)
    await plan(sm, utc(2026, 12, 4, 15))  # still within the deadline: planned though due in the past
    assert [r.step for r in await rows(sm, state="planned")] == ["run_out-5", "run_out-2"]


async def test_checkins_on_days_3_7_14_of_the_first_fill(sm: async_sessionmaker[AsyncSession]) -> None:
    await setup(sm, CHECKIN)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 20), 28)
    await plan(sm, utc(2026, 11, 21, 12))
    assert [(r.step, r.due_at) for r in await rows(sm)] == [
        ("first_fill-3", utc(2026, 11, 23, 17)),
        ("first_fill-7", utc(2026, 11, 27, 17)),
        ("first_fill-14", utc(2026, 12, 4, 17)),
    ]


async def test_checkins_repeat_every_30_days_while_the_therapy_lasts(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await setup(sm, CHECKIN, patients=2)
    async with sm.begin() as s:
        for i, on in enumerate((date(2026, 10, 1), date(2026, 10, 29), date(2026, 11, 26))):
            await add_fill(s, f"F{i}", "RX1", on, 28)
        await add_fill(s, "G1", "RX2", date(2026, 8, 1), 28)  # stopped filling in August
    await plan(sm, utc(2026, 11, 24, 15))
    assert [(r.step, r.due_at.date()) for r in await rows(sm, patient_id="P1")] == [
        ("first_fill-74", date(2026, 12, 14))
    ]
    assert await rows(sm, patient_id="P2") == []


async def test_event_triggers_and_their_cancellation(sm: async_sessionmaker[AsyncSession]) -> None:
    programs = """\
programs:
  - {id: recover, kind: abandonment_recovery, trigger: {event: {name: not_picked_up, after_days: 3}}}
  - {id: nudge, kind: new_start, trigger: {event: {name: received, after_days: 2}}}
"""
    await setup(sm, programs, patients=2)
    async with sm.begin() as s:
        await add_event(s, "RX1", "not_picked_up", utc(2026, 11, 20, 18))
        await s.execute(update(Prescription).where(Prescription.id == "RX2").values(status="received"))
        await add_event(s, "RX2", "received", utc(2026, 11, 21, 15))
    await plan(sm, utc(2026, 11, 22, 12))
    assert sorted((r.patient_id, r.step, r.due_at) for r in await rows(sm)) == [
        ("P1", "event-not_picked_up+3", utc(2026, 11, 23, 16)),
        ("P2", "event-received+2", utc(2026, 11, 23, 16)),
    ]
    async with sm.begin() as s:
        await add_event(s, "RX1", "picked_up", utc(2026, 11, 22, 14))
        await add_fill(s, "F2", "RX2", date(2026, 11, 22), 28)
    assert await plan(sm, utc(2026, 11, 22, 15)) == {"planned": 0, "cancelled": 2, "unchanged": 0}
    assert {(r.state, r.reason) for r in await rows(sm)} == {("cancelled", "not_needed")}


async def test_dst_both_changes_keep_ten_local_and_the_patient_zone_wins(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await setup(sm, patients=2)
    async with sm.begin() as s:
        await s.execute(update(Patient).where(Patient.id == "P2").values(time_zone="America/New_York"))
        await add_fill(s, "F1", "RX1", date(2026, 2, 10), 28)  # runs out 03-10: reminders 03-05 and 03-08
        await add_fill(s, "F2", "RX2", date(2026, 10, 6), 28)  # runs out 11-03: reminders 10-29 and 11-01
    await plan(sm, utc(2026, 2, 20, 12), patient_ids={"P1"})
    await plan(sm, utc(2026, 10, 20, 12), patient_ids={"P2"})
    assert [r.due_at for r in await rows(sm, patient_id="P1")] == [utc(2026, 3, 5, 16), utc(2026, 3, 8, 15)]
    assert [r.due_at for r in await rows(sm, patient_id="P2")] == [
        utc(2026, 10, 29, 14),
        utc(2026, 11, 1, 15),
    ]


async def test_opt_out_no_consent_and_discontinued_cancel_pending_rows_and_undo_revives(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await setup(sm, patients=3)
    async with sm.begin() as s:
        for i in (1, 2, 3):
            await add_fill(s, f"F{i}", f"RX{i}", date(2026, 11, 10), 28)
    now = utc(2026, 11, 24, 15)
    await plan(sm, now)
    async with sm.begin() as s:
        await s.execute(update(Patient).where(Patient.id == "P1").values(opted_out_at=now))
        await s.execute(update(Patient).where(Patient.id == "P2").values(sms_consent=False))
        await s.execute(update(Prescription).where(Prescription.id == "RX3").values(status="discontinued"))
    assert await plan(sm, now) == {"planned": 0, "cancelled": 6, "unchanged": 0}
    assert {(r.patient_id, r.reason) for r in await rows(sm)} == {
        ("P1", "opted_out"),
        ("P2", "no_consent"),
        ("P3", "discontinued"),
    }
    async with sm.begin() as s:
        await s.execute(update(Patient).where(Patient.id == "P1").values(opted_out_at=None))
    # Only rows that should exist are counted: P2's and P3's cancelled rows are neither planned nor unchanged.
    assert await plan(sm, now) == {"planned": 2, "cancelled": 0, "unchanged": 0}
    assert {r.state for r in await rows(sm, patient_id="P1")} == {"planned"}


async def test_rows_a_dispatcher_owns_or_finished_are_never_touched(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await setup(sm)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)
    now = utc(2026, 11, 24, 15)
    await plan(sm, now)
    first, second = await rows(sm)
    async with sm.begin() as s:
        await s.execute(update(Outreach).where(Outreach.id == first.id).values(state="sent"))
        await s.execute(
            update(Outreach).where(Outreach.id == second.id).values(state="claimed", lease_owner="d1")
        )
        await s.execute(update(Prescription).where(Prescription.id == "RX1").values(status="discontinued"))
    assert await plan(sm, now) == {"planned": 0, "cancelled": 0, "unchanged": 0}
    assert [(r.state, r.reason) for r in await rows(sm)] == [("sent", ""), ("claimed", "")]


async def test_a_program_edit_replans_only_the_rows_it_affects(sm: async_sessionmaker[AsyncSession]) -> None:
    await setup(sm, REFILL + CHECKIN.split("programs:\n", 1)[1])
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 20), 28)  # runs out 12-18
    now = utc(2026, 11, 21, 12)
    assert await plan(sm, now) == {"planned": 5, "cancelled": 0, "unchanged": 0}
    before = {r.idempotency_key: r.id for r in await rows(sm)}
    edited = REFILL.replace("[5, 2]", "[5, 3]") + CHECKIN.split("programs:\n", 1)[1]
    async with sm.begin() as s:
        change = await replace_site_programs(s, "S1", parse_programs(edited))
    assert change.updated == ["refill"] and change.unchanged == ["checkin"]
    assert await plan(sm, now, program_ids=change.changed_pks) == {
        "planned": 1,
        "cancelled": 1,
        "unchanged": 1,
    }
    after = await rows(sm)
    assert {(r.step, r.state, r.reason) for r in after if r.program_id == "refill"} == {
        ("run_out-5", "planned", ""),
        ("run_out-2", "cancelled", "replanned"),
        ("run_out-3", "planned", ""),
    }
    assert all(before[r.idempotency_key] == r.id for r in after if r.idempotency_key in before)
    async with sm.begin() as s:
        change = await replace_site_programs(s, "S1", parse_programs(CHECKIN))
    assert await plan(sm, now, program_ids=change.changed_pks) == {
        "planned": 0,
        "cancelled": 2,
        "unchanged": 0,
    }
    assert {r.reason for r in await rows(sm, program_id="refill", state="cancelled")} == {
        "replanned",
        "program_removed",
    }


async def test_send_at_edit_moves_due_time_without_new_rows(sm: async_sessionmaker[AsyncSession]) -> None:
    await setup(sm)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)
    now = utc(2026, 11, 24, 15)
    await plan(sm, now)
    async with sm.begin() as s:
        change = await replace_site_programs(s, "S1", parse_programs(REFILL + '    send_at: "14:30"\n'))
    assert await plan(sm, now, program_ids=change.changed_pks) == {
        "planned": 2,
        "cancelled": 0,
        "unchanged": 0,
    }
    assert [r.due_at for r in await rows(sm)] == [utc(2026, 12, 3, 20, 30), utc(2026, 12, 6, 20, 30)]


async def test_conditions_filter_drug_payer_language_and_copay(sm: async_sessionmaker[AsyncSession]) -> None:
    programs = """\
programs:
  - id: cape-es
    kind: refill_reminder
    trigger: {run_out: {days_before: 5}}
    when: {drugs: [Capecitabine], languages: [es]}
  - id: copay
    kind: copay_assistance
    trigger: {run_out: {days_before: [7]}}
    when: {copay_at_least: 100, payer_types: [commercial, medicare_d]}
"""
    await setup(sm, programs, patients=3)
    async with sm.begin() as s:
        await s.execute(update(Patient).where(Patient.id.in_(["P1", "P3"])).values(language="es"))
        await s.execute(
            update(Prescription)
            .where(Prescription.id == "RX3")
            .values(drug="abiraterone", payer_type="medicaid")
        )
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28, copay_cents=12_500)
        await add_fill(s, "F2", "RX2", date(2026, 11, 10), 28, copay_cents=9_999)
        await add_fill(s, "F3", "RX3", date(2026, 11, 10), 28, copay_cents=50_000)
    await plan(sm, utc(2026, 11, 24, 15))
    assert sorted((r.patient_id, r.program_id) for r in await rows(sm)) == [
        ("P1", "cape-es"),
        ("P1", "copay"),
    ]


async def test_cron_program_in_the_site_zone_and_default_set_when_none_loaded(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    programs = 'programs:\n  - {id: weekly, kind: side_effect_checkin, trigger: {cron: "0 9 * * MON"}}\n'
    await setup(sm, programs)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)
    await plan(sm, utc(2026, 11, 24, 15), horizon_days=14)
    assert [(r.step, r.due_at) for r in await rows(sm)] == [
        ("cron-2026-11-30", utc(2026, 11, 30, 15)),
        ("cron-2026-12-07", utc(2026, 12, 7, 15)),
    ]


async def test_sites_without_programs_get_the_default_set_and_loading_them_is_unchanged(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    from scheduler.programs import load_default_programs

    await setup(sm, programs=None)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 20), 28, copay_cents=15_000)
    now = utc(2026, 11, 20, 12)
    summary = await plan(sm, now)
    steps = {(r.program_id, r.step) for r in await rows(sm)}
    assert {
        ("refill-reminder", "run_out-5"),
        ("refill-reminder", "run_out-2"),
        ("copay-assistance", "run_out-7"),
        ("new-start-welcome", "first_fill-1"),
        ("side-effect-checkin", "first_fill-3"),
    } <= steps
    assert all(r.program_pk is None for r in await rows(sm))
    async with sm.begin() as s:
        await load_default_programs(s, "S1")
    assert await plan(sm, now) == {"planned": 0, "cancelled": 0, "unchanged": summary["planned"]}
    assert all(r.program_pk is not None for r in await rows(sm))


async def test_horizon_limits_how_far_ahead_rows_are_planned(sm: async_sessionmaker[AsyncSession]) -> None:
    await setup(sm)
    async with sm.begin() as s:
        await add_fill(s, "F1", "RX1", date(2026, 11, 10), 90)  # runs out 2027-02-08
    now = utc(2026, 11, 24, 15)
    assert await plan(sm, now) == {"planned": 0, "cancelled": 0, "unchanged": 0}
    assert await plan(sm, now + timedelta(days=40)) == {"planned": 2, "cancelled": 0, "unchanged": 0}


async def test_planning_is_the_same_on_sqlite_and_postgresql(any_db_url: str) -> None:
    from bot.db.migrate import upgrade
    from bot.db.session import make_engine, make_sessionmaker

    engine = make_engine(any_db_url)
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    try:
        await setup(sm, patients=2)
        async with sm.begin() as s:
            await add_fill(s, "F1", "RX1", date(2026, 11, 10), 28)
            await add_fill(s, "F2", "RX2", date(2026, 11, 12), 28)
        now = utc(2026, 11, 24, 15)
        assert await plan(sm, now) == {"planned": 4, "cancelled": 0, "unchanged": 0}
        assert await plan(sm, now) == {"planned": 0, "cancelled": 0, "unchanged": 4}
        async with sm.begin() as s:
            await s.execute(update(Prescription).where(Prescription.id == "RX2").values(status="completed"))
        assert await plan(sm, now) == {"planned": 0, "cancelled": 2, "unchanged": 2}
        got = await rows(sm, patient_id="P1")
        assert [(r.step, r.due_at, r.deadline_at, r.state) for r in got] == [
            ("run_out-5", utc(2026, 12, 3, 16), utc(2026, 12, 4, 16), "planned"),
            ("run_out-2", utc(2026, 12, 6, 16), utc(2026, 12, 7, 16), "planned"),
        ]
    finally:
        await engine.dispose()
