"""Hostile or unusual input to the webhooks and the API, through the real app over HTTP (issue 13): a signed
repeated form field, forged signatures, non-UTF-8 bodies, over-size bodies and deeply nested JSON are each a
clear 4xx (JSON naming the field), never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import FixedClock
from bot.db.models import Message
from bot.keys import SETTINGS
from integrations.twilio.signature import sign
from tests.bot.support import Seeded, bearer
from tests.e2e.conftest import AUTH_TOKEN, running_stack

FORM = [("MessageSid", "SM" + "7" * 32), ("From", "+13125550142"), ("To", "+13125550100"), ("Body", "thanks"),
        ("NumMedia", "0")]  # fmt: skip
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def _params(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return dict(params)


def _signature(client: TestClient, pairs: list[tuple[str, str]], path: str = "/twilio/inbound") -> str:
    settings = client.server.app[SETTINGS]
    url = f"{settings.public_base_url}{path}"
    return sign(settings.twilio_auth_token.get_secret_value(), url, _params(pairs))


async def test_a_signed_repeated_field_is_accepted_and_a_forged_one_refused(tmp_path: Path) -> None:
    # The whole stack with the simulator on loopback: the stored text is answered, and not over the internet.
    async with running_stack(tmp_path, FixedClock(datetime(2026, 11, 24, 16, 0, tzinfo=UTC))) as stack:
        url = f"{stack.base_url}/twilio/inbound"

        async def post(pairs: list[tuple[str, str]], signed: list[tuple[str, str]]) -> int:
            headers = {**FORM_HEADERS, "X-Twilio-Signature": sign(AUTH_TOKEN, url, _params(signed))}
            async with stack.http.post(url, data=urlencode(pairs), headers=headers) as response:
                return response.status

        async def stored() -> int:
            return await stack.count(Message, Message.provider_sid == FORM[0][1])

        pairs = [*FORM, ("AddOns", "first"), ("AddOns", "second")]
        assert await post(pairs, [*FORM, ("AddOns", "second")]) == 403  # the old check: the last value alone
        assert await post([*pairs, ("AddOns", "third")], pairs) == 403  # a value added to a signed request
        assert await stored() == 0
        assert await post(pairs, pairs) == 200
        await stack.settle()
        assert await stored() == 1


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status", "/login"])
async def test_a_body_that_is_not_utf8_is_a_400_naming_body(
    api: tuple[TestClient, Seeded], path: str
) -> None:
    client, _seeded = api
    raw = b"MessageSid=SM1&MessageStatus=sent&From=%2B13125550142&Body=caf\xe9&email=a\xff"
    response = await client.post(path, data=raw, headers={**FORM_HEADERS, "X-Twilio-Signature": "x"})
    assert response.status == 400, await response.text()
    assert await response.json() == {"error": "the body is not valid UTF-8", "field": "body"}


async def test_percent_encoded_bytes_that_are_not_utf8_are_refused_not_500(
    api: tuple[TestClient, Seeded],
) -> None:
    client, _seeded = api
    pairs = [*FORM[:3], ("Body", "caf%E9")]
    raw = "&".join(f"{k}={v}" for k, v in pairs).replace("+", "%2B").encode()
    response = await client.post("/twilio/inbound", data=raw,
                                 headers={**FORM_HEADERS, "X-Twilio-Signature": _signature(client, FORM[:3])})  # fmt: skip
    assert response.status in (400, 403) and response.status != 500


async def test_a_huge_body_is_a_413_naming_body(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    huge = b"Body=" + b"x" * (9 * 1024 * 1024)
    for path, headers in (("/twilio/inbound", FORM_HEADERS), ("/api/v1/patients", bearer(seeded))):
        response = await client.post(path, data=huge, headers=headers)
        assert response.status == 413, path
        assert (await response.json())["field"] == "body"


@pytest.mark.parametrize("depth", [40, 100_000])
async def test_deeply_nested_json_is_a_400_naming_body(api: tuple[TestClient, Seeded], depth: int) -> None:
    client, seeded = api
    for path in ("/api/v1/patients", "/api/v1/fhir", f"/api/v1/tasks/{seeded.tasks['refill']}/reply"):
        nested = b"[" * depth + b"]" * depth
        response = await client.post(path, data=nested, headers=bearer(seeded))
        assert response.status == 400, (path, await response.text())
        body = await response.json()
        assert body == {"error": "the body is nested deeper than 32 levels", "field": "body"}
    wrapped = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"a": [[[[1]]]]}}]}
    assert (await client.post("/api/v1/fhir", json=wrapped, headers=bearer(seeded))).status != 500
