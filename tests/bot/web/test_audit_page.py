"""The audit page for people: names not ``user:1``, failed sign-ins, filters and the site's local time."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.db import audit
from bot.db.unit import in_session
from bot.keys import SESSIONMAKER
from tests.bot.support import email, sign_in


def _rows(html: str) -> list[tuple[str, str, str]]:
    """(when, who, what) of every event row."""
    return [
        (when, who, re.sub(r"<[^>]+>", "", what))
        for when, who, what in re.findall(
            r'<td class="when">([^<]*)</td>\s*<td class="who">([^<]*)</td>\s*<td class="what">(.*?)</td>',
            html,
        )
    ]


async def test_failed_sign_ins_names_filters_and_local_time(web_client, clock) -> None:
    client, seeded = web_client
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token
    failed = await client.post("/login", data={"email": email("pharmacist"), "password": "not it at all",
                                               "csrf_token": token.group(1)})  # fmt: skip
    assert failed.status == 401
    await sign_in(client, "pharmacist")
    await client.get("/patients/pat-n1")
    async with client.server.app[SESSIONMAKER].begin() as session:  # an event of last week, 23:30 in Chicago
        await in_session(session, audit.record, actor="system", action="task.escalate", site_id="north",
                         target="task:1", at=datetime(2026, 11, 18, 5, 30, tzinfo=UTC))  # fmt: skip
    client.session.cookie_jar.clear()
    await sign_in(client, "admin")

    html = await (await client.get("/audit?action=staff.login_failed")).text()
    rows = _rows(html)
    assert [(who, what) for _when, who, what in rows] == [("Pharmacist", "Sign-in failed")]
    assert "wrong password, from 127.0.0.1" in html
    assert rows[0][0] == "Tue 24 Nov 2026 09:00:00 CST"  # the app clock (15:00 UTC) in the site's zone
    assert "(America/Chicago, CST)" in html and 'id="failed-sign-ins"' in html

    pharmacist = f"user:{seeded.users['pharmacist']}"
    mine = _rows(await (await client.get(f"/audit?actor={pharmacist}")).text())
    assert mine and {who for _w, who, _what in mine} == {"Pharmacist"}
    assert "Opened a patient's record" in {what.replace("&#39;", "'") for _w, _who, what in mine}
    patient = _rows(await (await client.get("/audit?patient=pat-n1")).text())
    assert patient and all(what != "Signed in" for _w, _who, what in patient)
    # Days are the site's: 23:30 on the 17th in Chicago is the 18th in UTC, and belongs to the 17th here.
    day = _rows(await (await client.get("/audit?from=2026-11-17&to=2026-11-17")).text())
    assert day == [("Tue 17 Nov 2026 23:30:00 CST", "midbot (automatic)", "Task escalated past its SLA")]
    assert _rows(await (await client.get("/audit?from=2026-11-18&to=2026-11-18")).text()) == []

    for query, field in (
        ("from=17/11/2026", "from"),
        ("to=yesterday", "to"),
        ("from=2026-11-20&to=2026-11-19", "to"),
    ):
        bad = await client.get(f"/audit?{query}")
        assert bad.status == 400 and field in await bad.text(), query
    export = await client.get(f"/audit.csv?actor={pharmacist}&action=patient.view")
    lines = (await export.text()).splitlines()
    assert len(lines) >= 2 and all(f",{pharmacist}," in line for line in lines[1:])
