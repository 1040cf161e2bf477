"""The FHIR sink posts transaction Bundles a FHIR server accepts; a resend updates instead of duplicating."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import update

from bot.db.models import SinkCursor
from bot.settings import Settings
from integrations.dispensary.sinks import push_signals
from integrations.fhir.client import FhirClient, FhirRejected

from ..sinks.conftest import FakeSleep, add_signals, add_symptom_with_message


@dataclass
class FhirServer:
    """A tiny FHIR server: transaction Bundles with conditional PUTs, stored by (type, identifier)."""

    fail_first: int = 0
    reject: bool = False
    calls: int = 0
    bundles: list[Bundle] = field(default_factory=list)
    store: dict[tuple[str, str], dict] = field(default_factory=dict)
    created: int = 0
    updated: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        assert request.content_type == "application/fhir+json"
        if self.calls <= self.fail_first:
            return web.json_response({"resourceType": "OperationOutcome"}, status=503)
        if self.reject:
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid",
                                                                     "diagnostics": "Unknown patient"}]}  # fmt: skip
            return web.json_response(outcome, status=422)
        bundle = Bundle.model_validate_json(await request.text())  # must parse with fhir.resources
        assert bundle.type == "transaction"
        self.bundles.append(bundle)
        answers = []
        for entry in bundle.entry:
            assert entry.request.method == "PUT"
            rtype, _, query = entry.request.url.partition("?identifier=")
            key = (rtype, query)
            status = "200 OK" if key in self.store else "201 Created"
            self.updated += key in self.store
            self.created += key not in self.store
            self.store[key] = entry.resource.model_dump(mode="json", by_alias=True, exclude_none=True)
            answers.append({"response": {"status": status}})
        return web.json_response({"resourceType": "Bundle", "type": "transaction-response", "entry": answers})


async def _serve(aiohttp_server, server: FhirServer) -> str:
    app = web.Application()
    app.router.add_post("/fhir", server.handle)
    running = await aiohttp_server(app)
    return str(running.make_url("/fhir"))


async def test_bundle_reaches_the_server_and_a_resend_updates(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    server = FhirServer(fail_first=1)
    cfg = settings.model_copy(update={"fhir_base_url": await _serve(aiohttp_server, server)})
    refill_ids = await add_signals(maker, 2)
    signal_id, message_id, task_id = await add_symptom_with_message(maker)
    async with aiohttp.ClientSession() as http:
        report = await push_signals(maker, http, cfg, sink="fhir", sleep=fake_sleep)
        assert report.sent == 3 and report.attempts == 2 and fake_sleep.delays == [1.0]
        assert server.created == 5 and server.updated == 0  # 3 signals + the message + its task
        keys = set(server.store)
        assert keys == {
            ("Observation", f"urn:midbot:signal|{refill_ids[0]}"),
            ("Observation", f"urn:midbot:signal|{refill_ids[1]}"),
            ("Observation", f"urn:midbot:signal|{signal_id}"),
            ("Communication", f"urn:midbot:message|{message_id}"),
            ("Task", f"urn:midbot:task|{task_id}"),
        }
        symptom = server.store[("Observation", f"urn:midbot:signal|{signal_id}")]
        assert symptom["code"]["text"] == "diarrhea" and symptom["valueInteger"] == 3
        assert server.store[("Task", f"urn:midbot:task|{task_id}")]["priority"] == "stat"

        # Resend everything (cursor rewound, as after a crash before it was saved): same identifiers.
        async with maker.begin() as session:
            await session.execute(update(SinkCursor).values(last_signal_id=0))
        again = await push_signals(maker, http, cfg, sink="fhir", sleep=fake_sleep)
    assert again.sent == 3
    assert set(server.store) == keys and server.created == 5 and server.updated == 5
    first, second = server.bundles
    assert [e.fullUrl for e in first.entry] == [e.fullUrl for e in second.entry]


async def test_rejected_bundle_is_dead_lettered_with_the_servers_reason(
    aiohttp_server, maker, settings: Settings, fake_sleep: FakeSleep
) -> None:
    server = FhirServer(reject=True)
    cfg = settings.model_copy(update={"fhir_base_url": await _serve(aiohttp_server, server)})
    await add_signals(maker, 1)
    async with aiohttp.ClientSession() as http:
        report = await push_signals(maker, http, cfg, sink="fhir", sleep=fake_sleep)
    assert report.dead_lettered == 1 and report.attempts == 1
    assert "422" in report.errors[0] and "Unknown patient" in report.errors[0]


async def test_client_refuses_a_non_bundle_answer(aiohttp_server) -> None:
    async def not_fhir(_request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy login</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/fhir", not_fhir)
    running = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http:
        client = FhirClient(http, str(running.make_url("/fhir")))
        with pytest.raises(FhirRejected, match="not JSON"):
            await client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": []})
