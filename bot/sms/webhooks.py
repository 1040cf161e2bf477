"""Twilio webhooks: incoming messages and delivery status callbacks."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.exc import SQLAlchemyError

from bot.keys import CLOCK, INBOUND_STORE, INBOX, SETTINGS, STATUS_WRITER
from bot.sms.statuses import StatusUpdate
from integrations.twilio.signature import validate_signature

__all__ = ["EMPTY_TWIML", "routes"]

_LOGGER = logging.getLogger(__name__)
routes = web.RouteTableDef()
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def _signed_form(request: web.Request) -> MultiDictProxy[str]:
    """Read the form and check X-Twilio-Signature against the public URL Twilio signed; 403 otherwise."""
    settings = request.app[SETTINGS]
    form = await request.post()
    # Every (name, value) pair: Twilio signs all values of a repeated field, not only the last.
    params = [(k, str(v)) for k, v in form.items()]
    url = f"{settings.public_base_url}{request.path_qs}"
    signature = request.headers.get("X-Twilio-Signature")
    if settings.twilio_validate_signatures and not validate_signature(
        settings.twilio_auth_token.get_secret_value(), url, params, signature
    ):
        _LOGGER.warning("rejected webhook with a bad or missing signature on %s", request.path)
        raise web.HTTPForbidden(
            text='{"error": "invalid X-Twilio-Signature"}', content_type="application/json"
        )
    return form  # type: ignore[return-value]


_MAX_BODY = 10_000  # Twilio caps a text at 1,600 characters; anything longer is not a real webhook
_MAX_URL = 2_000
_MAX_NUMBER = 40


class _Cleaner:
    """Values the store can keep exactly: NUL bytes out, lengths and numbers inside the columns' bounds.
    ``cleaned`` records that something had to change (the row keeps that flag)."""

    def __init__(self) -> None:
        self.cleaned = False

    def text(self, value: str, limit: int) -> str:
        kept = value.replace("\x00", "")[:limit]
        self.cleaned |= kept != value
        return kept

    def count(self, value: str, low: int, high: int, default: int) -> int:
        text = value.strip()
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None
        if number is None or not low <= number <= high:
            self.cleaned |= text != ""
            return default
        return number


def _media(form: MultiDictProxy[str], clean: _Cleaner) -> list[str]:
    count = clean.count(str(form.get("NumMedia", "0") or "0"), 0, 10, 0)
    return [clean.text(str(form[f"MediaUrl{i}"]), _MAX_URL) for i in range(count) if f"MediaUrl{i}" in form]


def _bad_request(message: str, field: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": message, "field": field}), content_type="application/json"
    )


@routes.post("/twilio/inbound")
async def inbound(request: web.Request) -> web.Response:
    """Store the message exactly once per MessageSid, answer Twilio at once, and hand it to the inbox."""
    form = await _signed_form(request)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    sender = str(form.get("From", ""))
    if not sid or not sender:
        raise _bad_request("MessageSid and From are required", "MessageSid" if not sid else "From")
    if len(sid) > 64 or not sid.isascii() or not sid.isalnum():
        raise _bad_request("MessageSid is not a provider message id", "MessageSid")
    clean = _Cleaner()
    sender = clean.text(sender, _MAX_NUMBER)
    if not sender:
        raise _bad_request("From is not a phone number", "From")
    now = request.app[CLOCK].now()
    media = _media(form, clean)
    body = clean.text(str(form.get("Body", "")), _MAX_BODY)
    to_number = clean.text(str(form.get("To", "")), _MAX_NUMBER)
    segments = clean.count(str(form.get("NumSegments", "1") or "1"), 1, 100, 1)
    values = {
        "direction": "in",
        "kind": "inbound",
        "provider_sid": sid,
        "from_number": sender,
        "to_number": to_number,
        "body": body,
        "num_media": len(media),
        "media": media,
        "status": "received",
        "segments": segments,
        "cleaned": clean.cleaned,
        "encoding": "",
        "attempts": 0,
        "created_at": now,
    }
    try:
        message_id = await request.app[INBOUND_STORE].store(values)
    except (SQLAlchemyError, OSError) as exc:
        # Not stored (the database is down or restarting): a non-2xx answer, so nothing is taken as received.
        _LOGGER.warning("inbound %s not stored (%s); asking for a retry", sid, type(exc).__name__)
        return _unavailable()
    if message_id is None:
        _LOGGER.info("inbound %s is a replay; already stored", sid)
        return _twiml()
    # Stored durably: answer Twilio now; the inbox works on it right after, in arrival order per number.
    request.app[INBOX].submit(message_id, sender, body)
    return _twiml()


@routes.post("/twilio/status")
async def status(request: web.Request) -> web.Response:
    """Apply a delivery status callback: idempotent and monotonic; carrier failures feed deliverability."""
    form = await _signed_form(request)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    new_status = str(form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or not new_status:
        raise web.HTTPBadRequest(
            text='{"error": "MessageSid and MessageStatus are required", "field": "MessageStatus"}',
            content_type="application/json",
        )
    if len(sid) > 64 or len(new_status) > 20:
        raise _bad_request("MessageSid or MessageStatus is not a provider value", "MessageSid")
    code_text = str(form.get("ErrorCode") or "")
    code = int(code_text) if code_text.isascii() and code_text.isdigit() and len(code_text) <= 9 else None
    # Answered once the batch holding this callback is committed (or kept for a sid we do not know yet).
    try:
        await request.app[STATUS_WRITER].apply(StatusUpdate(sid, new_status, code, request.app[CLOCK].now()))
    except (SQLAlchemyError, OSError) as exc:
        # Not stored (the database is down or restarting): a non-2xx answer makes Twilio send it again.
        _LOGGER.warning("status callback for %s not stored (%s); asking for a retry", sid, type(exc).__name__)
        return _unavailable()
    return web.Response(status=204)


def _unavailable() -> web.Response:
    return web.json_response(
        {"error": "the store is unavailable; send this again later"}, status=503, headers={"Retry-After": "5"}
    )
