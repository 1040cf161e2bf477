"""Every query and path parameter of the REST API is read through its pydantic model: a bad one is a 400 naming it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.bot.support import Seeded, bearer

HUGE = "10000000000000000000000000000000"
BAD = [
    # The issue's own: an OFFSET SQLite cannot hold, a negative page, not a number, a digit int() refuses.
    ("/api/v1/tasks", f"page={HUGE}", "page"),
    ("/api/v1/tasks", "page=-1", "page"),
    ("/api/v1/tasks", "page=abc", "page"),
    ("/api/v1/signals", "since=²", "since"),
    ("/api/v1/tasks", "page=0", "page"),
    ("/api/v1/tasks", "page=1.5", "page"),
    ("/api/v1/tasks", "page=²", "page"),
    ("/api/v1/tasks", "page=1000001", "page"),
    ("/api/v1/tasks", "page=1&page=2", "page"),
    ("/api/v1/tasks", "page_size=0", "page_size"),
    ("/api/v1/tasks", "page_size=201", "page_size"),
    ("/api/v1/tasks", "queue=nowhere", "queue"),
    ("/api/v1/tasks", "status=maybe", "status"),
    ("/api/v1/tasks", "priority=5", "priority"),
    ("/api/v1/tasks", "priority=x", "priority"),
    ("/api/v1/tasks", "unassigned=perhaps", "unassigned"),
    ("/api/v1/signals", f"page={HUGE}", "page"),
    ("/api/v1/signals", "page=-1", "page"),
    ("/api/v1/signals", "page_size=1001", "page_size"),
    ("/api/v1/signals", "since=99999999999999999999", "since"),
    ("/api/v1/signals", "since=2147483648", "since"),
    ("/api/v1/signals", "since=tomorrow", "since"),
    ("/api/v1/signals", "since=0001-01-01T00:00:00%2B14:00", "since"),
    ("/api/v1/audit", f"page={HUGE}", "page"),
    ("/api/v1/audit", "page=abc", "page"),
    ("/api/v1/audit", "since=²", "since"),
    ("/api/v1/audit", "since=12", "since"),
    ("/api/v1/audit", "action=%00", "action"),
    ("/api/v1/audit", "action=" + "a" * 101, "action"),
    ("/api/v1/patients/pat-n1/messages", f"page={HUGE}", "page"),
    ("/api/v1/patients/pat-n1/messages", "page=-1", "page"),
    ("/api/v1/patients/pat-n1/messages", "page_size=501", "page_size"),
    ("/api/v1/patients", "q=", "q"),
    ("/api/v1/patients", "q=%00x", "q"),
    ("/api/v1/patients", "q=" + "a" * 101, "q"),
    ("/api/v1/metrics", "month=2026-13", "month"),
    ("/api/v1/metrics", "month=²⁰²⁶-11", "month"),
    ("/api/v1/tasks/²", "", "task_id"),
    ("/api/v1/tasks/0", "", "task_id"),
    ("/api/v1/tasks/2147483648", "", "task_id"),
    ("/api/v1/tasks/abc/claim", "", "task_id"),
    ("/api/v1/patients/%00/messages", "", "patient_id"),
    ("/api/v1/patients/" + "p" * 65, "", "patient_id"),
]


@pytest.mark.parametrize(("path", "query", "field"), BAD)
async def test_a_bad_parameter_is_a_400_naming_it(
    api: tuple[TestClient, Seeded], path: str, query: str, field: str
) -> None:
    client, seeded = api
    url = f"{path}?{query}" if query else path
    method = client.post if path.endswith("/claim") else client.get
    response = await method(url, headers=bearer(seeded))
    assert response.status == 400, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["field"] == field and body["error"].startswith(field), body


@pytest.mark.parametrize(
    ("url", "total"),
    [
        ("/api/v1/signals?since=2026-11-24T15:00:00Z", None),
        ("/api/v1/signals?since=2026-11-24T09:00:00 06:00", None),  # a "+" sent unencoded
        ("/api/v1/signals?since=0&page=1000000&page_size=1000", None),
        ("/api/v1/signals?since=", None),  # blank is absent
        ("/api/v1/tasks?queue=&status=all&priority=1&unassigned=true&page_size=200", 1),
        ("/api/v1/tasks?status=all&foo=bar", 3),  # a parameter of no use here is let be
        ("/api/v1/audit?since=2026-11-24&action=task.open", 3),
        ("/api/v1/patients/pat-n1/messages?page=2&page_size=500", 1),
        ("/api/v1/metrics?month=2026-10&site=north", None),
    ],
)
async def test_good_parameters_are_read(api: tuple[TestClient, Seeded], url: str, total: int | None) -> None:
    client, seeded = api
    response = await client.get(url, headers=bearer(seeded))
    assert response.status == 200, await response.text()
    body = await response.json()
    if total is not None:
        assert body["total"] == total, body


async def test_since_reads_a_time_or_an_id(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    first = await (await client.get("/api/v1/audit?since=2026-11-24T14:00:00Z", headers=bearer(seeded))).json()
    later = await (await client.get("/api/v1/audit?since=2026-11-24T16:00:00Z", headers=bearer(seeded))).json()
    assert first["total"] >= 3 and later["total"] < first["total"]
    everything = await (await client.get("/api/v1/signals?since=0", headers=bearer(seeded))).json()
    after = await (await client.get("/api/v1/signals?since=2147483647", headers=bearer(seeded))).json()
    assert everything["total"] == after["total"] == 0  # the seed records no signal; the ids are read


async def test_unknown_paths_and_methods_under_the_api_are_json(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    missing = await client.get("/api/v1/nothing-here", headers=bearer(seeded))
    assert missing.status == 404 and (await missing.json())["field"] == "path"
    wrong = await client.delete("/api/v1/tasks", headers=bearer(seeded))
    assert wrong.status == 405 and (await wrong.json())["field"] == "method"
    assert "GET" in wrong.headers["Allow"]
    page = await client.get("/no-such-page")
    assert page.status == 404 and page.content_type != "application/json"  # the pages keep their own


async def test_a_body_over_its_length_is_refused_as_sent(api: tuple[TestClient, Seeded]) -> None:
    # schemathesis found it: 2001 characters, two of them white space, passed as 1999 once stripped.
    client, seeded = api
    url = f"/api/v1/tasks/{seeded.tasks['refill']}/call"
    response = await client.post(url, json={"note": "\x0b" + "*" * 1999 + "\x1b"}, headers=bearer(seeded))
    assert response.status == 400 and (await response.json())["field"] == "note"
    kept = await client.post(url, json={"note": "  Left a voicemail  "}, headers=bearer(seeded))
    assert kept.status == 200
