"""The OpenAPI document: built from the route table and its pydantic models, and true to what the API answers.

schemathesis (test_api_schemathesis) sends what the document describes; these send what it cannot reach — a
body over the size limit, a browser without its CSRF header, a task someone else claimed, a rejected FHIR
transaction — and check each answer's status, media type and body against the document.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.api.openapi import PREFIX, answers
from bot.api.params import MAX_PAGE
from bot.api.routes import API_ROUTES
from tests.bot.support import Seeded, bearer, sign_in
from tests.integrations.fhir import hl7_like as hl7


async def document(client: TestClient) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    return dict(await response.json())


async def conforms(doc: dict[str, Any], response: ClientResponse, path: str, method: str = "get") -> Any:
    """Assert the answer is one the document gives for that operation, body and all; return the body."""
    operation = doc["paths"][PREFIX + path][method]
    documented = operation["responses"].get(str(response.status))
    assert documented is not None, f"{method} {path}: {response.status} is not documented"
    assert response.content_type in documented["content"], (response.content_type, documented)
    body = await response.json(content_type=None)
    schema = documented["content"][response.content_type]["schema"]
    jsonschema_rs.validator_for({**schema, "components": doc["components"]}).validate(body)
    for header in documented.get("headers", {}):
        assert header in response.headers, header
    return body


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_every_route_and_every_answer_is_in_the_document(api: tuple[TestClient, Seeded]) -> None:
    client, _seeded = api
    doc = await document(client)
    assert doc["openapi"] == "3.1.0"
    routes = client.server.app[API_ROUTES]
    assert {r.name for r in routes} >= {"listTasks", "import_fhir", "import_patients", "getMetrics"}
    for route in routes:
        operation = doc["paths"][PREFIX + route.path][route.method.lower()]
        assert operation["operationId"] == route.name
        statuses = set(operation["responses"])
        assert statuses == {str(a.status) for a in answers(route)}
        assert {"200", "400", "401"} <= statuses
        assert ("404" in statuses) == ("{" in route.path or route.name == "getMetrics"), route.name
        assert ("413" in statuses) == (route.method == "POST"), route.name
        assert "500" not in statuses
    schemas = doc["components"]["schemas"]
    assert {"TaskOut", "TaskPage", "ResolveIn", "ReplyIn", "PatientOut", "ErrorOut", "FhirOutcomeOut"} <= set(schemas)
    assert schemas["TaskPage"]["required"] == ["items", "page", "page_size", "total", "next"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


async def test_parameters_are_the_query_models_fields(api: tuple[TestClient, Seeded]) -> None:
    client, _seeded = api
    doc = await document(client)
    for route in client.server.app[API_ROUTES]:
        params = doc["paths"][PREFIX + route.path][route.method.lower()]["parameters"]
        query = {p["name"]: p for p in params if p["in"] == "query"}
        assert list(query) == (list(route.query.model_fields) if route.query else []), route.name
        if "page" in query:
            assert query["page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}
            assert query["page_size"]["schema"]["maximum"] in (200, 500, 1000)
    tasks = {p["name"]: p for p in doc["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert tasks["queue"]["schema"]["enum"] == ["urgent_clinical", "clinical", "refill", "financial", "general"]
    assert tasks["mine"]["schema"]["type"] == "boolean"
    (task_id,) = doc["paths"]["/api/v1/tasks/{task_id}"]["get"]["parameters"]
    assert task_id["in"] == "path" and task_id["schema"]["maximum"] == 2**31 - 1
    assert doc["paths"]["/api/v1/fhir"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FhirBundleIn"
    }


async def test_errors_schemathesis_cannot_reach_are_as_documented(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    doc = await document(client)
    unauthorized = await client.get("/api/v1/tasks")
    assert unauthorized.status == 401
    await conforms(doc, unauthorized, "/tasks")
    too_big = await client.post("/api/v1/patients", data=b"[" + b" " * (9 * 1024 * 1024) + b"]", headers=bearer(seeded))
    assert too_big.status == 413
    assert (await conforms(doc, too_big, "/patients", "post"))["field"] == "body"
    refill = seeded.tasks["refill"]
    csrf = await sign_in(client, "pharmacist")
    no_csrf = await client.post(f"/api/v1/tasks/{refill}/claim")
    assert no_csrf.status == 403
    await conforms(doc, no_csrf, "/tasks/{task_id}/claim", "post")
    assert (await client.post(f"/api/v1/tasks/{refill}/claim", headers={"X-CSRF-Token": csrf})).status == 200
    taken = await client.post(f"/api/v1/tasks/{refill}/claim", headers=bearer(seeded))
    assert taken.status == 409
    await conforms(doc, taken, "/tasks/{task_id}/claim", "post")
    forbidden = await client.get("/api/v1/audit")
    assert forbidden.status == 403
    await conforms(doc, forbidden, "/audit")
    other_site = await client.get("/api/v1/metrics?site=south", headers=bearer(seeded))
    assert other_site.status == 404
    await conforms(doc, other_site, "/metrics")


@pytest.mark.parametrize("kind", ["transaction", "batch", "collection"])
async def test_fhir_answers_are_as_documented(api: tuple[TestClient, Seeded], kind: str) -> None:
    client, seeded = api
    doc = await document(client)
    good = hl7.bundle(kind, hl7.patient("pat1"), hl7.request_contained("rx1", "Patient/pat1", value="RX-1"))
    ok = await client.post("/api/v1/fhir", json=good, headers=bearer(seeded))
    assert ok.status == 200
    assert ok.content_type == ("application/fhir+json" if kind == "batch" else "application/json")
    await conforms(doc, ok, "/fhir", "post")
    bad = hl7.bundle(kind, hl7.patient("pat2", phone="12"))
    refused = await client.post("/api/v1/fhir", json=bad, headers=bearer(seeded))
    assert refused.status == (200 if kind == "batch" else 422)
    await conforms(doc, refused, "/fhir", "post")
    not_a_bundle = await client.post("/api/v1/fhir", json=[good], headers=bearer(seeded))
    assert not_a_bundle.status == 400
    await conforms(doc, not_a_bundle, "/fhir", "post")
    wrong_type = await client.post("/api/v1/fhir", json={**good, "type": "searchset"}, headers=bearer(seeded))
    assert wrong_type.status == 422
    await conforms(doc, wrong_type, "/fhir", "post")
