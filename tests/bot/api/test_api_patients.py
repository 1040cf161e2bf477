"""DESIGN "Patients for staff" through the real app: search by name, id or last-4 digits, the audited phone
reveal, the patient page, bulk and assign on the queues; another site's patient is a 404 everywhere."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import AuditEvent, Task
from bot.keys import SESSIONMAKER
from tests.bot.support import PATIENT_PHONE, bearer, sign_in


async def _audit_actions(client, patient_id: str | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    async with client.server.app[SESSIONMAKER]() as session:
        query = select(AuditEvent.action).order_by(AuditEvent.id)
        if patient_id is not None:
            query = query.where(AuditEvent.patient_id == patient_id)
        return list(await session.scalars(query))


async def test_search_finds_by_last_name_id_and_last_four_digits_of_the_own_site_only(api) -> None:
    client, seeded = api
    for q, expected in (("lopez", ["pat-n1"]), ("Maria Lo", ["pat-n1"]), ("1234", ["pat-n1"]),
                        ("pat-n2", ["pat-n2"]), ("9876", ["pat-n2"]), ("Ruiz", []), ("4321", []),
                        ("%", []), ("_", [])):  # fmt: skip
        response = await client.get("/api/v1/patients", params={"q": q}, headers=bearer(seeded))
        assert response.status == 200, q
        items = (await response.json())["items"]
        assert [i["id"] for i in items] == expected, q
        assert all("phone" not in i for i in items)  # the number stays masked in a search
    south = await client.get("/api/v1/patients", params={"q": "Ruiz"}, headers=bearer(seeded, "south"))
    assert [i["id"] for i in (await south.json())["items"]] == ["pat-s1"]
    found = (await (await client.get("/api/v1/patients?q=1234", headers=bearer(seeded))).json())["items"][0]
    assert found == {"id": "pat-n1", "first_name": "Maria", "last_name": "Lopez", "birth_date": "1951-03-14",
                     "phone_last4": "1234", "language": "es", "opted_out": False}  # fmt: skip
    for params, field in (({}, "q"), ({"q": "  "}, "q"), ({"q": "x" * 101}, "q")):
        bad = await client.get("/api/v1/patients", params=params, headers=bearer(seeded))
        assert bad.status == 400 and (await bad.json())["field"] == field
    assert "patient.search" in await _audit_actions(client)
    assert "searchPatients" in await (await client.get("/api/v1/openapi.json")).text()


async def test_phone_reveal_answers_the_number_and_is_audited_and_another_sites_is_404(api) -> None:
    client, seeded = api
    response = await client.post("/api/v1/patients/pat-n1/phone", headers=bearer(seeded))
    assert response.status == 200 and await response.json() == {"phone": PATIENT_PHONE}
    assert (await _audit_actions(client, "pat-n1")).count("phone_revealed") == 1
    other = await client.post("/api/v1/patients/pat-s1/phone", headers=bearer(seeded))
    assert other.status == 404 and (await other.json())["error"]
    assert "phone_revealed" not in await _audit_actions(client, "pat-s1")
    csrf = await sign_in(client, "pharmacist")
    no_csrf = await client.post("/api/v1/patients/pat-n1/phone")
    assert no_csrf.status == 403  # a browser's POST must come from our page
    page_call = await client.post("/api/v1/patients/pat-n1/phone", headers={"X-CSRF-Token": csrf})
    assert page_call.status == 200


async def test_patient_page_shows_the_record_is_audited_and_reveals_with_tel(api) -> None:
    client, _seeded = api
    csrf = await sign_in(client, "pharmacist")
    page = await client.get("/patients/pat-n1")
    assert page.status == 200
    html = await page.text()
    assert "Maria Lopez" in html and "Capecitabine 500 mg" in html and "•••-•••-1234" in html
    assert PATIENT_PHONE not in html
    assert {"patient.view", "patient.messages"} <= set(await _audit_actions(client, "pat-n1"))
    revealed = await client.post("/patients/pat-n1/show-number", data={"csrf_token": csrf})
    assert revealed.status == 200
    assert f'href="tel:{PATIENT_PHONE}"' in await revealed.text()
    assert "phone_revealed" in await _audit_actions(client, "pat-n1")
    assert (await client.get("/patients/pat-s1")).status == 404
    assert (await client.post("/patients/pat-s1/show-number", data={"csrf_token": csrf})).status == 404
    search = await client.get("/patients", params={"q": "Lopez"})
    assert search.status == 200 and 'href="/patients/pat-n1"' in await search.text()
    bad = await client.get("/patients", params={"q": "x" * 101})
    assert bad.status == 400 and "at most 100" in await bad.text()


async def test_assign_to_a_colleague_and_bulk_resolve_from_the_queues(api) -> None:
    client, seeded = api
    csrf = await sign_in(client, "pharmacist")
    urgent, refill = seeded.tasks["urgent"], seeded.tasks["refill"]
    navigator = seeded.users["navigator"]
    wrong = await client.post("/queues/bulk", data={"csrf_token": csrf, "action": "assign", "task": str(refill),
                                                    "assignee": str(navigator)})  # fmt: skip
    assert wrong.status == 400 and "does not work this queue" in await wrong.text()
    assigned = await client.post(
        "/queues/bulk",
        data={
            "csrf_token": csrf,
            "action": "assign",
            "task": str(refill),
            "assignee": str(seeded.users["technician"]),
        },
        allow_redirects=False,
    )
    assert assigned.status == 303
    async with client.server.app[SESSIONMAKER]() as session:
        task = await session.get(Task, refill)
        assert task is not None and (task.status, task.assignee_id) == ("claimed", seeded.users["technician"])
    # The pharmacist now sees it claimed by a colleague: replying needs a takeover first.
    page = await (await client.get(f"/tasks/{refill}")).text()
    assert 'id="takeover"' in page and 'id="reply-body"' not in page
    taken = await client.post(f"/tasks/{refill}/takeover", data={"csrf_token": csrf}, allow_redirects=False)
    assert taken.status == 303
    assert 'id="reply-body"' in await (await client.get(f"/tasks/{refill}")).text()

    none = await client.post(
        "/queues/bulk", data={"csrf_token": csrf, "action": "resolve", "outcome": "duplicate"}
    )
    assert none.status == 400
    bulk = await client.post(
        "/queues/bulk",
        data=[("csrf_token", csrf), ("action", "resolve"), ("outcome", "no_action_needed"),
              ("task", str(urgent)), ("task", str(refill))],
        allow_redirects=False,
    )  # fmt: skip
    assert bulk.status == 303 and "done=bulk" in bulk.headers["Location"]
    async with client.server.app[SESSIONMAKER]() as session:
        statuses = {t.id: (t.status, t.outcome) for t in await session.scalars(select(Task))}
    assert statuses[urgent] == statuses[refill] == ("resolved", "no_action_needed")
    south = await client.post("/queues/bulk", data={"csrf_token": csrf, "action": "resolve", "outcome": "duplicate",
                                                    "task": str(seeded.tasks["south"])})  # fmt: skip
    assert south.status == 409 and f"no task {seeded.tasks['south']}" in await south.text()
    async with client.server.app[SESSIONMAKER]() as session:
        other = await session.get(Task, seeded.tasks["south"])
        assert other is not None and other.status == "open"  # another site's task is untouched
