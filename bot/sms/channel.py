"""The SMS channel: every outbound text is stored first, consent-checked, then sent through Twilio.

Sending is two steps so a crash never loses or repeats a text: ``prepare_reply`` / ``prepare_to_number``
write a pending Message in the caller's unit of work; ``bot.sms.delivery`` (after that commit) calls the
provider through ``Channel.provider_send`` and records the outcome. A send whose outcome is unknown (timeout)
is reconciled against the provider's message list (``Channel.find_sent``), never blindly resent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert

from bot.clock import Clock, utcnow
from bot.db.contact import is_wrong_number
from bot.db.models import Message, Patient, Site
from bot.db.sitecfg import SiteConfig, site_config
from bot.settings import Settings
from bot.sms.breaker import Breaker
from integrations.twilio.client import TwilioClient
from integrations.twilio.errors import PermanentSendError, TransientSendError, UnknownOutcomeError
from integrations.twilio.segments import segment_info

__all__ = [
    "OUTCOMES",
    "STATUS_RANK",
    "Channel",
    "ChannelRefused",
    "SendResult",
    "in_quiet_hours",
    "next_window_start",
    "outbound_values",
    "prepare_reply",
    "prepare_to_number",
    "refusal",
]

_LOGGER = logging.getLogger(__name__)

# Message status order: a later callback never moves a message backwards (a late `sent` after `delivered`).
STATUS_RANK = {
    "pending": 0,
    "unknown": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 6,
    "undelivered": 6,
    "failed": 6,
    "canceled": 6,
    "read": 7,
    "received": 1,
}
# Final outcomes: they feed the patient's deliverability record.
OUTCOMES = frozenset({"delivered", "undelivered", "failed"})
# Kinds an opted-out patient may still get: the one opt-out confirmation and the HELP answer.
_ALLOWED_WHEN_OPTED_OUT = {"opt_out_confirm", "help", "opt_in_confirm"}


class ChannelRefused(Exception):
    """The channel will not send this text (opted out, no consent, bad phone, quiet hours)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Sender:
    """Where a site's texts come from."""

    from_number: str | None
    messaging_service_sid: str | None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one provider call came to: a sid (queued or accepted), ``failed`` (permanent), ``retry`` (a
    transient provider failure: the text stays pending and is sent later), or ``unknown``."""

    status: str
    sid: str | None = None
    error_code: int | None = None
    error: str | None = None


def refusal(
    patient: Patient,
    site: Site,
    kind: str,
    reply_to_patient: bool,
    now: datetime,
    cfg: SiteConfig | None = None,
) -> str | None:
    """Why the channel will not text this patient now (opted_out, bad_phone, no_consent, quiet_hours), or None.

    ``cfg`` is the site's SiteConfig when the caller has it; it is read only for the quiet-hours check.
    """
    if patient.opted_out_at is not None and kind not in _ALLOWED_WHEN_OPTED_OUT:
        return "opted_out"
    if patient.phone_status in ("invalid", "not_mobile"):
        return "bad_phone"
    if not reply_to_patient and is_wrong_number(patient):
        return "wrong_number"
    if not reply_to_patient and kind in ("outreach", "followup") and not patient.sms_consent:
        return "no_consent"
    if not reply_to_patient and kind not in _ALLOWED_WHEN_OPTED_OUT:
        if in_quiet_hours(cfg or site_config(site), patient.time_zone, now):
            return "quiet_hours"
    return None


def outbound_values(site: Site, to: str, body: str, kind: str, now: datetime) -> dict[str, object]:
    """The columns of a new pending outbound Message (segments and encoding as Twilio bills the body)."""
    info = segment_info(body)
    return {
        "direction": "out",
        "kind": kind,
        "site_id": site.id,
        "from_number": site.messaging_service_sid or site.phone,
        "to_number": to,
        "body": body,
        "segments": info.segments,
        "encoding": info.encoding,
        "status": "pending",
        "created_at": now,
    }


def in_quiet_hours(cfg: SiteConfig, tz_name: str | None, now: datetime) -> bool:
    """True when ``now`` is outside the site's sending window in the given (patient's) time zone."""
    local = now.astimezone(ZoneInfo(tz_name or cfg.time_zone))
    start, end = cfg.quiet_window
    return not (start <= local.time().replace(tzinfo=None) < end)


def next_window_start(cfg: SiteConfig, tz_name: str | None, now: datetime) -> datetime:
    """The next moment (UTC) the sending window opens in the given time zone (DST-safe)."""
    zone = ZoneInfo(tz_name or cfg.time_zone)
    local = now.astimezone(zone)
    start, _end = cfg.quiet_window
    day = local.date() if local.time().replace(tzinfo=None) < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(now.tzinfo)


_INSERT_MESSAGE = insert(Message).returning(Message.id)


def prepare_reply(
    conn: Connection,
    *,
    patient: Patient,
    site: Site,
    body: str,
    kind: str,
    now: datetime,
    reply_to_patient: bool = False,
    conversation_id: int | None = None,
    task_id: int | None = None,
    staff_user_id: int | None = None,
    cfg: SiteConfig | None = None,
) -> int | None:
    """Check consent and store a pending text to a patient in the caller's unit of work; its id, or None
    when the channel will not send it (opted out, no SMS consent for outreach, bad phone, quiet hours for a
    text that does not answer the patient)."""
    reason = refusal(patient, site, kind, reply_to_patient, now, cfg)
    if reason is not None:
        _LOGGER.info("text to patient %s not stored: %s", patient.id, reason)
        return None
    values = outbound_values(site, patient.phone, body, kind, now)
    values.update(
        patient_id=patient.id, conversation_id=conversation_id, task_id=task_id, staff_user_id=staff_user_id
    )
    message_id: int = conn.execute(_INSERT_MESSAGE, values).scalar_one()
    return message_id


def prepare_to_number(conn: Connection, *, site: Site, to: str, body: str, kind: str, now: datetime) -> int:
    """Store a pending text to a number that is not a known patient (keyword answers, unknown senders)."""
    message_id: int = conn.execute(_INSERT_MESSAGE, outbound_values(site, to, body, kind, now)).scalar_one()
    return message_id


class Channel:
    """The provider side of sending: one call per text, and the look-up that reconciles an unknown outcome."""

    def __init__(self, *, settings: Settings, clock: Clock, client: TwilioClient) -> None:
        self._settings = settings
        self._clock = clock
        self._client = client
        self.breaker = Breaker(
            clock,
            threshold=settings.twilio_breaker_threshold,
            cooldown=settings.twilio_breaker_cooldown_seconds,
        )

    @property
    def status_callback(self) -> str:
        """The URL Twilio posts delivery status to."""
        return f"{self._settings.public_base_url}/twilio/status"

    async def provider_send(self, *, to: str, body: str, site: Site | None, from_number: str) -> SendResult:
        """One provider call for a claimed message: never raises for the provider's answers.

        Args:
            to: the destination number.
            body: the text.
            site: the sending site (its number or Messaging Service); None to send from ``from_number``.
            from_number: the message's stored sender, used when there is no site.
        """
        if not self.breaker.allow():  # an outage: wait it out without calling (the text stays pending)
            return SendResult("retry", error="provider circuit open")
        sender = _sender_of(site, from_number)
        try:
            sent = await self._client.send(
                to=to,
                body=body,
                from_=sender.from_number,
                messaging_service_sid=sender.messaging_service_sid,
                status_callback=self.status_callback,
            )
        except PermanentSendError as exc:
            self.breaker.success()
            return SendResult("failed", error_code=exc.code, error=str(exc)[:300])
        except TransientSendError as exc:  # 429, 5xx, refused: not sent; it stays pending and is retried
            self.breaker.failure()
            return SendResult("retry", error=str(exc)[:300])
        except UnknownOutcomeError:
            self.breaker.failure()
            return SendResult("unknown")
        self.breaker.success()
        return SendResult(sent.status or "queued", sid=sent.sid)

    async def find_sent(self, *, to: str, body: str, created_at: datetime) -> SendResult | None:
        """The provider's record of a text sent earlier (sid and status), or None if it never got there.

        Raises:
            TwilioError: the provider cannot be asked now (the text stays unknown).
        """
        # The provider stamps messages with its own (real) clock, while ours may be shifted (`--now` in tests
        # and checks): look back as far as the message's age on our clock, measured from the real time.
        if self.breaker.is_open:
            raise TransientSendError("provider circuit open")
        age = max(timedelta(0), self._clock.now() - created_at)
        since = utcnow() - age - timedelta(minutes=10)
        found = await self._client.find_sent(to=to, body=body, since=since)
        if found is None:
            return None
        return SendResult(found.status or "sent", sid=found.sid)


def _sender_of(site: Site | None, fallback: str) -> Sender:
    if site is not None and site.messaging_service_sid:
        return Sender(None, site.messaging_service_sid)
    return Sender(site.phone if site is not None else fallback, None)
