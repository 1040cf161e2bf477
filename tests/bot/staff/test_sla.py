"""Task SLAs: due times by queue and business hours, and escalation of breached tasks (once, with a notice)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FixedClock
from bot.db.models import Patient, Site, StaffUser, Task, TaskNote
from bot.db.session import make_sessionmaker
from bot.db.sitecfg import SiteConfig
from bot.db.tasks import compute_due_by
from bot.jobs import JOBS
from bot.staff.escalation import escalate_overdue
from tests.store import open_task

CHICAGO = ZoneInfo("America/Chicago")
CFG = SiteConfig(site_id="s", name="S", phone="+13125550100", time_zone="America/Chicago")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO).astimezone(UTC)


@pytest.mark.parametrize(
    ("queue", "now", "due"),
    [
        ("urgent_clinical", local(2026, 11, 28, 23, 30), local(2026, 11, 29, 0, 30)),  # Saturday night too
        ("clinical", local(2026, 11, 24, 10, 0), local(2026, 11, 24, 17, 0)),  # Tuesday, same day
        ("clinical", local(2026, 11, 24, 7, 0), local(2026, 11, 24, 17, 0)),  # before opening
        ("clinical", local(2026, 11, 24, 18, 0), local(2026, 11, 25, 17, 0)),  # after hours: next day
        ("clinical", local(2026, 11, 27, 18, 0), local(2026, 11, 30, 17, 0)),  # Friday evening: Monday
        ("clinical", local(2026, 11, 28, 12, 0), local(2026, 11, 30, 17, 0)),  # Saturday: Monday
        ("clinical", local(2026, 3, 6, 18, 0), local(2026, 3, 9, 17, 0)),  # across the DST change
        ("refill", local(2026, 11, 24, 10, 0), local(2026, 11, 25, 10, 0)),
        ("refill", local(2026, 11, 27, 15, 0), local(2026, 11, 30, 15, 0)),  # lands on Saturday: Monday
        ("general", local(2026, 11, 24, 10, 0), local(2026, 11, 25, 10, 0)),
    ],
)
def test_due_by_follows_the_queue_and_business_days(queue: str, now: datetime, due: datetime) -> None:
    assert compute_due_by(CFG, queue, now) == due


def test_due_by_respects_site_settings() -> None:
    cfg = CFG.model_copy(
        update={
            "sla_hours": {"refill": 4.0},
            "closed_dates": (date(2026, 11, 26),),
            "business_hours": ("08:00", "16:30"),
        }
    )
    assert compute_due_by(cfg, "refill", local(2026, 11, 24, 10, 0)) == local(2026, 11, 24, 14, 0)
    # Thanksgiving is closed: Wednesday evening's clinical task is due Friday at closing.
    assert compute_due_by(cfg, "clinical", local(2026, 11, 25, 18, 0)) == local(2026, 11, 27, 16, 30)
    assert compute_due_by(cfg, "urgent_clinical", local(2026, 11, 24, 10, 0)) == local(2026, 11, 24, 11, 0)


@pytest.fixture
async def hook(aiohttp_server) -> tuple[str, list[dict], list[int]]:
    """An on-call webhook that records what it receives; answers with statuses[0] (default 200)."""
    received: list[dict] = []
    statuses: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=statuses[0] if statuses else 200)

    app = web.Application()
    app.router.add_post("/oncall", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/oncall")), received, statuses


async def test_breached_tasks_escalate_once_with_a_notice(
    engine: AsyncEngine, clock: FixedClock, hook
) -> None:
    url, received, _statuses = hook
    maker = make_sessionmaker(engine)
    now = clock.now()
    async with maker.begin() as session:
        session.add(
            Site(
                id="a",
                name="A",
                phone="+13125550100",
                time_zone="America/Chicago",
                settings={"oncall_webhook_url": url},
            )
        )
        session.add(Site(id="b", name="B", phone="+16125550100", time_zone="America/Chicago"))
        await session.flush()
        session.add(
            Patient(id="p1", site_id="a", first_name="Maria", last_name="Lopez", phone="+13125551234")
        )
        await session.flush()
        refill = await open_task(
            session,
            site_id="a",
            queue="refill",
            kind="refill_request",
            title="Refill",
            now=now,
            patient_id="p1",
        )
        urgent = await open_task(
            session,
            site_id="a",
            queue="urgent_clinical",
            kind="side_effect",
            title="Fever",
            now=now,
            patient_id="p1",
        )
        fresh = await open_task(
            session, site_id="a", queue="general", kind="question", title="Q", now=now + timedelta(hours=30)
        )
        done = await open_task(session, site_id="a", queue="general", kind="question", title="Done", now=now)
        done.status = "resolved"
        snoozed = await open_task(
            session, site_id="a", queue="refill", kind="refill_request", title="Later", now=now
        )
        snoozed.status, snoozed.snoozed_until = "snoozed", now + timedelta(days=5)
        other = await open_task(session, site_id="b", queue="financial", kind="cost", title="Cost", now=now)
    clock.advance(hours=26)  # past the 24 h and 1 h SLAs
    async with aiohttp.ClientSession() as http:
        count = await escalate_overdue(maker, http, clock.now(), default_webhook_url=url + "?site=default")
        assert count == 3
        assert await escalate_overdue(maker, http, clock.now(), default_webhook_url=url) == 0  # once per task

    async with maker() as session:
        tasks = {t.id: t for t in await session.scalars(select(Task))}
        notes = list(await session.scalars(select(TaskNote).where(TaskNote.kind == "escalated")))
    assert tasks[refill.id].priority == 2 and tasks[refill.id].escalated_at == clock.now()
    assert tasks[urgent.id].priority == 1  # the floor
    assert tasks[other.id].escalated_at is not None
    for untouched in (fresh, done, snoozed):
        assert tasks[untouched.id].escalated_at is None
    assert len(notes) == 3
    assert sorted(n["task_id"] for n in received) == sorted([refill.id, urgent.id, other.id])
    notice = next(n for n in received if n["task_id"] == refill.id)
    assert notice["queue"] == "refill" and notice["site_id"] == "a" and notice["age_minutes"] == 26 * 60
    assert "Maria" not in json.dumps(received) and "p1" not in json.dumps(received)  # ids of tasks only


async def test_a_failing_webhook_does_not_repeat_the_escalation(
    engine: AsyncEngine, clock: FixedClock, hook
) -> None:
    url, received, statuses = hook
    statuses.append(500)
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        session.add(Site(id="a", name="A", phone="+13125550100", time_zone="America/Chicago"))
        await session.flush()
        await open_task(
            session, site_id="a", queue="urgent_clinical", kind="side_effect", title="X", now=clock.now()
        )
    clock.advance(hours=2)
    async with aiohttp.ClientSession() as http:
        assert await escalate_overdue(maker, http, clock.now(), default_webhook_url=url) == 1
        assert await escalate_overdue(maker, http, clock.now(), default_webhook_url=url) == 0
    assert len(received) == 1


def test_the_escalation_job_runs_every_minute() -> None:
    assert JOBS["task-escalation"][1] == 60


async def test_the_task_service_on_both_databases(any_db_url: str, clock: FixedClock) -> None:
    from bot.db.migrate import upgrade
    from bot.db.session import make_engine
    from bot.staff.auth import Principal
    from bot.staff.tasks import TaskConflict, claim_task, list_tasks, queue_summary

    engine = make_engine(any_db_url)
    await upgrade(engine)
    maker = make_sessionmaker(engine)
    try:
        now = clock.now()
        async with maker.begin() as session:
            session.add(Site(id="a", name="A", phone="+13125550100", time_zone="America/Chicago"))
            session.add(Site(id="b", name="B", phone="+16125550100", time_zone="America/Chicago"))
            await session.flush()
            users = [
                StaffUser(site_id="a", email=f"{n}@a.example", role="pharmacist", password_hash="x")
                for n in "ab"
            ]
            session.add_all(users)
            await session.flush()
            # An old, escalated-looking refill: due long before the urgent one, yet listed after it.
            refill = await open_task(
                session,
                site_id="a",
                queue="refill",
                kind="r",
                title="R",
                now=now - timedelta(hours=30),
                priority=1,
            )
            urgent = await open_task(
                session, site_id="a", queue="urgent_clinical", kind="s", title="U", now=now
            )
            await open_task(session, site_id="b", queue="refill", kind="r", title="B", now=now)
        alice = Principal("user", users[0].id, "a", "pharmacist")
        bob = Principal("user", users[1].id, "a", "pharmacist")

        async def claim(who: Principal) -> str:
            async with maker.begin() as session:
                try:
                    await claim_task(session, who, refill.id, now=now)
                except TaskConflict:
                    return "conflict"
                return "won"

        outcomes = sorted(await asyncio.gather(claim(alice), claim(bob)))
        assert outcomes == ["conflict", "won"]

        clock.advance(hours=2)
        async with maker.begin() as session:
            summary = {s.queue: s for s in await queue_summary(session, alice, now=clock.now())}
            tasks, total = await list_tasks(session, alice, now=clock.now())
        assert summary["urgent_clinical"].breached == 1 and summary["refill"].count == 1
        assert summary["refill"].unassigned == 0 and summary["refill"].oldest_age_seconds == 32 * 3600
        assert total == 2 and [t.id for t in tasks] == [urgent.id, refill.id]  # urgent clinical first
        async with aiohttp.ClientSession() as http:
            assert await escalate_overdue(maker, http, clock.now()) == 2
    finally:
        await engine.dispose()
