"""What happens to a stored inbound text, as one synchronous unit of work: consent first, then the dialog, then
people. The one implementation of inbound handling: the inbox runs it for a batch of texts (one commit), or
for one text at a time when a batch fails.

``process_batch`` runs on a ``Connection`` (``bot.db.worker``): it reads what the batch needs in a few
queries (the messages, their senders, open dialogs, active prescriptions and fills), runs the dialog engine,
and writes every decision — dialog state, tasks, signals, consent, pending replies, ``processed_at`` — in the
same transaction. Every text ends in a reply, a dialog step or an open task (invariant 1).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy import text as sql

from bot.db.audit import SYSTEM
from bot.db.consent import is_suppressed, opt_in_phone, opt_out_phone, opt_out_program, suppress_number
from bot.db.contact import cancel_outreach, mark_wrong_number
from bot.db.models import Message, Patient, Site, Task
from bot.db.signals import record_signal
from bot.db.tasks import add_note, change_task, compute_due_by, open_task
from bot.db.unit import SiteCache, load_patients, lock_for_write
from bot.sms.channel import prepare_reply, prepare_to_number
from bot.sms.dialogs import apply_decision, facts_from, load_therapy, open_conversations, state_of
from conversations import consent_texts as templates
from conversations import engine
from conversations.classify import classify
from conversations.ensemble import CLARIFY_BELOW
from conversations.keywords import consent_action
from conversations.normalize import normalize
from conversations.scope import optout_scope
from conversations.types import Decision, PatientFacts, Reply

__all__ = ["BatchResult", "fallback", "process_batch"]

_LOGGER = logging.getLogger(__name__)
# Twilio's Advanced Opt-Out answers these keywords itself (and would refuse a second answer with 21610).
_TWILIO_OPT_OUT = re.compile(
    r"(?i)\W*(stop|stopall|stop all|unsubscribe|cancel|end|quit|revoke|optout|opt out)\W*"
)
_TWILIO_OPT_IN = re.compile(r"(?i)\W*(start|unstop)\W*")
# A family member reporting a death (the number is opted out and a person calls the family).
_DEATH = re.compile(
    r"(?i)\b(passed away|passed on|has died|died|deceased|no longer with us|fallec[ií]\w*|muri[oó]|"
    r"se nos fue|en paz descanse|descanse en paz|rip)\b"
)
# Signals that answer a refill reminder: the rest of that run-out's reminders are not needed.
_REFILL_ANSWERS = frozenset({"refill_confirmed", "refill_declined", "refill_deferred"})
HANDOFF_IDLE = timedelta(
    hours=24
)  # a staff conversation goes back to the bot after this long without a staff text
_HANDOFF = (
    select(Task.id, Task.site_id)
    .join(Message, Message.task_id == Task.id)
    .where(
        Task.patient_id == bindparam("patient_id"),
        Task.status == "claimed",
        Message.kind == "staff",
        Message.direction == "out",
        Message.created_at >= bindparam("since"),
    )
    .order_by(Message.created_at.desc())
    .limit(1)
)
_MESSAGES = (
    select(
        Message.id,
        Message.from_number,
        Message.to_number,
        Message.body,
        Message.num_media,
        Message.processed_at,
    )
    .where(Message.id.in_(bindparam("ids", expanding=True)), Message.direction == "in")
    .order_by(Message.id)
)
_MESSAGES_FOR_UPDATE = _MESSAGES.with_for_update()
_NUMBER_LOCK = sql("SELECT pg_advisory_xact_lock(hashtext(:key))")
_OLDEST_UNPROCESSED = (
    select(Message.from_number, func.min(Message.id))
    .where(
        Message.direction == "in",
        Message.processed_at.is_(None),
        Message.from_number.in_(bindparam("numbers", expanding=True)),
    )
    .group_by(Message.from_number)
)
_MARK_PROCESSED = (
    update(Message)
    .where(Message.id == bindparam("b_id"))
    .values(
        processed_at=bindparam("b_now"),
        patient_id=bindparam("b_patient"),
        site_id=bindparam("b_site"),
        conversation_id=bindparam("b_conversation"),
    )
)
_SITE_FOR_NUMBER = (
    select(Site.id)
    .where(or_(Site.phone == bindparam("number"), Site.messaging_service_sid == bindparam("number")))
    .limit(1)
)
_FIRST_SITE = select(Site.id).order_by(Site.id).limit(1)
_RECENT_UNKNOWN_REPLY = (
    select(Message.id)
    .where(
        Message.to_number == bindparam("number"),
        Message.kind == "unknown_sender",
        Message.created_at >= bindparam("since"),
    )
    .limit(1)
)


@dataclass
class BatchResult:
    """What a batch came to: replies to deliver after commit, and the texts it processed."""

    outgoing: list[int] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)
    held: list[int] = field(
        default_factory=list
    )  # texts left for later: an older one of their number came first


@dataclass
class _Text:
    message_id: int
    number: str
    to_number: str
    body: str
    num_media: int
    patient: Patient | None = None
    site: Site | None = None
    mark: dict[str, Any] = field(default_factory=dict)


class _Unit:
    """One unit of work's reads, shared by the texts it handles."""

    def __init__(self, conn: Connection, now: datetime, provider_confirms_keywords: bool) -> None:
        self.conn = conn
        self.now = now
        self.sites = SiteCache(conn)
        self.provider_confirms = provider_confirms_keywords
        self.outgoing: list[int] = []

    def site_for_number(self, number: str) -> Site | None:
        site_id = self.conn.execute(_SITE_FOR_NUMBER, {"number": number}).scalar()
        if site_id is None:
            site_id = self.conn.execute(_FIRST_SITE).scalar()
        return self.sites.get(site_id) if site_id is not None else None

    def reply(self, text: _Text, body: str, kind: str) -> None:
        assert text.patient is not None and text.site is not None
        message_id = prepare_reply(
            self.conn,
            patient=text.patient,
            site=text.site,
            body=body,
            kind=kind,
            now=self.now,
            reply_to_patient=True,
            cfg=self.sites.config(text.site),
        )
        if message_id is not None:
            self.outgoing.append(message_id)

    def task(self, text: _Text, *, queue: str, kind: str, title: str, priority: int, **extra: Any) -> int:
        assert text.site is not None
        return open_task(
            self.conn,
            site_id=text.site.id,
            queue=queue,
            kind=kind,
            title=title,
            now=self.now,
            patient_id=text.patient.id if text.patient else None,
            priority=priority,
            source_message_id=text.message_id,
            sites=self.sites,
            **extra,
        )


def process_batch(
    conn: Connection, message_ids: Sequence[int], now: datetime, *, provider_confirms_keywords: bool = True
) -> BatchResult:
    """Handle stored inbound texts (at most one per sender) in one transaction, in order."""
    lock_for_write(conn)
    result = BatchResult()
    if conn.dialect.name == "postgresql":
        message_ids, result.held = _oldest_first(conn, message_ids)
    unit = _Unit(conn, now, provider_confirms_keywords)
    texts = _load(conn, message_ids)
    _find_patients(unit, texts)
    known = [t for t in texts if t.patient is not None]
    conversations = open_conversations(conn, [t.patient.id for t in known if t.patient])
    therapy = load_therapy(conn, [t.patient.id for t in known if t.patient])
    for text in texts:
        conversation_id = _route(unit, text, conversations, therapy)
        text.mark = {
            "b_id": text.message_id,
            "b_now": now,
            "b_patient": text.patient.id if text.patient else None,
            "b_site": text.site.id if text.site else None,
            "b_conversation": conversation_id,
        }
        result.processed.append(text.message_id)
    if texts:
        conn.execute(_MARK_PROCESSED, [t.mark for t in texts])
    result.outgoing = unit.outgoing
    return result


def _oldest_first(conn: Connection, message_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Per-number order across replicas (PostgreSQL): lock each sender number for this transaction, then
    handle the number's oldest unprocessed text in place of a newer one another replica's webhook stored.

    Returns the texts to handle now and the ones held back (their inbox queues them again, first in line).
    """
    numbers: dict[int, str] = {
        row[0]: row[1]
        for row in conn.execute(select(Message.id, Message.from_number).where(Message.id.in_(message_ids)))
    }
    for number in sorted(set(numbers.values())):  # one order everywhere: no deadlock between replicas
        conn.execute(_NUMBER_LOCK, {"key": f"inbox:{number}"})
    oldest = {
        row[0]: row[1]
        for row in conn.execute(_OLDEST_UNPROCESSED, {"numbers": sorted(set(numbers.values()))})
    }
    now_ids: list[int] = []
    held: list[int] = []
    chosen: dict[str, int] = {}  # number -> the one text of it handled in this transaction
    for message_id in message_ids:
        sender = numbers.get(message_id)
        if sender is None:
            now_ids.append(message_id)  # gone: _load skips it
            continue
        if sender in chosen:
            if chosen[sender] != message_id:
                held.append(message_id)
            continue
        chosen[sender] = first = min(oldest.get(sender, message_id), message_id)
        now_ids.append(first)
        if first != message_id:
            held.append(message_id)
    return now_ids, held


def _load(conn: Connection, message_ids: Sequence[int]) -> list[_Text]:
    query = _MESSAGES_FOR_UPDATE if conn.dialect.name == "postgresql" else _MESSAGES
    rows = {row.id: row for row in conn.execute(query, {"ids": list(message_ids)})}
    texts = []
    for message_id in message_ids:
        row = rows.get(message_id)
        if row is None or row.processed_at is not None:
            continue  # gone, or processed already (a replay of the work): nothing to do
        texts.append(_Text(message_id, row.from_number, row.to_number, row.body or "", row.num_media or 0))
    return texts


def _find_patients(unit: _Unit, texts: list[_Text]) -> None:
    """The patient behind each number; with a shared phone, prefer the site texted, then an open dialog."""
    numbers = {t.number for t in texts}
    by_phone: dict[str, list[Patient]] = {}
    for patient in load_patients(unit.conn, "phone", numbers) if numbers else []:
        by_phone.setdefault(patient.phone, []).append(patient)
    for text in texts:
        candidates = by_phone.get(text.number, [])
        if len(candidates) > 1:
            texted = unit.site_for_number(text.to_number)
            candidates = [
                p for p in candidates if texted is not None and p.site_id == texted.id
            ] or candidates
            open_ids = set(open_conversations(unit.conn, [p.id for p in candidates]))
            candidates = sorted(candidates, key=lambda p: p.id not in open_ids)
        text.patient = candidates[0] if candidates else None
        text.site = (
            unit.sites.get(text.patient.site_id) if text.patient else unit.site_for_number(text.to_number)
        )


def _route(unit: _Unit, text: _Text, conversations: dict[str, Any], therapy: dict[str, Any]) -> int | None:
    """One text: consent keywords, then opted-out, unknown, empty or picture texts, a staff hand-off, then
    the dialog. At most one automatic reply goes out per text."""
    patient, site = text.patient, text.site
    if site is None:
        _LOGGER.warning("inbound %s to a number no site owns", text.message_id)
        return None
    if patient is None:
        _unknown_sender(unit, text)
        return None
    action = consent_action(text.body, opted_out=patient.opted_out_at is not None)
    if action == "opt_out":
        scope = _program_scope(text.body)
        if scope is not None:  # "stop the refill reminders": that program only, and how to stop all
            _opt_out_program(unit, text, scope)
        else:
            _opt_out(unit, text)
        return None
    if action == "opt_in":
        _opt_in(unit, text)
        return None
    if action == "help":  # answered opted out or not
        unit.reply(text, _consent_text(site, "help", patient.language), "help")
        return None
    if patient.opted_out_at is not None:
        _from_opted_out(unit, text)
        return None
    if not text.body.strip():
        _media_or_empty(unit, text)
        return None
    prescriptions, fills = therapy.get(patient.id, ([], []))
    facts = facts_from(patient, site, unit.sites.config(site), prescriptions, fills, unit.now)
    conversation = conversations.get(patient.id)
    decision = engine.handle(state_of(conversation), text.body, facts, unit.now)
    emergency = any(reply.kind == "emergency" for reply in decision.replies)
    if action is None and not emergency and _revokes(decision):
        # A request in words to stop the texts, read with confidence: honoured at once like STOP (FCC 2024);
        # one kind of text named ("stop sending me the copay stuff") stops only that program.
        if (scope := _program_scope(text.body)) is not None:
            _opt_out_program(unit, text, scope)
        else:
            _opt_out(unit, text)
        return conversation.id if conversation else None
    handoff = unit.conn.execute(
        _HANDOFF, {"patient_id": patient.id, "since": unit.now - HANDOFF_IDLE}
    ).first()
    if handoff is not None:
        _to_staff(unit, text, handoff.id, decision if emergency else None)
        return conversation.id if conversation else None
    if action == "ambiguous" and not emergency:
        # "no more", "enough": the medicine or the texts? One question back, and the dialog waits for the answer.
        unit.reply(text, templates.render("stop_clarify", patient.language, site_name=site.name), "reply")
        return conversation.id if conversation else None
    applied = apply_decision(
        unit.conn,
        unit.sites,
        _one_reply(decision),
        patient=patient,
        site=site,
        now=unit.now,
        conversation=conversation,
        source_message_id=text.message_id,
        reply_to_patient=True,
    )
    unit.outgoing.extend(applied.outgoing)
    _follow_answers(unit, text, decision, facts, conversation)
    return applied.conversation_id


def _program_scope(body: str) -> str | None:
    """The program kind a worded opt-out names ("stop sending me the copay stuff"), if the site can scope it;
    a bare keyword (STOP, ALTO) is never scoped."""
    if _TWILIO_OPT_OUT.fullmatch(body.strip()):
        return None
    scope = optout_scope(normalize(body))
    return scope if scope in templates.TOPICS else None


def _revokes(decision: Decision) -> bool:
    """The classifier read an opt-out as the text's main meaning and is sure enough to act on it."""
    cls = decision.classification
    return cls is not None and cls.intent == "opt_out" and cls.confidence >= CLARIFY_BELOW


def _one_reply(decision: Decision) -> Decision:
    """A decision with at most one text: several replies to one inbound go out joined, emergency first."""
    if len(decision.replies) <= 1:
        return decision
    ordered = sorted(decision.replies, key=lambda reply: reply.kind != "emergency")
    joined = Reply("\n\n".join(reply.body for reply in ordered), ordered[0].kind)
    return replace(decision, replies=(joined,))


def _follow_answers(
    unit: _Unit, text: _Text, decision: Decision, facts: PatientFacts, conversation: Any
) -> None:
    """Outreach follows the answer: a refill reminder answered (yes, no, not yet) ends that run-out's other
    reminders; a wrong number ends outreach to the number."""
    assert text.patient is not None
    cls = decision.classification
    conversation_rx = conversation.prescription_id if conversation is not None else None
    answered = [s.prescription_id or conversation_rx for s in decision.signals if s.kind in _REFILL_ANSWERS]
    if conversation is not None and conversation.flow == "refill_reminder" and cls is not None:
        if cls.intent in ("confirm", "decline", "refill_request"):
            answered.append(conversation_rx)
    for rx in dict.fromkeys(answered):
        therapy = next((t for t in facts.therapies if t.prescription_id == rx), None)
        if therapy is not None and therapy.run_out_on is not None:
            cutoff = datetime.combine(therapy.run_out_on + timedelta(days=2), time(), tzinfo=UTC)
        else:
            cutoff = unit.now + timedelta(days=10)
        cancel_outreach(
            unit.conn,
            patient_ids=[text.patient.id],
            reason="answered",
            now=unit.now,
            kind="refill_reminder",
            prescription_id=rx,
            due_before=cutoff,
        )
    if cls is not None and (cls.intent == "wrong_number" or "wrong_number" in cls.also):
        mark_wrong_number(unit.conn, text.number, unit.now)


def _to_staff(unit: _Unit, text: _Text, task_id: int, emergency: Decision | None) -> None:
    """A pharmacist is texting with this patient: the text goes to their task, the bot stays quiet, except
    for emergency advice (and the task becomes urgent)."""
    add_note(
        unit.conn,
        task_id,
        kind="patient_message",
        text=text.body[:2000],
        now=unit.now,
        actor=SYSTEM,
        detail={"message_id": text.message_id},
        message_id=text.message_id,
    )
    if emergency is None:
        return
    assert text.site is not None
    urgent = {
        "queue": "urgent_clinical",
        "priority": 1,
        "due_by": compute_due_by(unit.sites.config(text.site), "urgent_clinical", unit.now),
    }
    change_task(
        unit.conn,
        task_id,
        urgent,
        now=unit.now,
        actor=SYSTEM,
        note=("move", "emergency words in a patient text: moved to urgent clinical"),
    )
    advice = next(reply for reply in emergency.replies if reply.kind == "emergency")
    unit.reply(text, advice.body, "emergency")


def _consent_text(site: Site, key: str, language: str) -> str:
    return templates.render(key, language, site_name=site.name, site_phone=site.phone)


def _consent_signal(unit: _Unit, text: _Text, changed: list[Patient], change: str) -> None:
    for each in changed:
        record_signal(
            unit.conn,
            patient_id=each.id,
            site_id=each.site_id,
            kind="consent_change",
            source="patient",
            occurred_at=unit.now,
            value={"change": change},
            source_message_id=text.message_id,
            dedupe_key=f"consent:{text.message_id}:{each.id}",
        )


def _opt_out(unit: _Unit, text: _Text) -> None:
    assert text.patient is not None and text.site is not None
    changed = opt_out_phone(unit.conn, text.number, source="sms", message_id=text.message_id, now=unit.now)
    _consent_signal(unit, text, changed, "opt_out")
    if _DEATH.search(text.body):
        unit.task(
            text,
            queue="general",
            kind="patient_deceased",
            title="Family reports the patient has died: number opted out, please call",
            priority=2,
        )
    if not changed:
        return  # already opted out: exactly one confirmation was sent then
    if unit.provider_confirms and _TWILIO_OPT_OUT.fullmatch(text.body.strip()):
        return  # Twilio's Advanced Opt-Out already confirmed this keyword
    unit.reply(text, _consent_text(text.site, "opt_out_confirm", text.patient.language), "opt_out_confirm")


def _opt_out_program(unit: _Unit, text: _Text, kind: str) -> None:
    """Stop one program kind for the patient; the reply says what stops and how to stop everything."""
    assert text.patient is not None and text.site is not None
    opt_out_program(unit.conn, text.patient, kind, source="sms", message_id=text.message_id, now=unit.now)
    language = text.patient.language
    topic = templates.TOPICS[kind].get(language, templates.TOPICS[kind]["en"])
    body = templates.render(
        "opt_out_program_confirm", language, site_name=text.site.name, site_phone=text.site.phone, topic=topic
    )
    unit.reply(text, body, "reply")


def _opt_in(unit: _Unit, text: _Text) -> None:
    assert text.patient is not None and text.site is not None
    changed = opt_in_phone(unit.conn, text.number, source="sms", message_id=text.message_id, now=unit.now)
    _consent_signal(unit, text, changed, "opt_in")
    if changed and unit.provider_confirms and _TWILIO_OPT_IN.fullmatch(text.body.strip()):
        return  # Twilio's Advanced Opt-Out confirmed this keyword for the number it had opted out
    # Subscribed already (Twilio says nothing then), or opted in in words: the patient hears it from us.
    unit.reply(text, _consent_text(text.site, "opt_in_confirm", text.patient.language), "opt_in_confirm")


def _from_opted_out(unit: _Unit, text: _Text) -> None:
    """No text goes to an opted-out patient, but a person still sees what they wrote."""
    intent = classify(text.body).intent
    urgent = intent == "emergency"
    unit.task(
        text,
        queue="urgent_clinical" if urgent else "general",
        kind="opted_out_message",
        title="Message from an opted-out patient (call, do not text)",
        priority=1 if urgent else 4,
        detail={"intent": intent},
    )


def _media_or_empty(unit: _Unit, text: _Text) -> None:
    assert text.patient is not None and text.site is not None
    picture = text.num_media > 0
    unit.task(
        text,
        queue="general",
        kind="media_message" if picture else "empty_message",
        title="Picture or empty text from patient" if picture else "Empty text from patient",
        priority=3,
    )
    unit.reply(text, templates.render("media_ack", text.patient.language, site_name=text.site.name), "ack")


def _unknown_sender(unit: _Unit, text: _Text) -> None:
    """A number not on file: consent keywords work as for a patient (the opt-out is kept for the number);
    anything else gets a task, and at most one polite reply a day."""
    site = text.site
    assert site is not None
    suppressed = is_suppressed(unit.conn, text.number)
    action = consent_action(text.body, opted_out=suppressed)
    language = classify(text.body).language if text.body.strip() else "en"
    body = text.body.strip()
    if action == "opt_out":
        new = suppress_number(unit.conn, text.number, source="sms", message_id=text.message_id, now=unit.now)
        if new and not (unit.provider_confirms and _TWILIO_OPT_OUT.fullmatch(body)):
            _to_number(unit, text, _consent_text(site, "opt_out_confirm", language), "opt_out_confirm")
        return
    if action == "opt_in":
        opt_in_phone(unit.conn, text.number, source="sms", message_id=text.message_id, now=unit.now)
        if not (unit.provider_confirms and _TWILIO_OPT_IN.fullmatch(body)):
            _to_number(unit, text, _consent_text(site, "opt_in_confirm", language), "opt_in_confirm")
        return
    if action == "help":
        _to_number(unit, text, _consent_text(site, "help", language), "help")
        return
    unit.task(
        text,
        queue="general",
        kind="unknown_sender",
        title="Text from a number not on file",
        priority=4,
        detail={"from": text.number, "media": text.num_media},
    )
    since = unit.now - timedelta(days=1)
    if (
        suppressed
        or unit.conn.execute(_RECENT_UNKNOWN_REPLY, {"number": text.number, "since": since}).first()
    ):
        return  # opted out, or told already today
    _to_number(unit, text, _consent_text(site, "unknown_sender", language), "unknown_sender")


def _to_number(unit: _Unit, text: _Text, body: str, kind: str) -> None:
    assert text.site is not None
    unit.outgoing.append(
        prepare_to_number(unit.conn, site=text.site, to=text.number, body=body, kind=kind, now=unit.now)
    )


def fallback(conn: Connection, message_id: int, now: datetime) -> list[int]:
    """A text that could not be handled goes to a person (a general task) and the patient is told so, once;
    the text is marked processed. Returns the reply to deliver (if any)."""
    texts = _load(conn, [message_id])
    if not texts:
        return []
    unit = _Unit(conn, now, True)
    _find_patients(unit, texts)
    text = texts[0]
    if text.site is not None:
        unit.task(
            text,
            queue="general",
            kind="unprocessed",
            title="Message could not be handled automatically",
            priority=2,
        )
        if text.patient is not None:
            body = _consent_text(text.site, "handed_to_person", text.patient.language)
            unit.reply(text, body, "reply")
    mark = {
        "b_id": message_id,
        "b_now": now,
        "b_patient": text.patient.id if text.patient else None,
        "b_site": text.site.id if text.site else None,
        "b_conversation": None,
    }
    conn.execute(_MARK_PROCESSED, [mark])
    return unit.outgoing
