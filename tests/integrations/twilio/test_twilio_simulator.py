"""The simulator over HTTP: API errors and filters, inbound webhooks, opt-out, faults, handset page."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from integrations.twilio.simulator import SimulatorConfig, start_simulator
from integrations.twilio.simulator import app as simulator_app
from tests.integrations.twilio.twilio_helpers import (
    ACCOUNT,
    PATIENT,
    SERVICE_NUMBER,
    TOKEN,
    Receiver,
    SimulatorFactory,
)

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()}
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


async def call(
    server: TestServer, method: str, path: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.make_url(path), allow_redirects=False, **kwargs) as resp:
            body: Any = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body, resp.headers


async def create(server: TestServer, **form: str) -> tuple[int, Any]:
    status, body, _ = await call(server, "POST", MESSAGES, data=form, headers=AUTH)
    return status, body


async def inbound(server: TestServer, **payload: Any) -> tuple[int, Any]:
    payload.setdefault("from", PATIENT)
    payload.setdefault("to", SERVICE_NUMBER)
    status, body, _ = await call(server, "POST", "/simulator/inbound", json=payload)
    return status, body


# --- Messages API -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:wrong".encode()).decode()},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!!"},
    ],
)
async def test_create_needs_basic_auth(simulator: TestServer, headers: dict[str, str]) -> None:
    status, body, _ = await call(
        simulator, "POST", MESSAGES, data={"To": PATIENT, "Body": "x"}, headers=headers
    )
    assert status == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


async def test_other_account_in_path_is_404(simulator: TestServer) -> None:
    path = f"/2010-04-01/Accounts/AC{'2' * 32}/Messages.json"
    status, body, _ = await call(simulator, "GET", path, headers=AUTH)
    assert (status, body["code"]) == (404, 20404)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SERVICE_NUMBER, "Body": "x"}, 21604),
        ({"To": PATIENT, "Body": "x"}, 21603),
        ({"To": PATIENT, "From": SERVICE_NUMBER}, 21602),
        ({"To": PATIENT, "From": SERVICE_NUMBER, "Body": "x" * 1601}, 21617),
        ({"To": PATIENT, "From": "12", "Body": "x"}, 21212),
        ({"To": PATIENT, "MessagingServiceSid": "MG1", "Body": "x"}, 21701),
        ({"To": PATIENT, "From": SERVICE_NUMBER, "Body": "x", "StatusCallback": "ftp://x"}, 21609),
        ({"To": "+15005550001", "From": SERVICE_NUMBER, "Body": "x"}, 21211),
        ({"To": "+15005550009", "From": SERVICE_NUMBER, "Body": "x"}, 21614),
    ],
)
async def test_create_errors_are_twilio_shaped(
    simulator: TestServer, form: dict[str, str], code: int
) -> None:
    status, body = await create(simulator, **form)
    assert status == 400
    assert body["code"] == code and body["status"] == 400 and body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


async def test_created_message_is_twilio_shaped(simulator: TestServer) -> None:
    status, body = await create(simulator, To=PATIENT, From=SERVICE_NUMBER, Body="Hi {name} 😀")
    assert status == 201
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["account_sid"] == ACCOUNT and body["api_version"] == "2010-04-01"
    assert (body["to"], body["from"], body["status"], body["direction"]) == (
        PATIENT,
        SERVICE_NUMBER,
        "queued",
        "outbound-api",
    )
    assert body["num_segments"] == "1" and body["num_media"] == "0" and body["error_code"] is None
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", body["date_created"])
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{body['sid']}.json"
    status, fetched, _ = await call(simulator, "GET", body["uri"], headers=AUTH)
    assert status == 200 and fetched["sid"] == body["sid"]


async def test_list_filters_and_paging(simulator: TestServer) -> None:
    for i in range(3):
        await create(simulator, To=PATIENT, From=SERVICE_NUMBER, Body=f"m{i}")
    await create(simulator, To="+15557654321", From=SERVICE_NUMBER, Body="other")
    status, page, _ = await call(
        simulator, "GET", MESSAGES, params={"To": PATIENT, "PageSize": "2"}, headers=AUTH
    )
    assert status == 200
    assert [m["body"] for m in page["messages"]] == ["m2", "m1"]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["previous_page_uri"] is None and page["next_page_uri"]
    status, second, _ = await call(simulator, "GET", page["next_page_uri"], headers=AUTH)
    assert [m["body"] for m in second["messages"]] == ["m0"] and second["next_page_uri"] is None

    async def count(**params: str) -> int:
        _, listed, _ = await call(simulator, "GET", MESSAGES, params=params, headers=AUTH)
        return len(listed["messages"])

    assert await count(To=PATIENT, **{"DateSent>": "2000-01-01"}) == 3
    assert await count(To=PATIENT, **{"DateSent>": "2999-01-01T00:00:00Z"}) == 0
    assert await count(**{"DateSent<": "2000-01-01"}) == 0
    assert await count(From=SERVICE_NUMBER) == 4
    status, error, _ = await call(simulator, "GET", MESSAGES, params={"DateSent": "yesterday"}, headers=AUTH)
    assert (status, error["code"]) == (400, 20001)


async def test_same_seed_gives_same_sids(simulator_factory: SimulatorFactory) -> None:
    first, second = await simulator_factory(seed=3), await simulator_factory(seed=3)
    _, a = await create(first, To=PATIENT, From=SERVICE_NUMBER, Body="x")
    _, b = await create(second, To=PATIENT, From=SERVICE_NUMBER, Body="x")
    assert a["sid"] == b["sid"]


# --- inbound webhooks ---------------------------------------------------------------------------------
async def test_inbound_posts_a_signed_twilio_webhook(
    simulator_factory: SimulatorFactory, receiver: Receiver
) -> None:
    webhook = receiver.url("/twilio/inbound")
    server = await simulator_factory(webhook_url=webhook)
    status, result = await inbound(
        server, body="Sí, 2 dosis olvidadas", media_urls=["https://example.org/p.jpg"]
    )
    assert status == 200 and result["webhook_status"] == 200 and result["replayed"] is False
    (got,) = receiver.requests
    assert RequestValidator(TOKEN).validate(webhook, got.form, got.signature)
    assert not RequestValidator("wrong").validate(webhook, got.form, got.signature)
    form = got.form
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"] == result["sid"]
    assert (form["AccountSid"], form["From"], form["To"]) == (ACCOUNT, PATIENT, SERVICE_NUMBER)
    assert form["Body"] == "Sí, 2 dosis olvidadas"
    assert (form["NumMedia"], form["MediaUrl0"], form["NumSegments"]) == (
        "1",
        "https://example.org/p.jpg",
        "1",
    )
    assert form["SmsStatus"] == "received" and form["ApiVersion"] == "2010-04-01"


async def test_replay_reuses_the_message_sid(simulator_factory: SimulatorFactory, receiver: Receiver) -> None:
    server = await simulator_factory(webhook_url=receiver.url("/twilio/inbound"))
    _, first = await inbound(server, body="1")
    _, again = await inbound(server, body="1", sid=first["sid"])
    assert again["sid"] == first["sid"] and again["replayed"] is True
    assert [r.form["MessageSid"] for r in receiver.requests] == [first["sid"], first["sid"]]
    status, listed, _ = await call(server, "GET", "/simulator/messages", params={"from": PATIENT})
    assert [m["sid"] for m in listed["messages"]] == [first["sid"]]
    chosen = "SM" + "ab" * 16
    _, fresh = await inbound(server, body="hello", sid=chosen)
    assert fresh["sid"] == chosen and fresh["replayed"] is False


async def test_twiml_reply_is_recorded_as_an_outbound_message(
    simulator_factory: SimulatorFactory, receiver: Receiver
) -> None:
    receiver.reply_body = "<?xml version='1.0'?><Response><Message>Thanks, we got it.</Message></Response>"
    server = await simulator_factory(webhook_url=receiver.url("/twilio/inbound"))
    _, result = await inbound(server, body="2")
    assert len(result["replies"]) == 1
    _, listed, _ = await call(server, "GET", "/simulator/messages", params={"phone": PATIENT})
    assert [(m["direction"], m["from"], m["to"], m["body"]) for m in listed["messages"]] == [
        ("inbound", PATIENT, SERVICE_NUMBER, "2"),
        ("outbound-reply", SERVICE_NUMBER, PATIENT, "Thanks, we got it."),
    ]


async def test_unreachable_webhook_is_reported(simulator_factory: SimulatorFactory) -> None:
    server = await simulator_factory(webhook_url="http://127.0.0.1:9/twilio/inbound")
    status, result = await inbound(server, body="hi")
    assert status == 200 and result["webhook_status"] is None and result["webhook_error"]


async def test_stop_is_forwarded_confirmed_and_blocks_sends_until_start(
    simulator_factory: SimulatorFactory, receiver: Receiver
) -> None:
    server = await simulator_factory(webhook_url=receiver.url("/twilio/inbound"))
    await inbound(server, body="  stop ")
    assert receiver.requests[0].form["Body"] == "  stop "  # forwarded untouched, like Advanced Opt-Out
    status, body = await create(server, To=PATIENT, From=SERVICE_NUMBER, Body="refill?")
    assert (status, body["code"]) == (400, 21610)
    _, listed, _ = await call(server, "GET", "/simulator/messages", params={"to": PATIENT})
    assert "unsubscribed" in listed["messages"][0]["body"]
    _, handsets, _ = await call(server, "GET", "/simulator/handsets")
    assert {"phone": PATIENT, "name": "", "opted_out": True} in handsets["handsets"]
    await inbound(server, body="START")
    status, body = await create(server, To=PATIENT, From=SERVICE_NUMBER, Body="refill?")
    assert status == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"from": "5551234", "body": "x"}, "from"),
        ({"to": "", "body": "x"}, "to"),
        ({"body": 5}, "body"),
        ({"body": ""}, "body"),
        ({"body": "x", "sid": "SM123"}, "sid"),
        ({"body": "x", "media_urls": "http://x"}, "media_urls"),
    ],
)
async def test_bad_inbound_names_the_field(
    simulator: TestServer, payload: dict[str, Any], field: str
) -> None:
    status, body = await inbound(simulator, **payload)
    assert status == 400 and body["field"] == field and body["error"].startswith(field)


async def test_inbound_invalid_json_is_400(simulator: TestServer) -> None:
    status, body, _ = await call(simulator, "POST", "/simulator/inbound", data="{not json")
    assert status == 400 and body["field"] == "body"


# --- faults ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"status": 404}, "status"),
        ({"status": 500, "count": 0}, "count"),
        ({"status": 500, "count": True}, "count"),
        ({"status": 429, "retry_after": -1}, "retry_after"),
        ({"hang_seconds": 0}, "hang_seconds"),
        ({"hang_seconds": 1, "status": 500}, "status"),
        ([], "body"),
    ],
)
async def test_bad_fault_names_the_field(simulator: TestServer, fault: Any, field: str) -> None:
    status, body, _ = await call(simulator, "POST", "/simulator/faults", json=fault)
    assert status == 400 and body["field"] == field


async def test_faults_queue_in_order_and_clear(simulator: TestServer) -> None:
    await call(simulator, "POST", "/simulator/faults", json={"status": 503, "count": 1, "retry_after": 2})
    await call(simulator, "POST", "/simulator/faults", json={"status": 500})
    _, listed, _ = await call(simulator, "GET", "/simulator/faults")
    assert [f["status"] for f in listed["faults"]] == [503, 500]
    status, body, headers = await call(
        simulator, "POST", MESSAGES, data={"To": PATIENT, "Body": "x"}, headers=AUTH
    )
    assert (status, body["code"], headers["Retry-After"]) == (503, 20503, "2")
    await call(simulator, "DELETE", "/simulator/faults")
    status, _ = await create(simulator, To=PATIENT, From=SERVICE_NUMBER, Body="x")
    assert status == 201


# --- handset page ------------------------------------------------------------------------------------
async def test_handset_page_lists_phones_and_escapes_the_thread(simulator: TestServer) -> None:
    status, _, _ = await call(
        simulator, "POST", "/simulator/handsets", json=[{"phone": PATIENT, "name": "Ana"}]
    )
    assert status == 200
    await create(simulator, To=PATIENT, From=SERVICE_NUMBER, Body="<b>Refill</b> ready")
    status, page, headers = await call(simulator, "GET", "/simulator/", params={"phone": PATIENT})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "Ana" in page and "&lt;b&gt;Refill&lt;/b&gt; ready" in page and "<b>Refill" not in page
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all('src="/simulator/static/' in tag for tag in scripts)
    assert "style=" not in page and "<style" not in page and " on" + "click=" not in page
    status, js, headers = await call(simulator, "GET", "/simulator/static/handset.js")
    assert status == 200 and "javascript" in headers["Content-Type"] and "textContent" in js
    assert "innerHTML" not in js


async def test_handset_page_rejects_a_bad_number_politely(simulator: TestServer) -> None:
    status, page, _ = await call(simulator, "GET", "/simulator/", params={"phone": "<script>"})
    assert status == 200 and "not an E.164 number" in page and "<script>" not in page.split("</head>")[1]


async def test_handset_form_send_works_without_script(
    simulator_factory: SimulatorFactory, receiver: Receiver
) -> None:
    server = await simulator_factory(webhook_url=receiver.url("/twilio/inbound"))
    form = {"phone": PATIENT, "to": SERVICE_NUMBER, "body": "3"}
    status, _, headers = await call(server, "POST", "/simulator/send", data=form)
    assert status == 303 and headers["Location"].startswith("/simulator/?phone=")
    assert receiver.requests[0].form["Body"] == "3"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"phone": PATIENT}, "body"),
        ([{"phone": "123"}], "[0].phone"),
        ([{"phone": PATIENT, "name": 1}], "[0].name"),
    ],
)
async def test_bad_handsets_name_the_field(simulator: TestServer, payload: Any, field: str) -> None:
    status, body, _ = await call(simulator, "POST", "/simulator/handsets", json=payload)
    assert status == 400 and body["field"] == field


async def test_reset_forgets_messages_and_opt_outs(simulator: TestServer) -> None:
    await inbound(simulator, body="STOP")
    await call(simulator, "POST", "/simulator/reset")
    _, listed, _ = await call(simulator, "GET", "/simulator/messages")
    assert listed["messages"] == []
    status, _ = await create(simulator, To=PATIENT, From=SERVICE_NUMBER, Body="x")
    assert status == 201


async def test_start_simulator_serves_on_a_real_port() -> None:
    runner, url = await start_simulator(SimulatorConfig(seed=1), "127.0.0.1", 0)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and not url.endswith(":0")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/simulator/handsets") as resp:
                assert resp.status == 200 and (await resp.json()) == {"handsets": []}
    finally:
        await runner.cleanup()


_JS_HARNESS = r"""
const fs = require("fs");
const vm = require("vm");
function el(tag) {
  return {
    tagName: tag, children: [], dataset: {}, className: "", textContent: "", value: "", listeners: {},
    append(...c) { this.children.push(...c); }, appendChild(c) { this.children.push(c); },
    replaceChildren() { this.children = []; },
    get lastElementChild() { return this.children[this.children.length - 1]; },
    addEventListener(type, fn) { this.listeners[type] = fn; },
  };
}
const thread = el("ol"); thread.dataset.phone = "+15551230000";
const form = el("form"); const to = el("select"); to.value = "+15005550006";
const body = el("textarea"); body.value = "hola";
form.elements = { namedItem: (n) => ({ to, body })[n] };
const status = el("p");
const ids = { thread, send: form, "send-status": status };
const calls = [];
const message = { sid: "SM1", direction: "outbound-api", body: "<b>hi</b>", status: "delivered",
                  error_code: null, date_created: "2026-11-24T15:04:00+00:00" };
const sandbox = {
  document: { getElementById: (id) => ids[id] ?? null, createElement: el },
  setInterval: (fn) => { sandbox.tick = fn; }, encodeURIComponent, JSON, console,
  fetch: async (url, opts) => {
    calls.push([url, opts]);
    if (url.startsWith("/simulator/messages")) return { ok: true, json: async () => ({ messages: [message] }) };
    return { ok: true, json: async () => ({ sid: "SM2", webhook_status: 200 }) };
  },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
(async () => {
  await sandbox.tick();
  const rendered = thread.children.map((c) => ({ cls: c.className, body: c.children[0].textContent,
                                                 meta: c.children[1].textContent }));
  let prevented = false;
  await form.listeners.submit({ preventDefault() { prevented = true; } });
  const post = calls.find((c) => c[0] === "/simulator/inbound");
  console.log(JSON.stringify({ rendered, prevented, poll: calls[0][0], post: JSON.parse(post[1].body),
                               status: status.textContent, bodyAfter: body.value }));
})();
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_handset_script_polls_renders_as_text_and_sends(tmp_path: Path) -> None:
    harness = tmp_path / "harness.js"
    harness.write_text(_JS_HARNESS)
    script = Path(simulator_app.__file__).parent / "static" / "handset.js"
    done = subprocess.run(["node", str(harness), str(script)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["poll"] == "/simulator/messages?phone=%2B15551230000"
    assert result["rendered"] == [{"cls": "msg out", "body": "<b>hi</b>", "meta": "15:04 UTC · delivered"}]
    assert result["prevented"] is True
    assert result["post"] == {"from": "+15551230000", "to": "+15005550006", "body": "hola"}
    assert result["status"] == "Delivered to midbot (HTTP 200)." and result["bodyAfter"] == ""
