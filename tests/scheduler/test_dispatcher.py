"""The dispatcher on SQLite: the order of checks, deferrals, bundling, failures and crash recovery."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sched_helpers import (
    FakeSender,
    add_outbound,
    add_outreach,
    add_patient,
    add_rx,
    add_site,
    outreach,
    utc,
    worker_for,
)
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.db.models import Conversation, Message, Outreach, Patient, Prescription
from scheduler.dispatcher import Dispatcher
from scheduler.rules import RateLimiter

NOON = utc(2026, 11, 24, 18)  # Tuesday 12:00 in Chicago


async def world(sm: async_sessionmaker[AsyncSession], patients: int = 1, **site: object) -> None:
    async with sm.begin() as s:
        await add_site(s, **site)  # type: ignore[arg-type]
        for i in range(1, patients + 1):
            await add_patient(s, f"P{i}", phone=f"+1312555{i:04d}")
            await add_rx(s, f"RX{i}", f"P{i}")


def dispatcher(
    sm: async_sessionmaker[AsyncSession],
    sender: FakeSender,
    now: datetime = NOON,
    registry: CollectorRegistry | None = None,
    **kw: object,
) -> Dispatcher:
    return Dispatcher(
        sm,
        sender,
        FixedClock(now),
        owner=str(kw.pop("owner", "d1")),
        batch_size=int(kw.pop("batch_size", 50)),  # type: ignore[call-overload]
        lease_seconds=120,
        registry=registry,
        db=kw.pop("db", None) or worker_for(sm),
        **kw,
    )  # type: ignore[arg-type]


async def states(sm: async_sessionmaker[AsyncSession]) -> list[tuple[int, str, str]]:
    async with sm() as s:
        return [(r.id, r.state, r.reason) for r in await outreach(s)]


async def test_due_rows_are_sent_and_future_ones_wait(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm, patients=2)
    async with sm.begin() as s:
        due = await add_outreach(s, "P1", NOON - timedelta(hours=2))
        later = await add_outreach(s, "P2", NOON + timedelta(days=2))
    sender = FakeSender(sm)
    registry = CollectorRegistry()
    summary = await dispatcher(sm, sender, registry=registry).run_once()
    assert summary.sent == 1 and summary.messages == 1 and summary.claimed == 1
    assert sender.sends == [("P1", [due.id])]
    async with sm() as s:
        sent = await s.get(Outreach, due.id)
        assert (
            sent is not None
            and sent.state == "sent"
            and sent.message_id is not None
            and sent.lease_owner is None
        )
        assert sent.attempts == 1
        assert (await s.get(Outreach, later.id)).state == "planned"  # type: ignore[union-attr]
    assert registry.get_sample_value("midbot_outreach_sent_total") == 1
    assert registry.get_sample_value("midbot_outreach_dispatch_lag_seconds_sum") == 7200
    assert (await dispatcher(sm, sender).run_once()).claimed == 0  # nothing sent twice


async def test_quiet_hours_defer_to_the_window_in_the_patients_zone(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await world(sm, patients=2)
    night = utc(2026, 11, 25, 7)  # 01:00 Chicago, 02:00 New York
    async with sm.begin() as s:
        await s.execute(update(Patient).where(Patient.id == "P2").values(time_zone="America/New_York"))
        a = await add_outreach(s, "P1", night - timedelta(hours=1))
        b = await add_outreach(s, "P2", night - timedelta(hours=1))
    sender = FakeSender(sm)
    summary = await dispatcher(sm, sender, night).run_once()
    assert summary.deferred == 2 and sender.sends == []
    async with sm() as s:
        ra, rb = await s.get(Outreach, a.id), await s.get(Outreach, b.id)
    assert (ra.state, ra.reason, ra.due_at) == ("deferred", "quiet_hours", utc(2026, 11, 25, 15))  # type: ignore[union-attr]
    assert (rb.state, rb.reason, rb.due_at) == ("deferred", "quiet_hours", utc(2026, 11, 25, 14))  # type: ignore[union-attr]
    summary = await dispatcher(sm, sender, utc(2026, 11, 25, 14, 30)).run_once()
    assert summary.sent == 1 and sender.sends == [("P2", [b.id])]


async def test_site_quiet_hours_and_closed_days(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(
        sm,
        quiet_start="10:00",
        quiet_end="18:00",
        settings={"closed_days": [5, 6], "closed_dates": ["2026-11-26"]},
    )
    thursday = utc(2026, 11, 26, 17)  # Thanksgiving, 11:00 Chicago: a closed date
    async with sm.begin() as s:
        row = await add_outreach(s, "P1", thursday, hours=120)
    await dispatcher(sm, FakeSender(sm), thursday).run_once()
    async with sm() as s:
        got = await s.get(Outreach, row.id)
    assert (got.state, got.reason, got.due_at) == ("deferred", "closed_day", utc(2026, 11, 27, 16))  # type: ignore[union-attr]
    friday_evening = utc(2026, 11, 28, 0, 30)  # Fri 18:30: after the site's 18:00 end, weekend closed
    async with sm.begin() as s:
        await s.execute(update(Outreach).values(due_at=friday_evening))
    await dispatcher(sm, FakeSender(sm), friday_evening).run_once()
    async with sm() as s:
        got = await s.get(Outreach, row.id)
    assert (got.reason, got.due_at) == ("quiet_hours", utc(2026, 11, 30, 16))  # type: ignore[union-attr]


async def test_daily_and_weekly_caps_defer_and_replies_do_not_count(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await world(sm, patients=3)
    async with sm.begin() as s:
        await add_outbound(s, "P1", utc(2026, 11, 24, 15))  # 09:00 today
        for day in (19, 20, 22):
            await add_outbound(s, "P2", utc(2026, 11, day, 16))
        for _ in range(3):
            await add_outbound(s, "P3", utc(2026, 11, 24, 15), kind="reply")
        rows = [await add_outreach(s, f"P{i}", NOON) for i in (1, 2, 3)]
    sender = FakeSender(sm)
    await dispatcher(sm, sender, NOON).run_once()
    async with sm() as s:
        got = [await s.get(Outreach, r.id) for r in rows]
    assert [(g.state, g.reason) for g in got] == [
        ("deferred", "daily_cap"),
        ("deferred", "weekly_cap"),
        ("sent", ""),
    ]  # type: ignore[union-attr]
    assert got[0].due_at == utc(2026, 11, 25, 15)  # type: ignore[union-attr]
    assert [p for p, _ in sender.sends] == ["P3"]


async def test_rows_of_one_patient_due_the_same_day_go_as_one_text(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    await world(sm)
    async with sm.begin() as s:
        await add_rx(s, "RX9", "P1", drug="abiraterone")
        lead = await add_outreach(s, "P1", NOON - timedelta(hours=1))
        other_rx = await add_outreach(s, "P1", NOON, rx_id="RX9", step="first_fill-7", program_id="checkin")
        later_today = await add_outreach(s, "P1", NOON + timedelta(hours=5), step="run_out-2")
        tomorrow = await add_outreach(s, "P1", NOON + timedelta(days=1), step="run_out-1")
    sender = FakeSender(sm)
    summary = await dispatcher(sm, sender).run_once()
    assert sender.sends == [("P1", [lead.id, other_rx.id, later_today.id])]
    assert summary.sent == 3 and summary.messages == 1
    async with sm() as s:
        got = {r.id: r for r in await outreach(s)}
        messages = (await s.scalars(select(Message))).all()
    assert len(messages) == 1
    assert (got[lead.id].state, got[lead.id].reason, got[lead.id].bundled_into) == ("sent", "", None)
    for row_id in (other_rx.id, later_today.id):
        assert (got[row_id].state, got[row_id].reason, got[row_id].bundled_into) == (
            "sent",
            "bundled",
            lead.id,
        )
        assert got[row_id].message_id == got[lead.id].message_id == messages[0].id
    assert got[tomorrow.id].state == "planned"


async def test_consent_prescription_and_deadline_checks(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm, patients=4)
    async with sm.begin() as s:
        await s.execute(update(Patient).where(Patient.id == "P1").values(opted_out_at=NOON))
        await s.execute(update(Patient).where(Patient.id == "P2").values(sms_consent=False))
        await s.execute(update(Prescription).where(Prescription.id == "RX3").values(status="on_hold"))
        rows = [await add_outreach(s, f"P{i}", NOON - timedelta(hours=1)) for i in (1, 2, 3)]
        rows.append(await add_outreach(s, "P4", NOON - timedelta(hours=30)))
    sender = FakeSender(sm)
    summary = await dispatcher(sm, sender).run_once()
    assert sender.sends == [] and summary.cancelled == 3 and summary.expired == 1
    assert [(st, why) for _, st, why in await states(sm)] == [
        ("expired", "deadline"),
        ("cancelled", "opted_out"),
        ("cancelled", "no_consent"),
        ("cancelled", "discontinued"),
    ]


async def test_event_rows_may_go_for_a_received_prescription(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm)
    async with sm.begin() as s:
        await s.execute(update(Prescription).values(status="received"))
        row = await add_outreach(s, "P1", NOON, step="event-received+2", kind="new_start")
    sender = FakeSender(sm)
    await dispatcher(sm, sender).run_once()
    assert sender.sends == [("P1", [row.id])]


async def test_an_open_dialog_defers_by_an_hour(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm, patients=2)
    async with sm.begin() as s:
        s.add(
            Conversation(
                patient_id="P1",
                flow="refill_reminder",
                state="asked",
                status="open",
                expires_at=NOON + timedelta(hours=4),
            )
        )
        s.add(
            Conversation(
                patient_id="P2",
                flow="refill_reminder",
                state="asked",
                status="open",
                expires_at=NOON - timedelta(hours=1),
            )
        )  # expired: does not count
        a = await add_outreach(s, "P1", NOON)
        b = await add_outreach(s, "P2", NOON)
    sender = FakeSender(sm)
    await dispatcher(sm, sender).run_once()
    async with sm() as s:
        got = await s.get(Outreach, a.id)
    assert (got.state, got.reason, got.due_at) == ("deferred", "open_dialog", NOON + timedelta(hours=1))  # type: ignore[union-attr]
    assert sender.sends == [("P2", [b.id])]


async def test_failed_send_records_the_error_code(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm)
    async with sm.begin() as s:
        await add_outreach(s, "P1", NOON)
    registry = CollectorRegistry()
    summary = await dispatcher(sm, FakeSender(sm, fail="21610"), registry=registry).run_once()
    assert summary.failed == 1
    assert [(st, why) for _, st, why in await states(sm)] == [("failed", "21610")]
    assert registry.get_sample_value("midbot_outreach_failed_total", {"reason": "21610"}) == 1


async def test_unknown_outcome_is_reconciled_not_resent(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm)
    async with sm.begin() as s:
        row = await add_outreach(s, "P1", NOON)
    sender = FakeSender(sm, unknown=True)
    summary = await dispatcher(sm, sender).run_once()
    assert summary.unknown == 1 and await states(sm) == [(row.id, "sending", "")]
    # Same time: the lease still holds, nobody touches it.
    assert (await dispatcher(sm, sender, owner="d2").run_once()).claimed == 0
    # The provider did take it after all; after the lease expires another dispatcher reconciles.
    async with sm() as s:
        message_id = (await s.get(Outreach, row.id)).message_id  # type: ignore[union-attr]
    sender.provider.add(message_id)  # type: ignore[arg-type]
    sender.unknown = False
    summary = await dispatcher(sm, sender, NOON + timedelta(minutes=5), owner="d2").run_once()
    assert summary.reconciled == 1 and len(sender.sends) == 1 and sender.reconciles == [("P1", [row.id])]
    assert await states(sm) == [(row.id, "sent", "")]


async def test_a_crash_before_the_provider_call_is_resent_once(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm, patients=2)
    async with sm.begin() as s:
        # Left by a dead dispatcher: one row sending without a message, one claimed; both leases expired.
        a = await add_outreach(
            s,
            "P1",
            NOON - timedelta(hours=1),
            state="sending",
            lease_owner="dead",
            lease_expires_at=NOON - timedelta(minutes=1),
            attempts=1,
        )
        b = await add_outreach(
            s,
            "P2",
            NOON - timedelta(hours=1),
            state="claimed",
            lease_owner="dead",
            lease_expires_at=NOON - timedelta(minutes=1),
        )
    sender = FakeSender(sm)
    summary = await dispatcher(sm, sender).run_once()
    assert sender.reconciles == [("P1", [a.id])]
    assert sorted(sender.sends) == [("P1", [a.id]), ("P2", [b.id])]
    assert summary.sent == 2 and [st for _, st, _ in await states(sm)] == ["sent", "sent"]
    async with sm() as s:
        assert (await s.get(Outreach, a.id)).attempts == 2  # type: ignore[union-attr]


async def test_the_rate_limit_paces_texts_per_sender(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm, patients=3, send_rate=2.0)
    fake_time = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        fake_time[0] += seconds

    limiter = RateLimiter(monotonic=lambda: fake_time[0], sleep=sleep)
    async with sm.begin() as s:
        for i in (1, 2, 3):
            await add_outreach(s, f"P{i}", NOON)
    limiter.bucket("+15005550006", 2.0)._tokens = 1  # one token left in the bucket
    sender = FakeSender(sm)
    summary = await dispatcher(sm, sender, rate_limiter=limiter).run_once()
    assert summary.sent == 3
    assert waits == [pytest.approx(0.5), pytest.approx(0.5)]  # 2 a second: half a second per extra text


async def test_a_lost_lease_is_not_sent_by_the_loser(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm)
    async with sm.begin() as s:
        row = await add_outreach(s, "P1", NOON)
    d1 = dispatcher(sm, FakeSender(sm))
    rows = await d1._claim(NOON)
    assert [r.id for r in rows] == [row.id]
    # d1 stalls past its lease; d2 takes the row over and sends it.
    sender2 = FakeSender(sm)
    later = NOON + timedelta(minutes=3)
    assert (await dispatcher(sm, sender2, later, owner="d2").run_once()).sent == 1
    sender1 = FakeSender(sm)
    d1._sender = sender1
    from scheduler.dispatcher import DispatchSummary

    await d1._process_batch(rows, NOON, DispatchSummary())
    assert sender1.sends == [] and len(sender2.sends) == 1
    assert await states(sm) == [(row.id, "sent", "")]


async def test_deferred_rows_past_their_deadline_expire(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm)
    async with sm.begin() as s:
        await add_outreach(s, "P1", utc(2026, 11, 24, 2), hours=12)  # due 20:00 Mon, deadline 08:00 Tue
    await dispatcher(sm, FakeSender(sm), utc(2026, 11, 24, 3)).run_once()  # 21:00 -> deferred to 09:00
    assert [(st, why) for _, st, why in await states(sm)] == [("deferred", "quiet_hours")]
    await dispatcher(sm, FakeSender(sm), utc(2026, 11, 24, 15)).run_once()
    assert [(st, why) for _, st, why in await states(sm)] == [("expired", "deadline")]


async def test_due_count_and_drain(sm: async_sessionmaker[AsyncSession]) -> None:
    await world(sm)
    async with sm.begin() as s:
        await add_outreach(s, "P1", NOON)
    d = dispatcher(sm, FakeSender(sm))
    assert await d.due_count(NOON) == 1 and await d.due_count(NOON - timedelta(hours=1)) == 0
    await d.drain()
    assert (await d.run_once()).claimed == 0  # a drained dispatcher claims nothing more
    assert date(2026, 11, 24) == NOON.date()


async def test_one_sites_backlog_does_not_hold_back_another_sites_texts(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    async with sm.begin() as s:
        # A send rate that does not pace the test (order is what it checks, not the rate: 40 s at 1/s).
        await add_site(s, "BIG", phone="+15005550006", send_rate=1000.0)
        await add_site(s, "SMALL", phone="+15005550007", send_rate=1000.0)
        for i in range(40):
            await add_patient(s, f"B{i}", site_id="BIG", phone=f"+1312555{i:04d}")
            await add_rx(s, f"RXB{i}", f"B{i}", site_id="BIG")
            await add_outreach(s, f"B{i}", NOON - timedelta(hours=2), rx_id=f"RXB{i}")
        for i in range(3):
            await add_patient(s, f"S{i}", site_id="SMALL", phone=f"+1773555{i:04d}")
            await add_rx(s, f"RXS{i}", f"S{i}", site_id="SMALL")
            # Due later than every one of the big site's rows: first-in-first-out would send them last.
            await add_outreach(s, f"S{i}", NOON - timedelta(hours=1), rx_id=f"RXS{i}")
    sender = FakeSender(sm)
    summary = await dispatcher(sm, sender, batch_size=10).run_once()
    assert summary.sent == 43
    sent_order = [pid for pid, _ in sender.sends]
    assert {"S0", "S1", "S2"} <= set(sent_order[:10])  # in the first batch, beside the big site's oldest


async def test_the_send_rate_is_counted_in_segments(sm: async_sessionmaker[AsyncSession]) -> None:
    fake_time = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        fake_time[0] += seconds

    bucket = RateLimiter(monotonic=lambda: fake_time[0], sleep=sleep).bucket("+15005550006", 2.0)
    assert bucket.try_acquire() and bucket.try_acquire()
    bucket.debit(3)  # the second text was 4 segments long
    assert not bucket.try_acquire()
    await bucket.acquire()
    assert waits == [pytest.approx(2.0)]  # 3 segments of debt plus this text's one, at 2 a second
