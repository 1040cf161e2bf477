"""REST API: tenant isolation (404 across sites), auth, CSRF, roles, pagination, validation, task actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.clock import FixedClock
from bot.db.models import AuditEvent, Task
from bot.keys import SESSIONMAKER
from bot.staff.tasks import OUTCOMES
from tests.bot.support import bearer, sign_in
from tests.store import open_task


async def test_a_token_sees_only_its_site_and_another_sites_task_is_404(api) -> None:
    client, seeded = api
    listing = await client.get("/api/v1/tasks", headers=bearer(seeded))
    assert listing.status == 200
    ids = {item["id"] for item in (await listing.json())["items"]}
    assert ids == {seeded.tasks["urgent"], seeded.tasks["refill"], seeded.tasks["financial"]}

    other = await client.get(f"/api/v1/tasks/{seeded.tasks['south']}", headers=bearer(seeded))
    assert other.status == 404
    assert (await other.json())["error"]
    claim = await client.post(f"/api/v1/tasks/{seeded.tasks['south']}/claim", headers=bearer(seeded))
    assert claim.status == 404

    own = await client.get(f"/api/v1/tasks/{seeded.tasks['south']}", headers=bearer(seeded, "south"))
    assert own.status == 200 and (await own.json())["site_id"] == "south"


async def test_a_signed_in_user_gets_404_for_another_sites_task_and_patient(api) -> None:
    client, seeded = api
    await sign_in(client, "pharmacist")
    task = await client.get(f"/api/v1/tasks/{seeded.tasks['south']}")
    assert task.status == 404
    patient = await client.get("/api/v1/patients/pat-s1")
    assert patient.status == 404
    messages = await client.get("/api/v1/patients/pat-s1/messages")
    assert messages.status == 404
    page = await client.get(f"/tasks/{seeded.tasks['south']}")
    assert page.status == 404


async def test_missing_or_bad_credentials_are_401(api) -> None:
    client, seeded = api
    none = await client.get("/api/v1/tasks")
    assert none.status == 401
    assert (await none.json())["field"] == "Authorization"
    assert none.headers["WWW-Authenticate"].startswith("Bearer")
    bad = await client.get("/api/v1/tasks", headers={"Authorization": "Bearer mbt_not-a-token"})
    assert bad.status == 401
    basic = await client.get("/api/v1/tasks", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status == 401


async def test_session_posts_need_the_csrf_header(api) -> None:
    client, seeded = api
    csrf = await sign_in(client, "pharmacist")
    url = f"/api/v1/tasks/{seeded.tasks['refill']}/claim"
    missing = await client.post(url)
    assert missing.status == 403
    assert (await missing.json())["field"] == "X-CSRF-Token"
    wrong = await client.post(url, headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status == 403
    ok = await client.post(url, headers={"X-CSRF-Token": csrf})
    assert ok.status == 200
    body = await ok.json()
    assert body["status"] == "claimed" and body["assignee_id"] is not None


async def test_pagination_walks_every_task_once(api, clock: FixedClock) -> None:
    client, seeded = api
    async with client.server.app[SESSIONMAKER].begin() as session:
        for n in range(7):
            await open_task(
                session, site_id="north", queue="general", kind="question", title=f"Q{n}", now=clock.now()
            )
    seen: list[int] = []
    url: str | None = "/api/v1/tasks?page_size=4"
    pages = 0
    while url:
        response = await client.get(url, headers=bearer(seeded))
        assert response.status == 200
        body = await response.json()
        assert body["page_size"] == 4 and body["total"] == 10
        assert len(body["items"]) <= 4
        seen.extend(item["id"] for item in body["items"])
        url = body["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 10
    # Most urgent first: the urgent clinical task leads the first page.
    assert seen[0] == seeded.tasks["urgent"]
    beyond = await (await client.get("/api/v1/tasks?page=9&page_size=4", headers=bearer(seeded))).json()
    assert beyond["items"] == [] and beyond["next"] is None
    filtered = await (await client.get("/api/v1/tasks?queue=general", headers=bearer(seeded))).json()
    assert filtered["total"] == 7 and {i["queue"] for i in filtered["items"]} == {"general"}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("resolve", {}, "outcome"),
        ("resolve", {"outcome": "fixed_it"}, "outcome"),
        ("resolve", {"outcome": "other"}, "note"),
        ("resolve", {"outcome": "other", "note": "   "}, "note"),
        ("resolve", {"outcome": "advice_given", "colour": "red"}, "colour"),
        ("snooze", {"until": "tomorrow"}, "until"),
        ("snooze", {"until": "2026-11-25T10:00:00"}, "until"),
        ("snooze", {"until": "2020-01-01T00:00:00Z"}, "until"),
        ("move", {"queue": "nowhere"}, "queue"),
        ("move", {"queue": "refill"}, "queue"),
        ("reply", {"body": ""}, "body"),
        ("reply", {"body": "x" * 1601}, "body"),
        ("call", {}, "note"),
    ],
)
async def test_validation_errors_name_the_field(api, path: str, payload: dict, field: str) -> None:
    client, seeded = api
    response = await client.post(
        f"/api/v1/tasks/{seeded.tasks['refill']}/{path}", json=payload, headers=bearer(seeded)
    )
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body["field"] == field
    assert field in body["error"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("queue=bogus", "queue"), ("status=maybe", "status"), ("page=0", "page"), ("page=two", "page"),
     ("page_size=1000", "page_size"), ("priority=9", "priority"), ("mine=1", "mine"), ("unassigned=perhaps", "unassigned")],
)  # fmt: skip
async def test_bad_list_parameters_name_the_field(api, query: str, field: str) -> None:
    client, seeded = api
    response = await client.get(f"/api/v1/tasks?{query}", headers=bearer(seeded))
    assert response.status == 400
    assert (await response.json())["field"] == field


async def test_a_body_that_is_not_json_is_a_clear_400(api) -> None:
    client, seeded = api
    response = await client.post(
        f"/api/v1/tasks/{seeded.tasks['refill']}/resolve", data=b"{not json", headers=bearer(seeded)
    )
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]
    not_a_number = await client.get("/api/v1/tasks/abc", headers=bearer(seeded))
    assert not_a_number.status == 400 and (await not_a_number.json())["field"] == "task_id"


async def test_claim_release_move_snooze_resolve(api, clock: FixedClock) -> None:
    client, seeded = api
    refill = seeded.tasks["refill"]
    csrf = await sign_in(client, "pharmacist")
    headers = {"X-CSRF-Token": csrf}
    claimed = await (await client.post(f"/api/v1/tasks/{refill}/claim", headers=headers)).json()
    assert claimed["status"] == "claimed"
    again = await client.post(f"/api/v1/tasks/{refill}/claim", headers=headers)
    assert again.status == 200  # claiming your own task again is a no-op
    taken = await client.post(f"/api/v1/tasks/{refill}/claim", headers=bearer(seeded))
    assert taken.status == 409
    released = await (await client.post(f"/api/v1/tasks/{refill}/release", headers=headers)).json()
    assert released["status"] == "open" and released["assignee_id"] is None

    until = (clock.now() + timedelta(hours=2)).isoformat()
    snoozed = await (
        await client.post(f"/api/v1/tasks/{refill}/snooze", json={"until": until}, headers=headers)
    ).json()
    assert snoozed["status"] == "snoozed"
    clock.advance(hours=3)
    woken = await (await client.get("/api/v1/tasks?status=open", headers=headers)).json()
    assert refill in {i["id"] for i in woken["items"]}

    call = await client.post(
        f"/api/v1/tasks/{refill}/call", json={"note": "Left a voicemail"}, headers=headers
    )
    assert call.status == 200
    moved = await (
        await client.post(f"/api/v1/tasks/{refill}/move", json={"queue": "general"}, headers=headers)
    ).json()
    assert moved["queue"] == "general" and moved["status"] == "open"
    resolved = await client.post(
        f"/api/v1/tasks/{refill}/resolve",
        json={"outcome": "other", "note": "Patient moved away"},
        headers=headers,
    )
    assert resolved.status == 200
    body = await resolved.json()
    assert (
        body["status"] == "resolved" and body["outcome"] == "other" and body["note"] == "Patient moved away"
    )
    twice = await client.post(
        f"/api/v1/tasks/{refill}/resolve", json={"outcome": "duplicate"}, headers=headers
    )
    assert twice.status == 409

    detail = await (await client.get(f"/api/v1/tasks/{refill}", headers=bearer(seeded))).json()
    kinds = [n["kind"] for n in detail["notes"]]
    assert kinds == ["claim", "release", "snooze", "call", "move", "resolve"]
    async with client.server.app[SESSIONMAKER]() as session:
        actions = set(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"task:{refill}"))
        )
    assert {"task.claim", "task.release", "task.snooze", "task.call", "task.move", "task.resolve"} <= actions


async def test_roles_guard_queues_and_urgent_resolution(api) -> None:
    client, seeded = api
    urgent = seeded.tasks["urgent"]
    csrf = await sign_in(client, "technician")
    refused = await client.post(
        f"/api/v1/tasks/{urgent}/resolve", json={"outcome": "advice_given"}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status == 403
    snooze = await client.post(
        f"/api/v1/tasks/{urgent}/snooze",
        json={"until": "2026-11-25T10:00:00Z"},
        headers={"X-CSRF-Token": csrf},
    )
    assert snooze.status == 409
    tech_list = await (await client.get("/api/v1/tasks")).json()
    assert seeded.tasks["financial"] not in {i["id"] for i in tech_list["items"]}

    await client.post("/logout", data={"csrf_token": csrf})
    csrf = await sign_in(client, "navigator")
    nav = await (await client.get("/api/v1/tasks")).json()
    assert {i["id"] for i in nav["items"]} == {seeded.tasks["financial"]}
    assert (await client.get(f"/api/v1/tasks/{urgent}")).status == 403
    assert (await (await client.get("/api/v1/tasks?queue=refill")).json())["field"] == "queue"

    await client.post("/logout", data={"csrf_token": csrf})
    csrf = await sign_in(client, "pharmacist")
    done = await client.post(
        f"/api/v1/tasks/{urgent}/resolve",
        json={"outcome": "referred_to_clinician"},
        headers={"X-CSRF-Token": csrf},
    )
    assert done.status == 200


async def test_outcome_codes_are_the_documented_list(api) -> None:
    client, _seeded = api
    doc = await (await client.get("/api/v1/openapi.json")).json()
    schema = doc["components"]["schemas"]["ResolveIn"]["properties"]["outcome"]
    assert tuple(schema["enum"]) == OUTCOMES


async def test_counts_do_not_leak_across_sites(api) -> None:
    client, seeded = api
    south = await (await client.get("/api/v1/tasks?status=all", headers=bearer(seeded, "south"))).json()
    assert south["total"] == 1
    async with client.server.app[SESSIONMAKER]() as session:
        assert await session.scalar(select(func.count(Task.id))) == 4
