"""REST API: patient records and threads (audited), signals and audit feeds, and the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FixedClock
from bot.db.models import AuditEvent, Signal
from bot.keys import SESSIONMAKER
from tests.bot.support import XSS, bearer, sign_in


async def audit_rows(client: TestClient, **where: str) -> list[AuditEvent]:
    async with client.server.app[SESSIONMAKER]() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for key, value in where.items():
            query = query.where(getattr(AuditEvent, key) == value)
        return list(await session.scalars(query))


async def test_every_patient_view_leaves_an_audit_row(api) -> None:
    client, seeded = api
    before = await audit_rows(client, patient_id="pat-n1", action="patient.view")
    record = await client.get("/api/v1/patients/pat-n1", headers=bearer(seeded))
    assert record.status == 200
    body = await record.json()
    assert body["first_name"] == "Maria" and body["language"] == "es" and body["detailed_consent"] is False
    (rx,) = body["prescriptions"]
    assert rx["drug"] == "Capecitabine 500 mg" and len(rx["fills"]) == 3
    assert rx["fills"][0]["copay"] == 25.0
    assert rx["run_out_on"] is not None and rx["days_since_run_out"] < 0  # supply left today
    assert 0 < rx["pdc"] <= 1

    thread = await client.get("/api/v1/patients/pat-n1/messages", headers=bearer(seeded))
    assert thread.status == 200
    messages = await thread.json()
    assert messages["total"] == 1 and messages["items"][0]["body"] == XSS

    views = await audit_rows(client, patient_id="pat-n1", action="patient.view")
    reads = await audit_rows(client, patient_id="pat-n1", action="patient.messages")
    assert len(views) == len(before) + 1 and len(reads) == 1
    assert views[-1].actor.startswith("token:") and views[-1].site_id == "north"

    # A user's view is audited under the user.
    await sign_in(client, "pharmacist")
    await client.get("/api/v1/patients/pat-n1")
    views = await audit_rows(client, patient_id="pat-n1", action="patient.view")
    assert views[-1].actor == f"user:{seeded.users['pharmacist']}"


async def test_the_task_page_is_audited_too(api) -> None:
    client, seeded = api
    await sign_in(client, "pharmacist")
    page = await client.get(f"/tasks/{seeded.tasks['refill']}")
    assert page.status == 200
    views = await audit_rows(client, patient_id="pat-n1", action="patient.view")
    assert [v.target for v in views] == [f"task:{seeded.tasks['refill']}"]
    assert views[0].actor == f"user:{seeded.users['pharmacist']}"


async def test_another_sites_patient_is_404_and_unaudited_under_its_id(api) -> None:
    client, seeded = api
    for url in ("/api/v1/patients/pat-s1", "/api/v1/patients/pat-s1/messages", "/api/v1/patients/nobody"):
        response = await client.get(url, headers=bearer(seeded))
        assert response.status == 404, url
        assert "error" in await response.json()
    rows = await audit_rows(client, patient_id="pat-s1")
    assert [r.action for r in rows] == ["task.open"]  # only the seeding; no read went through


async def test_signals_and_audit_are_for_clinic_admins_and_tokens(api, clock: FixedClock) -> None:
    client, seeded = api
    async with client.server.app[SESSIONMAKER].begin() as session:
        for n, site, patient in ((1, "north", "pat-n1"), (2, "north", "pat-n2"), (3, "south", "pat-s1")):
            session.add(
                Signal(patient_id=patient, site_id=site, kind="missed_dose", value={"doses": n}, source="patient",
                       occurred_at=clock.now(), created_at=clock.now() + timedelta(minutes=n))
            )  # fmt: skip
    signals = await client.get("/api/v1/signals", headers=bearer(seeded))
    assert signals.status == 200
    items = (await signals.json())["items"]
    assert [i["patient_id"] for i in items] == ["pat-n1", "pat-n2"]
    later = (clock.now() + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    since = await (await client.get(f"/api/v1/signals?since={later}", headers=bearer(seeded))).json()
    assert [i["patient_id"] for i in since["items"]] == ["pat-n2"]
    by_id = await (await client.get(f"/api/v1/signals?since={items[0]['id']}", headers=bearer(seeded))).json()
    assert [i["id"] for i in by_id["items"]] == [items[1]["id"]]
    bad = await client.get("/api/v1/signals?since=last-tuesday", headers=bearer(seeded))
    assert bad.status == 400 and (await bad.json())["field"] == "since"

    audit = await client.get("/api/v1/audit", headers=bearer(seeded))
    assert audit.status == 200
    trail = await audit.json()
    assert trail["total"] >= 3 and all(e["site_id"] == "north" for e in trail["items"])
    assert {"task.open", "signals.read"} <= {e["action"] for e in trail["items"]}

    csrf = await sign_in(client, "pharmacist")
    assert (await client.get("/api/v1/audit")).status == 403
    assert (await client.get("/api/v1/signals")).status == 403
    await client.post("/logout", data={"csrf_token": csrf})
    await sign_in(client, "admin")
    admin = await client.get(f"/api/v1/audit?since={clock.now().date().isoformat()}")
    assert admin.status == 200 and (await admin.json())["total"] > 0
