"""The inbox: every recent conversation, the latest message per patient, newest first, escaped, audited."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.db.models import AuditEvent, Message
from bot.keys import SESSIONMAKER
from tests.bot.support import NORTH_PHONE, PATIENT_PHONE, SOUTH_PHONE, XSS, sign_in


def _message(patient: str, site: str, direction: str, body: str, at) -> Message:  # type: ignore[no-untyped-def]
    ours = NORTH_PHONE if site == "north" else SOUTH_PHONE
    theirs = PATIENT_PHONE
    return Message(direction=direction, kind="patient" if direction == "in" else "reply", patient_id=patient,
                   site_id=site, from_number=theirs if direction == "in" else ours,
                   to_number=ours if direction == "in" else theirs, body=body, status="received", created_at=at)  # fmt: skip


async def test_the_inbox_lists_the_latest_message_per_patient_newest_first(web_client, clock) -> None:
    client, _seeded = web_client
    now = clock.now()
    async with client.server.app[SESSIONMAKER].begin() as session:
        session.add_all(
            [
                _message("pat-n2", "north", "in", "Can I take it with food?", now - timedelta(hours=3)),
                _message("pat-n2", "north", "out", "Yes, with a meal is fine.", now - timedelta(hours=2)),
                _message("pat-s1", "south", "in", "South patient words", now - timedelta(minutes=5)),
                _message("pat-n2", "north", "in", "An old text", now - timedelta(days=40)),
            ]
        )
    await sign_in(client, "pharmacist")
    response = await client.get("/inbox")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    rows = re.findall(r'<tr class="conversation( waiting)?" data-patient="([^"]+)"', html)
    # Maria's seeded text (30 min ago) is newer than Robert's exchange; south's patient is not this site's.
    assert rows == [(" waiting", "pat-n1"), ("", "pat-n2")]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html  # her words, escaped
    assert "Yes, with a meal is fine." in html and "Can I take it with food?" not in html  # the latest only
    assert "South patient words" not in html and 'href="/patients/pat-n2"' in html
    opens = re.findall(r'href="/patients/(pat-n\d)#tasks-h">(\d) open<', html)
    assert opens == [("pat-n1", "2"), ("pat-n2", "1")]  # her urgent and refill tasks; his copay question
    waiting = await (await client.get("/inbox?waiting=1")).text()
    assert re.findall(r'data-patient="([^"]+)"', waiting) == ["pat-n1"]
    older = await (await client.get("/inbox?days=90")).text()
    assert re.findall(r'data-patient="([^"]+)"', older) == ["pat-n1", "pat-n2"]
    for bad, field in (("days=0", "days"), ("days=x", "days"), ("page=0", "page")):
        answer = await client.get(f"/inbox?{bad}")
        assert answer.status == 400 and field in await answer.text(), bad
    async with client.server.app[SESSIONMAKER]() as session:
        views = list(await session.scalars(select(AuditEvent).where(AuditEvent.action == "inbox.view")))
    assert len(views) == 3 and views[0].detail == {"rows": 2, "waiting": False}


async def test_the_inbox_query_runs_on_postgres(postgres_url: str, clock) -> None:
    from bot.db.migrate import upgrade
    from bot.db.session import make_engine, make_sessionmaker
    from bot.staff.auth import Principal
    from bot.staff.workspace import recent_conversations
    from tests.bot.support import seed

    engine = make_engine(postgres_url)
    await upgrade(engine)
    maker = make_sessionmaker(engine)
    seeded = await seed(maker, clock.now())
    async with maker.begin() as session:
        session.add(_message("pat-n2", "north", "out", "Yes, with a meal is fine.", clock.now()))
    principal = Principal("user", seeded.users["pharmacist"], "north", "pharmacist")
    async with maker.begin() as session:
        rows, total = await recent_conversations(session, principal, now=clock.now())
        waiting, _ = await recent_conversations(session, principal, now=clock.now(), waiting=True)
    await engine.dispose()
    assert [(r.patient_id, r.direction) for r in rows] == [("pat-n2", "out"), ("pat-n1", "in")] and total == 2
    assert [r.patient_id for r in waiting] == ["pat-n1"] and rows[1].said == XSS  # escaped by the page
