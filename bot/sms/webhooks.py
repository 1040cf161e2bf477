"""Twilio webhooks: incoming messages and delivery status callbacks."""

from __future__ import annotations

import logging

from aiohttp import web
from multidict import MultiDictProxy

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
    params = {k: str(v) for k, v in form.items()}
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


def _media(form: MultiDictProxy[str]) -> list[str]:
    try:
        count = int(form.get("NumMedia", "0") or 0)
    except ValueError:
        count = 0
    return [str(form[f"MediaUrl{i}"]) for i in range(min(count, 10)) if f"MediaUrl{i}" in form]


@routes.post("/twilio/inbound")
async def inbound(request: web.Request) -> web.Response:
    """Store the message exactly once per MessageSid, answer Twilio at once, and hand it to the inbox."""
    form = await _signed_form(request)
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "")
    sender = str(form.get("From", ""))
    if not sid or not sender:
        raise web.HTTPBadRequest(
            text='{"error": "MessageSid and From are required", "field": "MessageSid"}',
            content_type="application/json",
        )
    now = request.app[CLOCK].now()
    media = _media(form)
    segments = str(form.get("NumSegments", "1") or "1")
    message_id = await request.app[INBOUND_STORE].store(
        {
            "direction": "in",
            "kind": "inbound",
            "provider_sid": sid,
            "from_number": sender,
            "to_number": str(form.get("To", "")),
            "body": str(form.get("Body", "")),
            "num_media": len(media),
            "media": media,
            "status": "received",
            "segments": int(segments) if segments.isdigit() else 1,
            "encoding": "",
            "attempts": 0,
            "created_at": now,
        }
    )
    if message_id is None:
        _LOGGER.info("inbound %s is a replay; already stored", sid)
        return _twiml()
    # Stored durably: answer Twilio now; the inbox works on it right after, in arrival order per number.
    request.app[INBOX].submit(message_id, sender)
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
    code_text = str(form.get("ErrorCode") or "")
    code = int(code_text) if code_text.isdigit() else None
    # Answered once the batch holding this callback is committed (or kept for a sid we do not know yet).
    await request.app[STATUS_WRITER].apply(StatusUpdate(sid, new_status, code, request.app[CLOCK].now()))
    return web.Response(status=204)
