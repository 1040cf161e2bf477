"""Issue 12: a task from a number not on file, or a picture, shows staff the text, the (masked, revealable)
number and the picture — through the real app, its sign-in and its audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select

from bot.clock import FixedClock
from bot.db.models import AuditEvent, Message
from bot.keys import SESSIONMAKER
from bot.settings import Settings
from tests.bot.support import Seeded, csrf_of, sign_in
from tests.e2e.conftest import listening_socket
from tests.store import open_task

STRANGER = "+13125550999"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    """The test settings, with the provider's API on 127.0.0.1 (media is fetched only from its hosts)."""
    return Settings(  # type: ignore[call-arg]
        database_url=sqlite_url,
        _env_file=None,
        public_base_url="http://127.0.0.1:8080",
        twilio_api_base_url="http://127.0.0.1:9",
        run_dispatcher=False,
        log_format="text",
    )


@pytest.fixture
async def media_host() -> AsyncIterator[str]:
    """Stands in for the provider's media host (same host as the configured Twilio API: 127.0.0.1)."""

    async def picture(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/media/{name}", picture)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listening_socket()
    port = int(sock.getsockname()[1])
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _sender_task(
    client: TestClient, clock: FixedClock, media: list[str], site: str = "north"
) -> tuple[int, int]:
    async with client.server.app[SESSIONMAKER].begin() as session:
        message_id = (
            await session.execute(
                insert(Message).returning(Message.id),
                {
                    "direction": "in",
                    "kind": "inbound",
                    "provider_sid": f"SM{len(media)}{site}".ljust(34, "0"),
                    "from_number": STRANGER,
                    "to_number": "+13125550100",
                    "body": "who is this? my mom got a text",
                    "status": "received",
                    "site_id": site,
                    "media": media,
                    "num_media": len(media),
                    "created_at": clock.now(),
                    "processed_at": clock.now(),
                },  # fmt: skip
            )
        ).scalar_one()
        task = await open_task(session, site_id=site, queue="general", kind="unknown_sender",
                               title="Text from a number not on file", now=clock.now(),
                               source_message_id=message_id)  # fmt: skip
    return task.id, message_id


async def test_unknown_sender_task_shows_the_text_the_masked_number_and_reveals_it(
    web_client: tuple[TestClient, Seeded], clock: FixedClock, media_host: str
) -> None:
    client, _seeded = web_client
    await sign_in(client, "pharmacist")
    task_id, message_id = await _sender_task(client, clock, [f"{media_host}/media/p1.png"])
    page = await client.get(f"/tasks/{task_id}")
    html = await page.text()
    assert page.status == 200 and "who is this? my mom got a text" in html
    assert STRANGER not in html and "0999" in html and "Show number" in html
    shown = await client.post(f"/tasks/{task_id}/show-number", data={"csrf_token": csrf_of(html)})
    assert shown.status == 200 and f'href="tel:{STRANGER}"' in await shown.text()
    async with client.server.app[SESSIONMAKER]() as session:
        actions = list(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"task:{task_id}"))
        )
    assert "phone_revealed" in actions
    # The picture, through midbot (signed in, audited), not hot-linked to the provider.
    assert f"/messages/{message_id}/media/0" in html and media_host not in html
    picture = await client.get(f"/messages/{message_id}/media/0")
    assert picture.status == 200 and picture.content_type == "image/png" and await picture.read() == PNG


async def test_media_of_another_site_or_an_outside_host_is_not_served(
    web_client: tuple[TestClient, Seeded], clock: FixedClock, media_host: str
) -> None:
    client, _seeded = web_client
    await sign_in(client, "pharmacist")
    _task, other_site = await _sender_task(client, clock, [f"{media_host}/media/p.png"], site="south")
    assert (await client.get(f"/messages/{other_site}/media/0")).status == 404
    _task, outside = await _sender_task(client, clock, ["http://example.org/evil.png"])
    assert (await client.get(f"/messages/{outside}/media/0")).status == 404
    assert (await client.get(f"/messages/{outside}/media/7")).status == 404
