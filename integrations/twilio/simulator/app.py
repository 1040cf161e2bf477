"""A Twilio-compatible SMS simulator: the Messages API subset the twilio library uses, plus a handset.

API (the 2010-04-01 shapes, Basic auth with the account sid and auth token):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` — To, From or MessagingServiceSid, Body,
  StatusCallback; 201 with the Message resource, or Twilio's error document (see store.py for the
  magic numbers). Status callbacks follow, signed with X-Twilio-Signature.
* ``GET .../Messages/{Sid}.json`` and ``GET .../Messages.json`` (To, From, DateSent, DateSent>,
  DateSent<, Page, PageSize; newest first, with Twilio's paging fields).

Test and handset side (JSON unless noted):

* ``POST /simulator/inbound`` ``{"from", "to", "body", "media_urls", "sid"?}`` — a handset texts the
  service: the simulator posts a signed incoming-message webhook to ``webhook_url`` and answers
  ``{"sid", "webhook_status", "replayed", "replies"}``. Reusing a ``sid`` replays the same message.
* ``POST /simulator/faults`` ``{"status": 429|500|503, "count", "retry_after"}`` or
  ``{"hang_seconds", "count"}``; ``GET`` lists, ``DELETE`` clears them.
* ``GET /simulator/messages?to=&from=&phone=``, ``GET|POST /simulator/handsets``,
  ``POST /simulator/reset``, ``GET /simulator/`` (the handset page) and ``POST /simulator/send`` (its
  no-script form).

Like Twilio's Advanced Opt-Out, a handset texting STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
OPTOUT) is still forwarded to the webhook, gets Twilio's confirmation text (``opt_out_replies``), and
every later send to it fails with 21610 until it texts START (YES, UNSTOP). Opt-outs here are per
handset for the whole account, not per sender. HELP is left to the webhook.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jinja2
from aiohttp import web

from integrations.twilio.segments import segment_info
from integrations.twilio.signature import SIGNATURE_HEADER, sign
from integrations.twilio.simulator.store import (
    API_VERSION,
    E164,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Fault,
    SimMessage,
    SimulatorError,
    SimulatorState,
    handsets_from,
    keyword,
    planned_outcome,
)

__all__ = ["SimulatorConfig", "create_simulator_app", "start_simulator"]

_LOGGER = logging.getLogger(__name__)
_HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SID = re.compile(r"^SM[0-9a-fA-F]{32}$")
MG_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_BODY = 1600
OPT_OUT_REPLY = (
    "You have successfully been unsubscribed. You will not receive any more messages from this number. "
    "Reply START to resubscribe."
)
OPT_IN_REPLY = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
)
_FAULT_CODES = {429: 20429, 500: 20500, 503: 20503}


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated account behaves.

    Attributes:
        account_sid, auth_token: the credentials the API accepts and the webhooks are signed with.
        webhook_url: midbot's incoming-message URL (exactly the URL that is signed); None: no webhook.
        callback_delays: seconds (queued -> sent, sent -> delivered/undelivered/failed); 0 is fine.
        seed: seeds message sids, for repeatable runs.
        default_from: the service number the handset page texts when no other is known.
        messaging_services: MessagingServiceSid -> the number it sends from.
        blocklist: numbers every send to fails with 21610, as if they had opted out.
        opt_out_replies: send Twilio's STOP / START confirmation texts.
        webhook_timeout: seconds to wait for the webhook (Twilio waits 15).
        clock: the simulator's time source.
    """

    account_sid: str = "AC00000000000000000000000000000000"
    auth_token: str = "midbot-simulator-token"
    webhook_url: str | None = None
    callback_delays: tuple[float, float] = (0.05, 0.1)
    seed: int | None = None
    default_from: str = "+15005550006"
    messaging_services: Mapping[str, str] = field(default_factory=dict)
    blocklist: frozenset[str] = frozenset()
    opt_out_replies: bool = True
    webhook_timeout: float = 15.0
    clock: Callable[[], datetime] = utcnow


def _bad(field_name: str, message: str) -> web.HTTPBadRequest:
    body = json.dumps({"error": f"{field_name}: {message}", "field": field_name})
    return web.HTTPBadRequest(text=body, content_type="application/json")


def _parse_date_filter(name: str, raw: str) -> tuple[datetime, bool]:
    """A DateSent filter value → (instant, is_whole_day). Accepts YYYY-MM-DD or ISO 8601 datetimes."""
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC), True
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SimulatorError(20001, 400, f"Invalid {name}: {raw}") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)), False


def _date_check(name: str, raw: str) -> Callable[[datetime], bool]:
    """One DateSent filter as a predicate on a message time."""
    at, whole_day = _parse_date_filter(name, raw)

    def check(moment: datetime) -> bool:
        left, right = (moment.date(), at.date()) if whole_day or name == "DateSent" else (moment, at)
        if name == "DateSent":
            return left == right
        return left >= right if name == "DateSent>" else left <= right

    return check


def _date_filter(query: Mapping[str, str]) -> Callable[[SimMessage], bool]:
    """Twilio's DateSent (that day), DateSent> (on or after), DateSent< (on or before) filters."""
    checks = [
        _date_check(name, query[name]) for name in ("DateSent", "DateSent>", "DateSent<") if name in query
    ]

    def keep(message: SimMessage) -> bool:
        # An unsent message has no date_sent yet; the simulator falls back to date_created.
        moment = (message.date_sent or message.date_created).astimezone(UTC)
        return all(check(moment) for check in checks)

    return keep


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        raise SimulatorError(20001, 400, f"Invalid {name}") from None
    if not low <= value <= high:
        raise SimulatorError(20001, 400, f"Invalid {name}")
    return value


def _fault_from(payload: object) -> tuple[Fault, int]:
    """Validate a POST /simulator/faults body."""
    if not isinstance(payload, dict):
        raise _bad("body", "expected a JSON object")
    count = payload.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise _bad("count", "expected an integer from 1 to 1000")
    if "hang_seconds" in payload:
        hang = payload["hang_seconds"]
        if not isinstance(hang, int | float) or isinstance(hang, bool) or not 0 < hang <= 300:
            raise _bad("hang_seconds", "expected a number of seconds above 0, at most 300")
        if "status" in payload:
            raise _bad("status", "give either status or hang_seconds, not both")
        return Fault(hang_seconds=float(hang)), count
    status = payload.get("status")
    if status not in _FAULT_CODES or isinstance(status, bool):
        raise _bad("status", "expected 429, 500 or 503 (or give hang_seconds)")
    retry_after = payload.get("retry_after")
    if retry_after is not None and (
        not isinstance(retry_after, int | float)
        or isinstance(retry_after, bool)
        or not 0 <= retry_after <= 3600
    ):
        raise _bad("retry_after", "expected a number of seconds from 0 to 3600")
    return Fault(status=status, retry_after=None if retry_after is None else float(retry_after)), count


@dataclass(frozen=True)
class _Inbound:
    from_: str
    to: str
    body: str
    media_urls: list[str]
    sid: str | None


def _inbound_from(payload: object) -> _Inbound:
    """Validate a POST /simulator/inbound body."""
    if not isinstance(payload, dict):
        raise _bad("body", "expected a JSON object")
    for name in ("from", "to"):
        value = payload.get(name)
        if not isinstance(value, str) or not E164.match(value):
            raise _bad(name, "expected an E.164 number such as +15551234567")
    body = payload.get("body", "")
    if not isinstance(body, str) or len(body) > MAX_BODY:
        raise _bad("body", f"expected a string of at most {MAX_BODY} characters")
    media = payload.get("media_urls", [])
    if not isinstance(media, list) or not all(isinstance(u, str) and u.startswith("http") for u in media):
        raise _bad("media_urls", "expected a list of http(s) URLs")
    if len(media) > 10:
        raise _bad("media_urls", "at most 10 media URLs")
    sid = payload.get("sid")
    if sid is not None and (not isinstance(sid, str) or not SID.match(sid)):
        raise _bad("sid", "expected a message sid: SM followed by 32 hex digits")
    if not body and not media:
        raise _bad("body", "a message needs a body or media")
    return _Inbound(payload["from"], payload["to"], body, list(media), sid)


def _twiml_replies(text: str) -> list[str]:
    """Bodies of the <Message> verbs of a TwiML answer (empty when it is not TwiML)."""
    if not text.lstrip().startswith("<"):
        return []
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        _LOGGER.warning("simulator: webhook answered with unparseable XML")
        return []
    replies = []
    for verb in root.iter("Message"):
        body = verb.findtext("Body")
        replies.append((body if body is not None else verb.text or "").strip())
    return [r for r in replies if r]


def _basic_auth_ok(header: str | None, account_sid: str, auth_token: str) -> bool:
    """Check ``Authorization: Basic base64(sid:token)`` in constant time."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(decoded, f"{account_sid}:{auth_token}".encode())


class Simulator:
    """The behaviour behind the routes: state, callbacks, webhooks, faults."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.state = SimulatorState(
            config.account_sid, seed=config.seed, clock=config.clock, blocklist=config.blocklist
        )
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = asyncio.Event()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True, trim_blocks=True
        )

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the outgoing HTTP session (callbacks, webhooks)."""
        self.http = aiohttp.ClientSession(headers={"User-Agent": "TwilioProxy/1.1"})

    async def close(self) -> None:
        """Stop pending status callbacks and close the session."""
        self.closing.set()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background job, kept until done so close() can cancel it."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- outbound --------------------------------------------------------------------------
    def check_account(self, request: web.Request) -> None:
        """401 unless Basic auth carries the account sid and auth token; 404 for another account."""
        if not _basic_auth_ok(
            request.headers.get("Authorization"), self.config.account_sid, self.config.auth_token
        ):
            raise SimulatorError(20003, 401)
        if request.match_info["account"] != self.config.account_sid:
            raise SimulatorError(20404, 404, f"The requested resource {request.path} was not found")

    def accept(self, form: Mapping[str, str], media: list[str]) -> SimMessage:
        """Validate a create request and store the message, or raise the error Twilio would."""
        to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
        service, body = form.get("MessagingServiceSid", "").strip(), form.get("Body", "")
        callback = form.get("StatusCallback", "").strip() or None
        if not to:
            raise SimulatorError(21604)
        if not from_ and not service:
            raise SimulatorError(21603)
        if service and not MG_SID.match(service):
            raise SimulatorError(21701)
        if from_ and not E164.match(from_):
            raise SimulatorError(21212, message=f"The 'From' number {from_} is not a valid phone number.")
        if not body and not media:
            raise SimulatorError(21602)
        if len(body) > MAX_BODY:
            raise SimulatorError(21617)
        if callback and not callback.startswith(("http://", "https://")):
            raise SimulatorError(21609)
        refused = self.state.refuses(to)
        if refused == 21211:
            raise SimulatorError(21211, message=f"The 'To' number {to} is not a valid phone number.")
        if refused is not None:
            raise SimulatorError(refused)
        return self.state.add(
            SimMessage(
                sid=self.state.new_sid(),
                account_sid=self.config.account_sid,
                direction="outbound-api",
                from_=from_ or self.config.messaging_services.get(service, self.config.default_from),
                to=to,
                body=body,
                status="queued" if from_ else "accepted",
                date_created=self.config.clock(),
                messaging_service_sid=service or None,
                status_callback=callback,
                media_urls=media,
            )
        )

    async def lifecycle(self, message: SimMessage) -> None:
        """queued -> sent -> delivered / undelivered, or queued -> failed, with callbacks in order."""
        final, code = planned_outcome(message.to)
        await self.set_status(message, "queued")
        await asyncio.sleep(self.config.callback_delays[0])
        if final == "failed":
            await self.set_status(message, "failed", code)
            return
        await self.set_status(message, "sent")
        await asyncio.sleep(self.config.callback_delays[1])
        await self.set_status(message, final, code)

    async def set_status(self, message: SimMessage, status: str, error_code: int | None = None) -> None:
        """Move a message to ``status`` and post the status callback, if it asked for one."""
        now = self.config.clock()
        message.status, message.date_updated = status, now
        message.error_code = error_code
        if status == "sent":
            message.date_sent = now
        if message.status_callback:
            await self.status_callback(message)

    async def status_callback(self, message: SimMessage) -> None:
        """POST Twilio's status callback form, signed, to the message's StatusCallback."""
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": message.sid,
            "MessageStatus": message.status,
            "SmsSid": message.sid,
            "SmsStatus": message.status,
            "To": message.to,
        }
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        assert message.status_callback is not None
        status = await self.post_signed(message.status_callback, params, f"{message.sid}-{message.status}")
        _LOGGER.debug("simulator: status callback %s %s -> %s", message.sid, message.status, status)

    async def post_signed(self, url: str, params: dict[str, str], token: str) -> int | None:
        """POST a signed form like Twilio; the answer's status, or None if it could not be delivered."""
        status, _text = await self.post_signed_text(url, params, token)
        return status

    async def post_signed_text(self, url: str, params: dict[str, str], token: str) -> tuple[int | None, str]:
        """As post_signed, also returning the answer's body."""
        assert self.http is not None, "simulator not started"
        headers = {
            SIGNATURE_HEADER: sign(self.config.auth_token, url, params),
            "I-Twilio-Idempotency-Token": token,
        }
        try:
            async with self.http.post(
                url,
                data=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
            ) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            _LOGGER.warning("simulator: POST to webhook failed: %s", type(exc).__name__)
            return None, ""

    async def hang(self, seconds: float) -> None:
        """Hold a response (fault injection) until the time passes or the simulator shuts down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    # --- inbound ---------------------------------------------------------------------------
    async def deliver_inbound(self, spec: _Inbound) -> dict[str, Any]:
        """Record a handset's text, apply opt-out keywords, post the webhook, send TwiML replies."""
        existing = self.state.get(spec.sid) if spec.sid else None
        if existing is not None and existing.direction != "inbound":
            raise _bad("sid", "that sid belongs to an outbound message")
        message = existing or self.state.add(
            SimMessage(
                sid=spec.sid or self.state.new_sid(),
                account_sid=self.config.account_sid,
                direction="inbound",
                from_=spec.from_,
                to=spec.to,
                body=spec.body,
                status="received",
                date_created=self.config.clock(),
                media_urls=spec.media_urls,
                messaging_service_sid=self._service_of(spec.to),
            )
        )
        auto_reply = None if existing else self._apply_keyword(message)
        result: dict[str, Any] = {"sid": message.sid, "replayed": existing is not None, "replies": []}
        if self.config.webhook_url is None:
            result.update(webhook_status=None, webhook_error="no webhook_url configured")
        else:
            status, text = await self.post_signed_text(
                self.config.webhook_url, self.webhook_params(message), f"{message.sid}-inbound"
            )
            result["webhook_status"] = status
            if status is None:
                result["webhook_error"] = "webhook unreachable"
            elif 200 <= status < 300:
                result["replies"] = [self.reply(message, body).sid for body in _twiml_replies(text)]
        if auto_reply:
            self.reply(message, auto_reply, force=True)
        return result

    def _service_of(self, number: str) -> str | None:
        for sid, sender in self.config.messaging_services.items():
            if sender == number:
                return sid
        return None

    def _apply_keyword(self, message: SimMessage) -> str | None:
        """Advanced Opt-Out: STOP words opt the handset out, START words back in; the confirmation."""
        word = keyword(message.body)
        if word in OPT_OUT_WORDS:
            self.state.opted_out.add(message.from_)
            _LOGGER.info("simulator: %s opted out", message.sid)
            return OPT_OUT_REPLY if self.config.opt_out_replies else None
        if word in OPT_IN_WORDS and message.from_ in self.state.opted_out:
            self.state.opted_out.discard(message.from_)
            _LOGGER.info("simulator: %s opted back in", message.sid)
            return OPT_IN_REPLY if self.config.opt_out_replies else None
        return None

    def webhook_params(self, message: SimMessage) -> dict[str, str]:
        """Twilio's incoming-message webhook form for ``message``."""
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "Body": message.body,
            "From": message.from_,
            "MessageSid": message.sid,
            "NumMedia": str(len(message.media_urls)),
            "NumSegments": str(segment_info(message.body).segments),
            "SmsMessageSid": message.sid,
            "SmsSid": message.sid,
            "SmsStatus": "received",
            "To": message.to,
        }
        for index, url in enumerate(message.media_urls):
            params[f"MediaUrl{index}"] = url
            params[f"MediaContentType{index}"] = "image/jpeg"
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        for prefix, number in (("From", message.from_), ("To", message.to)):
            if number.startswith("+1"):
                params[f"{prefix}Country"] = "US"
        return params

    def reply(self, inbound: SimMessage, body: str, *, force: bool = False) -> SimMessage:
        """Record an outbound reply (TwiML or opt-out confirmation) to the handset and deliver it."""
        message = self.state.add(
            SimMessage(
                sid=self.state.new_sid(),
                account_sid=self.config.account_sid,
                direction="outbound-reply",
                from_=inbound.to,
                to=inbound.from_,
                body=body,
                status="queued",
                date_created=self.config.clock(),
                messaging_service_sid=inbound.messaging_service_sid,
            )
        )
        if inbound.from_ in self.state.opted_out and not force:
            message.status, message.error_code = "failed", 21610
        else:
            self.spawn(self.lifecycle(message))
        return message


SIMULATOR = web.AppKey("twilio_simulator", Simulator)


def _sim(request: web.Request) -> Simulator:
    return request.app[SIMULATOR]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Twilio error documents for API refusals; CSP and hardening headers on everything."""
    try:
        response = await handler(request)
    except SimulatorError as exc:
        response = web.json_response(exc.body(), status=exc.status)
    except web.HTTPException as exc:
        exc.headers.setdefault("Content-Security-Policy", CSP)
        raise
    except Exception:
        _LOGGER.exception("simulator: unhandled error on %s %s", request.method, request.path)
        response = web.json_response(SimulatorError(20500, 500).body(), status=500)
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _bad("body", "not valid JSON") from None


# --- Messages API ------------------------------------------------------------------------------
async def create_message(request: web.Request) -> web.Response:
    """POST /2010-04-01/Accounts/{account}/Messages.json"""
    sim = _sim(request)
    sim.check_account(request)
    fault = sim.state.next_fault()
    if fault is not None and fault.status is not None:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        error = SimulatorError(_FAULT_CODES[fault.status], fault.status)
        return web.json_response(error.body(), status=fault.status, headers=headers)
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    media = [v for v in form.getall("MediaUrl", []) if isinstance(v, str)]
    message = sim.accept(fields, media)
    _LOGGER.info("simulator: created %s (%s)", message.sid, message.status)
    sim.spawn(sim.lifecycle(message))
    if fault is not None and fault.hang_seconds:
        # The message exists (and will be delivered) even though this caller never hears back.
        await sim.hang(fault.hang_seconds)
    return web.json_response(message.twilio_json(), status=201)


async def fetch_message(request: web.Request) -> web.Response:
    """GET /2010-04-01/Accounts/{account}/Messages/{sid}.json"""
    sim = _sim(request)
    sim.check_account(request)
    message = sim.state.get(request.match_info["sid"])
    if message is None:
        raise SimulatorError(20404, 404, f"The requested resource {request.path} was not found")
    return web.json_response(message.twilio_json())


async def list_messages(request: web.Request) -> web.Response:
    """GET /2010-04-01/Accounts/{account}/Messages.json with Twilio's filters and paging."""
    sim = _sim(request)
    sim.check_account(request)
    query = request.query
    keep = _date_filter(query)
    page_size = _int_param(query, "PageSize", 50, 1, 1000)
    page = _int_param(query, "Page", 0, 0, 1_000_000)
    found = [m for m in sim.state.thread(to=query.get("To"), from_=query.get("From")) if keep(m)]
    # Newest first; among equal timestamps the later stored first (reverse the input, then a stable sort).
    found = sorted(reversed(found), key=lambda m: m.date_created, reverse=True)
    start = page * page_size
    chunk = found[start : start + page_size]
    filters = [(k, query[k]) for k in ("To", "From", "DateSent", "DateSent>", "DateSent<") if k in query]

    def page_uri(number: int) -> str:
        params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if number:
            params.append(("PageToken", f"PA{number}"))
        return f"{request.path}?{urlencode(params)}"

    has_next = start + page_size < len(found)
    return web.json_response(
        {
            "end": start + max(len(chunk), 1) - 1,
            "first_page_uri": page_uri(0),
            "messages": [m.twilio_json() for m in chunk],
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }
    )


# --- test and handset side ---------------------------------------------------------------------
async def post_inbound(request: web.Request) -> web.Response:
    """POST /simulator/inbound: a handset texts the service."""
    spec = _inbound_from(await _json_body(request))
    return web.json_response(await _sim(request).deliver_inbound(spec))


async def post_send_form(request: web.Request) -> web.Response:
    """POST /simulator/send: the handset page's form (works without script), then back to the thread."""
    form = await request.post()
    payload = {"from": form.get("phone", ""), "to": form.get("to", ""), "body": form.get("body", "")}
    await _sim(request).deliver_inbound(_inbound_from(payload))
    raise web.HTTPSeeOther(f"/simulator/?{urlencode({'phone': payload['from']})}")


async def get_messages(request: web.Request) -> web.Response:
    """GET /simulator/messages?to=&from=&phone=: every message, both directions, oldest first."""
    query = request.query
    found = _sim(request).state.thread(phone=query.get("phone"), to=query.get("to"), from_=query.get("from"))
    return web.json_response({"messages": [m.handset_json() for m in found]})


async def get_handsets(request: web.Request) -> web.Response:
    """GET /simulator/handsets: registered handsets and every number seen."""
    sim = _sim(request)
    phones = [
        {"phone": h.phone, "name": h.name, "opted_out": h.phone in sim.state.opted_out}
        for h in sim.state.known_phones()
    ]
    return web.json_response({"handsets": phones})


async def post_handsets(request: web.Request) -> web.Response:
    """POST /simulator/handsets ``[{"phone", "name"}]``: register handsets for the page."""
    try:
        handsets = handsets_from(await _json_body(request))
    except ValueError as exc:
        raise _bad(str(exc).split(":", 1)[0], str(exc).split(": ", 1)[-1]) from None
    _sim(request).state.register(handsets)
    return await get_handsets(request)


async def post_fault(request: web.Request) -> web.Response:
    """POST /simulator/faults: fail or hang the next ``count`` create calls."""
    fault, count = _fault_from(await _json_body(request))
    sim = _sim(request)
    sim.state.add_fault(fault, count)
    return web.json_response({"pending": len(sim.state.pending_faults())}, status=201)


async def get_faults(request: web.Request) -> web.Response:
    """GET /simulator/faults: pending faults, in order."""
    pending = _sim(request).state.pending_faults()
    return web.json_response(
        {
            "faults": [
                {"status": f.status, "retry_after": f.retry_after, "hang_seconds": f.hang_seconds}
                for f in pending
            ]
        }
    )


async def delete_faults(request: web.Request) -> web.Response:
    """DELETE /simulator/faults: drop pending faults."""
    _sim(request).state.clear_faults()
    return web.json_response({"pending": 0})


async def post_reset(request: web.Request) -> web.Response:
    """POST /simulator/reset: forget messages, opt-outs and faults."""
    _sim(request).state.reset()
    return web.json_response({"reset": True})


async def handset_page(request: web.Request) -> web.Response:
    """GET /simulator/: pick a phone, read its thread, text back."""
    sim = _sim(request)
    phone = request.query.get("phone", "").strip()
    if phone and not E164.match(phone):
        phone_error, phone = f"{phone!r} is not an E.164 number such as +15551234567", ""
    else:
        phone_error = ""
    page = sim.templates.get_template("handset.html").render(
        handsets=sim.state.known_phones(),
        phone=phone,
        phone_error=phone_error,
        opted_out=phone in sim.state.opted_out,
        thread=[m.handset_json() for m in sim.state.thread(phone=phone)] if phone else [],
        service_numbers=sim.state.service_numbers_for(phone, sim.config.default_from) if phone else [],
        webhook_url=sim.config.webhook_url,
    )
    return web.Response(text=page, content_type="text/html")


async def to_handset_page(_request: web.Request) -> web.Response:
    """GET /simulator → /simulator/"""
    raise web.HTTPFound("/simulator/")


def create_simulator_app(config: SimulatorConfig) -> web.Application:
    """The simulator as an aiohttp application (run it with start_simulator or web.run_app)."""
    app = web.Application(middlewares=[_errors])
    sim = Simulator(config)
    app[SIMULATOR] = sim

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await sim.open()
        yield
        await sim.close()

    async def on_shutdown(_app: web.Application) -> None:
        sim.closing.set()  # release hanging fault responses before the server waits for handlers

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(on_shutdown)
    api = f"/{API_VERSION}/Accounts/{{account}}"
    app.router.add_post(f"{api}/Messages.json", create_message)
    app.router.add_get(f"{api}/Messages.json", list_messages)
    app.router.add_get(f"{api}/Messages/{{sid}}.json", fetch_message)
    app.router.add_get("/simulator", to_handset_page)
    app.router.add_get("/simulator/", handset_page)
    app.router.add_post("/simulator/inbound", post_inbound)
    app.router.add_post("/simulator/send", post_send_form)
    app.router.add_get("/simulator/messages", get_messages)
    app.router.add_get("/simulator/handsets", get_handsets)
    app.router.add_post("/simulator/handsets", post_handsets)
    app.router.add_get("/simulator/faults", get_faults)
    app.router.add_post("/simulator/faults", post_fault)
    app.router.add_delete("/simulator/faults", delete_faults)
    app.router.add_post("/simulator/reset", post_reset)
    app.router.add_static("/simulator/static", _HERE / "static")
    return app


async def start_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Run the simulator in this event loop; port 0 picks a free port.

    Returns:
        (runner, base_url) — point MIDBOT_TWILIO_API_BASE_URL at base_url; ``await runner.cleanup()``
        stops it.
    """
    runner = web.AppRunner(create_simulator_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"
