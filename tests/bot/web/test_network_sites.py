"""A network admin works several sites and switches between them; everyone else sees one site only."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.db.models import AuditEvent, Site, Task
from bot.keys import SESSIONMAKER
from bot.staff.auth import SITE_COOKIE
from bot.staff.network import grant_site
from tests.bot.support import sign_in


async def _grant(client, email: str, site: str, revoke: bool = False) -> None:  # type: ignore[no-untyped-def]
    async with client.server.app[SESSIONMAKER].begin() as session:
        await grant_site(session, email=email, site_id=site, revoke=revoke)


async def test_a_network_admin_switches_sites_and_sees_only_the_one_they_work(web_client) -> None:
    client, seeded = web_client
    await _grant(client, "admin@north.example", "south")
    csrf = await sign_in(client, "admin")
    queues = await (await client.get("/queues")).text()
    options = re.findall(r'<option value="(north|south)"( selected)?>', queues)
    assert options == [("north", " selected"), ("south", "")]  # the switcher, at the own site
    assert (await client.get("/patients/pat-s1")).status == 404  # not until they switch to it

    switched = await client.post("/site", data={"csrf_token": csrf, "site": "south"}, allow_redirects=False)
    assert switched.status == 303 and switched.headers["Location"] == "/queues"
    page = await client.get("/patients/pat-s1")
    assert page.status == 200 and "Ana" in await page.text()
    assert (await client.get("/patients/pat-n1")).status == 404  # one site at a time
    queues = await (await client.get("/queues")).text()
    assert (
        f'data-id="{seeded.tasks["south"]}"' in queues and f'data-id="{seeded.tasks["refill"]}"' not in queues
    )
    assert '<option value="south" selected>' in queues

    # Working there: they claim a south task and their name shows on it.
    claim = await client.post(
        f"/tasks/{seeded.tasks['south']}/claim", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert claim.status == 303
    assert "claimed by Admin" in await (await client.get(f"/tasks/{seeded.tasks['south']}")).text()
    async with client.server.app[SESSIONMAKER]() as session:
        task = await session.get(Task, seeded.tasks["south"])
        moves = list(await session.scalars(select(AuditEvent).where(AuditEvent.action.like("staff.site_%"))))
    assert task is not None and task.assignee_id == seeded.users["admin"] and task.status == "claimed"
    assert {(e.site_id, e.action) for e in moves} == {
        ("north", "staff.site_left"),
        ("south", "staff.site_entered"),
    }

    back = await client.post("/site", data={"csrf_token": csrf, "site": "north"}, allow_redirects=False)
    assert back.status == 303
    assert (await client.get("/patients/pat-n1")).status == 200
    # Revoked: the chosen site falls back to their own on the next request.
    await client.post("/site", data={"csrf_token": csrf, "site": "south"}, allow_redirects=False)
    await _grant(client, "admin@north.example", "south", revoke=True)
    assert (await client.get("/patients/pat-s1")).status == 404
    assert (await client.get("/patients/pat-n1")).status == 200


async def test_a_single_site_user_cannot_switch_or_forge_the_site(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    queues = await (await client.get("/queues")).text()
    assert 'id="site-switch"' not in queues and 'id="site-name">North Oncology<' in queues
    refused = await client.post("/site", data={"csrf_token": csrf, "site": "south"})
    assert refused.status == 404
    no_csrf = await client.post("/site", data={"site": "south"})
    assert no_csrf.status == 403
    client.session.cookie_jar.update_cookies({SITE_COOKIE: "south"})  # a forged choice is ignored
    assert (await client.get("/patients/pat-s1")).status == 404
    assert (await client.get(f"/tasks/{seeded.tasks['south']}")).status == 404
    assert (await client.get("/patients/pat-n1")).status == 200
    async with client.server.app[SESSIONMAKER]() as session:
        south = await session.get(Site, "south")
    assert south is not None and "network_staff" not in (south.settings or {})
