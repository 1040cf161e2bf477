"""GET /metrics serves the dispatcher's Prometheus metrics."""

from __future__ import annotations

from bot.app import create_app
from bot.settings import Settings


async def test_metrics_endpoint_exposes_outreach_counters(aiohttp_client, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert "midbot_outreach" in text and "# TYPE" in text
