"""The SMS channel: every outbound text is stored first, consent-checked, then sent through Twilio.

Sending is two steps so a crash never loses or repeats a text: ``prepare`` writes a pending Message in the
caller's unit of work; ``deliver`` (after that commit) calls the provider and records the outcome. A send
whose outcome is unknown (timeout) is reconciled against the provider's message list, never blindly resent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, utcnow
from bot.db.models import ConsentEvent, Conversation, Message, Outreach, Patient, ProviderStatus, Site
from bot.settings import Settings
from integrations.twilio.client import TwilioClient
from integrations.twilio.errors import PermanentSendError, TransientSendError, UnknownOutcomeError
from integrations.twilio.segments import segment_info
from scheduler.sitecfg import SiteConfig, site_config

__all__ = [
    "OUTCOMES",
    "Channel",
    "ChannelRefused",
    "STATUS_RANK",
    "SendResult",
    "apply_status",
    "delivery_outcome",
    "drain_backlog",
    "in_quiet_hours",
    "next_window_start",
    "outbound_values",
    "record_delivery",
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
_BAD_NUMBER_CODES = {21211, 21614}


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
    """What one provider call came to: a sid (queued or accepted), or a failed or unknown outcome."""

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


class Channel:
    """Send and track SMS for patients and unknown senders."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        client: TwilioClient,
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._client = client

    @property
    def status_callback(self) -> str:
        """The URL Twilio posts delivery status to."""
        return f"{self._settings.public_base_url}/twilio/status"

    # -- preparing ---------------------------------------------------------------------------------------

    async def prepare(
        self,
        session: AsyncSession,
        *,
        patient: Patient,
        site: Site,
        body: str,
        kind: str,
        reply_to_patient: bool = False,
        conversation_id: int | None = None,
        task_id: int | None = None,
        staff_user_id: int | None = None,
    ) -> Message:
        """Check consent and store a pending outbound Message in the caller's unit of work.

        Raises:
            ChannelRefused: opted out, no SMS consent (outreach only), bad phone, or quiet hours for
                a text that does not answer the patient.
        """
        now = self._clock.now()
        self._check(patient, site, kind, reply_to_patient, now)
        message = self._new_message(site, patient.phone, body, kind, now)
        message.patient_id = patient.id
        message.conversation_id = conversation_id
        message.task_id = task_id
        message.staff_user_id = staff_user_id
        session.add(message)
        await session.flush()
        return message

    def _check(self, patient: Patient, site: Site, kind: str, reply_to_patient: bool, now: datetime) -> None:
        reason = refusal(patient, site, kind, reply_to_patient, now)
        if reason is not None:
            raise ChannelRefused(reason)

    def _new_message(self, site: Site, to: str, body: str, kind: str, now: datetime) -> Message:
        return Message(**outbound_values(site, to, body, kind, now))

    async def prepare_to_number(
        self, session: AsyncSession, *, site: Site, to: str, body: str, kind: str
    ) -> Message:
        """Store a pending text to a number that is not a known patient (the unknown-sender reply)."""
        message = self._new_message(site, to, body, kind, self._clock.now())
        session.add(message)
        await session.flush()
        return message

    # -- delivering --------------------------------------------------------------------------------------

    async def send_text(
        self,
        *,
        patient_id: str,
        body: str,
        kind: str = "staff",
        staff_user_id: int | None = None,
        task_id: int | None = None,
        conversation_id: int | None = None,
        reply_to_patient: bool = False,
    ) -> Message:
        """Prepare (own transaction) and deliver one text to a patient; returns the stored Message."""
        async with self._sessionmaker.begin() as session:
            patient = await session.get(Patient, patient_id)
            if patient is None:
                raise ChannelRefused("unknown_patient")
            site = await session.get(Site, patient.site_id)
            assert site is not None
            message = await self.prepare(
                session,
                patient=patient,
                site=site,
                body=body,
                kind=kind,
                reply_to_patient=reply_to_patient,
                conversation_id=conversation_id,
                task_id=task_id,
                staff_user_id=staff_user_id,
            )
            message_id = message.id
        return await self.deliver(message_id)

    async def deliver(self, message_id: int) -> Message:
        """Send a pending Message through the provider and record the outcome (idempotent)."""
        async with self._sessionmaker.begin() as session:
            message = await session.get(Message, message_id, with_for_update=not self._settings.is_sqlite)
            if message is None:
                raise ValueError(f"no message {message_id}")
            if message.provider_sid or message.status not in ("pending", "unknown"):
                return message
            if message.attempts > 0:
                found = await self._find_at_provider(message)
                if found is not None:
                    await self._record_sid(session, message, found.sid, found.status)
                    return message
            message.attempts += 1
            site = await session.get(Site, message.site_id) if message.site_id else None
        return await self._call_provider(message_id, message, site)

    async def provider_send(self, *, to: str, body: str, site: Site | None, from_number: str) -> SendResult:
        """One provider call for a claimed message: never raises for the provider's answers.

        Args:
            to: the destination number.
            body: the text.
            site: the sending site (its number or Messaging Service); None to send from ``from_number``.
            from_number: the message's stored sender, used when there is no site.
        """
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
            return SendResult("failed", error_code=exc.code, error=str(exc)[:300])
        except TransientSendError as exc:
            return SendResult("failed", error=str(exc)[:300])
        except UnknownOutcomeError:
            return SendResult("unknown")
        return SendResult(sent.status or "queued", sid=sent.sid)

    async def _call_provider(self, message_id: int, message: Message, site: Site | None) -> Message:
        result = await self.provider_send(
            to=message.to_number, body=message.body, site=site, from_number=message.from_number
        )
        status, sid, code, error = result.status, result.sid, result.error_code, result.error
        async with self._sessionmaker.begin() as session:
            message = await session.get(Message, message_id)
            assert message is not None
            if sid:
                await self._record_sid(session, message, sid, status)
            else:
                message.status, message.error_code, message.error_message = status, code, error
                message.status_updated_at = self._clock.now()
            if code is not None and message.patient_id:
                await self._on_permanent_error(session, message, code)
        if sid:
            # A status callback may have arrived before the sid was stored; it waits in the backlog.
            async with self._sessionmaker.begin() as session:
                for early in await drain_backlog(session, sid, self._clock.now()):
                    if early.patient_id and early.status in OUTCOMES:
                        await record_delivery(
                            session, early, early.status, early.error_code, self._clock.now()
                        )
        _LOGGER.info("message %s: %s%s", message_id, status, f" ({code})" if code else "")
        return message

    async def _find_at_provider(self, message: Message) -> object | None:
        # The provider stamps messages with its own (real) clock, while ours may be shifted (`--now` in tests
        # and checks): look back as far as the message's age on our clock, measured from the real time.
        age = max(timedelta(0), self._clock.now() - message.created_at)
        since = utcnow() - age - timedelta(minutes=10)
        try:
            return await self._client.find_sent(to=message.to_number, body=message.body, since=since)
        except Exception:  # the provider cannot be asked now; leave the message unknown
            _LOGGER.warning("message %s: reconciliation lookup failed", message.id)
            raise

    async def _record_sid(self, session: AsyncSession, message: Message, sid: str, status: str) -> None:
        message.provider_sid = sid
        if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(message.status, 0) or message.status == "unknown":
            message.status = status
        message.status_updated_at = self._clock.now()

    async def _on_permanent_error(self, session: AsyncSession, message: Message, code: int) -> None:
        patient = await session.get(Patient, message.patient_id)
        if patient is None:
            return
        if code == 21610:
            await opt_out_phone(
                session, patient.phone, source="provider_21610", message_id=message.id, now=self._clock.now()
            )
        elif code in _BAD_NUMBER_CODES:
            await flag_bad_phone(session, patient, code, message.id, self._clock.now())

    async def reconcile(self, message_id: int) -> Message:
        """Resolve a message whose send outcome is unknown: record it if the provider has it, else resend."""
        return await self.deliver(message_id)


def _sender_of(site: Site | None, fallback: str) -> Sender:
    if site is not None and site.messaging_service_sid:
        return Sender(None, site.messaging_service_sid)
    return Sender(site.phone if site is not None else fallback, None)


_RANK_SQL = case(STATUS_RANK, value=Message.status, else_=0)


async def apply_status(
    session: AsyncSession, sid: str, status: str, error_code: int | None, now: datetime
) -> Message | None:
    """Move a message's status forward only, atomically (a late `sent` never overwrites `delivered`).

    Returns the message when this call changed it, None when it did not (unknown sid, or not newer).
    """
    rank = STATUS_RANK.get(status, 0)
    values: dict[str, object] = {"status": status, "status_updated_at": now}
    if error_code:
        values["error_code"] = error_code
    changed = await session.scalar(
        update(Message)
        .where(Message.provider_sid == sid, or_(_RANK_SQL < rank, Message.status == "unknown"))
        .values(**values)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        return None
    message = await session.get(Message, changed, populate_existing=True)
    return message


async def drain_backlog(session: AsyncSession, sid: str, now: datetime) -> list[Message]:
    """Apply status callbacks that arrived before their message's sid was known; returns changed messages."""
    early = (
        await session.scalars(
            select(ProviderStatus).where(ProviderStatus.provider_sid == sid).order_by(ProviderStatus.id)
        )
    ).all()
    changed = []
    for row in early:
        message = await apply_status(session, sid, row.status, row.error_code, now)
        if message is not None:
            changed.append(message)
    if early:
        # Core delete: both sides may drain the same rows; deleting an already deleted row is fine.
        await session.execute(delete(ProviderStatus).where(ProviderStatus.id.in_([row.id for row in early])))
    return changed


async def opt_out_phone(
    session: AsyncSession, phone: str, *, source: str, message_id: int | None, now: datetime
) -> list[Patient]:
    """Opt out every patient with this phone (all sites share the decision): cancel their pending outreach,
    close their open dialogs, record the consent change. Returns the patients newly opted out."""
    patients = (await session.scalars(select(Patient).where(Patient.phone == phone))).all()
    changed = [p for p in patients if p.opted_out_at is None]
    for patient in changed:
        patient.opted_out_at = now
        session.add(
            ConsentEvent(
                patient_id=patient.id, change="opt_out", source=source, message_id=message_id, created_at=now
            )
        )
    ids = [p.id for p in patients]
    if ids:
        await session.execute(
            update(Outreach)
            .where(Outreach.patient_id.in_(ids), Outreach.state.in_(("planned", "deferred", "claimed")))
            .values(state="cancelled", reason="opted_out", updated_at=now)
        )
        await session.execute(
            update(Conversation)
            .where(Conversation.patient_id.in_(ids), Conversation.status == "open")
            .values(status="closed", updated_at=now)
        )
    return changed


async def flag_bad_phone(
    session: AsyncSession, patient: Patient, code: int, message_id: int, now: datetime
) -> None:
    """Mark the phone unusable and open a task for staff to fix contact details (once)."""
    from bot.tasks import open_task  # the task service sits above the channel

    if patient.phone_status in BAD_PHONE_STATUSES:
        return
    patient.phone_status = bad_phone_status(code)
    await open_task(
        session,
        site_id=patient.site_id,
        now=now,
        patient_id=patient.id,
        source_message_id=message_id,
        detail={"error_code": code},
        **BAD_PHONE_TASK,
    )


BAD_PHONE_STATUSES = ("invalid", "not_mobile")
# The task staff get when the provider says a number cannot take texts (21211 invalid, 21614 not mobile).
BAD_PHONE_TASK: dict[str, Any] = {
    "queue": "general",
    "kind": "fix_contact",
    "priority": 3,
    "title": "Phone number cannot receive texts: update contact details",
}


def bad_phone_status(code: int) -> str:
    """The patient's phone_status after a permanent bad-number error."""
    return "invalid" if code == 21211 else "not_mobile"


_CARRIER_CODES = {30003, 30004, 30005, 30006, 30007, 30008}


async def record_delivery(
    session: AsyncSession, message: Message, status: str, code: int | None, now: datetime
) -> None:
    """Feed a delivery outcome into the patient's deliverability record (and act on 21610 / dead numbers)."""
    patient = await session.get(Patient, message.patient_id)
    if patient is None:
        return
    record, opt_out, contact = delivery_outcome(dict(patient.deliverability or {}), status, code, now)
    if opt_out:
        await opt_out_phone(session, patient.phone, source="provider_21610", message_id=message.id, now=now)
    if contact and code is not None:
        await _contact_task(
            session, patient, code, int(record.get("consecutive_failures", 0)), message.id, now
        )
    patient.deliverability = record


def delivery_outcome(
    record: dict[str, Any], status: str, code: int | None, now: datetime
) -> tuple[dict[str, Any], bool, bool]:
    """A patient's deliverability record after one outcome: (new record, opt the phone out, open a task).

    ``delivered`` resets the failure streak; a failure with a code counts it; 21610 (the handset opted out
    at the carrier) opts the phone out; a carrier code marks the number landline or unreachable, and the
    first time (30006) or after three failures in a row a fix-contact task is due.
    """
    record = dict(record)
    opt_out = contact = False
    if status == "delivered":
        record.update(consecutive_failures=0, last_delivered_at=now.isoformat())
    elif status in ("undelivered", "failed") and code is not None:
        opt_out = code == 21610
        record["consecutive_failures"] = int(record.get("consecutive_failures", 0)) + 1
        record["failures"] = int(record.get("failures", 0)) + 1
        record.update(last_error_code=code, last_error_at=now.isoformat())
        if code in _CARRIER_CODES:
            record["status"] = "landline" if code == 30006 else "unreachable"
            failures = int(record["consecutive_failures"])
            if not record.get("task_opened") and (code == 30006 or failures >= 3):
                record["task_opened"] = contact = True
    return record, opt_out, contact


async def _contact_task(
    session: AsyncSession, patient: Patient, code: int, failures: int, message_id: int, now: datetime
) -> None:
    from bot.tasks import open_task

    await open_task(
        session,
        site_id=patient.site_id,
        queue="general",
        kind="fix_contact",
        title="Texts are not reaching this patient: check the phone number",
        now=now,
        patient_id=patient.id,
        priority=3,
        detail={"error_code": code, "failures": failures},
        source_message_id=message_id,
    )
