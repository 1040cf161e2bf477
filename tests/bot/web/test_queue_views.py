"""Queues: saved views (filters remembered per user), bulk assign/resolve and assigning from the task page."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.db.models import SavedView, Task
from bot.keys import SESSIONMAKER
from tests.bot.support import sign_in


def _views(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<a href="/queues\??([^"]*)" class="view-link"[^>]*>([^<]*)</a>', html)


async def test_saved_views_are_the_users_own_and_hold_only_filters(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    page = await (await client.get("/queues?queue=refill&overdue=1&done=claim")).text()
    query = re.search(r'name="query" value="([^"]*)"', page)
    assert query and query.group(1).replace("&amp;", "&") == "queue=refill&overdue=1"  # done= is not a filter
    saved = await client.post("/queues/views", data={"csrf_token": csrf, "name": "  My   refills ",
                                                     "query": "queue=refill&overdue=1&evil=1"}, allow_redirects=False)  # fmt: skip
    assert saved.status == 303 and saved.headers["Location"] == "/queues?queue=refill&overdue=1&done=view"
    html = await (await client.get("/queues?queue=refill&overdue=1")).text()
    assert [(q.replace("&amp;", "&"), n) for q, n in _views(html)] == [
        ("queue=refill&overdue=1", "My refills")
    ]
    assert 'aria-current="page">My refills<' in html  # the view being looked at
    # The same name replaces the view; a bad one is refused with the reason.
    await client.post("/queues/views", data={"csrf_token": csrf, "name": "My refills", "query": "mine=1"})
    assert [q for q, _n in _views(await (await client.get("/queues")).text())] == ["mine=1"]
    for name in ("", "x" * 61):
        bad = await client.post("/queues/views", data={"csrf_token": csrf, "name": name, "query": ""})
        assert bad.status == 400 and "name" in await bad.text()

    async with client.server.app[SESSIONMAKER]() as session:
        view = await session.scalar(select(SavedView))
    assert view is not None and view.user_id == seeded.users["pharmacist"]
    client.session.cookie_jar.clear()
    tech = await sign_in(client, "technician")
    assert _views(await (await client.get("/queues")).text()) == []  # another user's views are not theirs
    other = await client.post(f"/queues/views/{view.id}/delete", data={"csrf_token": tech})
    assert other.status == 404
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, "pharmacist")
    gone = await client.post(
        f"/queues/views/{view.id}/delete", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert gone.status == 303 and _views(await (await client.get("/queues")).text()) == []


async def test_bulk_assign_and_resolve_and_assign_from_the_task_page(web_client) -> None:
    client, seeded = web_client
    csrf = await sign_in(client, "admin")
    urgent, refill = seeded.tasks["urgent"], seeded.tasks["refill"]
    html = await (await client.get(f"/tasks/{refill}")).text()
    team = re.findall(
        r'<option value="(\d+)"[^>]*>([^<]+) \((\w[\w ]*)\)</option>', html.split('id="assignee"')[1]
    )
    assert {name for _id, name, _role in team} >= {
        "Pharmacist",
        "Technician",
    } and "Navigator" not in html.split('id="assignee"')[1].split("</select>")[0]
    one = await client.post(f"/tasks/{refill}/assign", data={"csrf_token": csrf, "assignee": str(seeded.users["technician"])},
                            allow_redirects=False)  # fmt: skip
    assert one.status == 303 and one.headers["Location"] == f"/tasks/{refill}?done=assign"
    wrong = await client.post(
        f"/tasks/{refill}/assign", data={"csrf_token": csrf, "assignee": str(seeded.users["navigator"])}
    )
    assert wrong.status == 400 and "does not work this queue" in await wrong.text()

    bulk = await client.post("/queues/bulk", allow_redirects=False, data=[
        ("csrf_token", csrf), ("action", "assign"), ("assignee", str(seeded.users["pharmacist"])),
        ("task", str(urgent)), ("task", str(refill)), ("back", "status=current")])  # fmt: skip
    assert bulk.status == 303 and bulk.headers["Location"] == "/queues?status=current&done=bulk"
    async with client.server.app[SESSIONMAKER]() as session:
        tasks = {t.id: t for t in await session.scalars(select(Task).where(Task.id.in_([urgent, refill])))}
    assert {t.assignee_id for t in tasks.values()} == {seeded.users["pharmacist"]}
    resolve = await client.post("/queues/bulk", allow_redirects=False, data=[
        ("csrf_token", csrf), ("action", "resolve"), ("outcome", "duplicate"), ("task", str(refill))])  # fmt: skip
    assert resolve.status == 303
    async with client.server.app[SESSIONMAKER]() as session:
        done = await session.get(Task, refill)
    assert done is not None and (done.status, done.outcome) == ("resolved", "duplicate")
