"""The what-if run: patients through the real planner, dispatcher, dialogs and task routing on a simulated clock.

Nothing here re-implements a rule. The clock is a ``FixedClock`` that jumps from one moment something happens to
the next (an outreach row falls due, a dialog step times out, a patient's reply arrives, a refill is dispensed,
the nightly re-plan), and at each moment the production pieces run as ``midbot serve`` runs them:

* ``scheduler.planner.replan`` plans the outreach (nightly, and after each new fill, as a dispensary feed would);
* ``scheduler.dispatcher.Dispatcher`` with ``bot.sms.outreach.ChannelOutreachSender`` applies consent, quiet
  hours, caps and bundling and renders each text with ``render_outreach`` (the code `programs preview` uses);
* ``bot.sms.handling.process_batch`` handles each reply (consent keywords, dialogs, tasks, signals), and
  ``bot.sms.dialogs.run_timeouts`` the unanswered steps (follow-ups, "unreachable" tasks);
* ``bot.db.records.import_fills`` records the refill a confirmed reminder leads to, a day later.

The provider is ``SimProvider``: every text is accepted and marked delivered through the real status path,
and nothing leaves the process. Patients answer as ``bot.sim.behaviour`` says, each with their own seeded
random source, so a run is the same for the same seed. Run it against a store you can throw away.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import FixedClock
from bot.db.models import Conversation, Fill, Message, Outreach, Patient, Prescription, Signal, Site
from bot.db.records import FillIn, import_fills
from bot.db.session import make_sessionmaker
from bot.db.worker import DbWorker, Priority
from bot.settings import Settings
from bot.sim.behaviour import Prompt, Rates, answer_for, patient_rng
from bot.sms.channel import Channel
from bot.sms.delivery import Deliverer
from bot.sms.dialogs import run_timeouts
from bot.sms.handling import fallback, process_batch
from bot.sms.outreach import ChannelOutreachSender
from bot.sms.statuses import StatusUpdate, apply_statuses
from integrations.twilio.client import ProviderMessage, TwilioClient
from integrations.twilio.segments import segment_info
from scheduler.dispatcher import Dispatcher
from scheduler.planner import replan
from scheduler.rules import RateLimiter
from scheduler.runout import FillRecord, days_left

__all__ = ["SimProvider", "SimSpec", "SimStats", "Simulation"]

_LOGGER = logging.getLogger(__name__)
_PENDING = ("planned", "deferred")
REFILL_AFTER = timedelta(days=1)  # a confirmed refill is dispensed the next day (assumption)
REPLAN_AT_HOUR = 2  # the nightly dispensary feed, local time of the first site
FULL_REPLAN_EVERY = timedelta(days=7)  # everyone re-planned (the planner's horizon is 35 days)
_MAX_STEPS = 2_000_000
_RANK = {"fill": 0, "reply": 1}  # at the same moment, a dispense is recorded before a text is read


@dataclass(frozen=True)
class SimSpec:
    """What to simulate.

    Attributes:
        start, end: the simulated period (aware); nothing happens at or after ``end``.
        seed: the seed of every patient's random source.
        rates: how patients answer.
        site_ids: the sites whose patients are texted (None: every site of the store).
        refills: confirmed refills are dispensed (a new fill, then a re-plan) a day later.
        scripted: texts patients send whatever the rates say, as (time, patient id, body): they go the same
            way as every reply (the demo uses a few so that each queue shows an example).
    """

    start: datetime
    end: datetime
    seed: int = 1
    rates: Rates = field(default_factory=Rates)
    site_ids: tuple[str, ...] | None = None
    refills: bool = True
    scripted: tuple[tuple[datetime, str, str], ...] = ()


@dataclass
class SimStats:
    """What the run did, for the log and the command's own checks (the report reads the store)."""

    steps: int = 0
    replies: int = 0
    fills: int = 0
    replans: int = 0


class SimProvider(TwilioClient):
    """Twilio as a simulation sees it: each text is accepted at once, with a sid that follows from the order.

    It never calls ``TwilioClient.__init__``: there is no HTTP session, and nothing is sent anywhere.
    """

    def __init__(self, clock: FixedClock) -> None:  # noqa: D107 - no HTTP client on purpose
        self._clock = clock
        # Sids are unique within the store and the same on every run: the period's start, then a count (a copy
        # of a store that was simulated before holds the sids of that period).
        self._prefix = f"SM{int(clock.now().timestamp()):010d}"
        self._count = itertools.count(1)
        self._messages: dict[str, ProviderMessage] = {}
        self.fresh: list[ProviderMessage] = []  # sent since the simulation last looked

    async def send(
        self,
        *,
        to: str,
        body: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
    ) -> ProviderMessage:
        sid = f"{self._prefix}{next(self._count):022d}"
        message = ProviderMessage(
            sid=sid,
            status="queued",
            to=to,
            from_=from_ or messaging_service_sid or "",
            body=body,
            error_code=None,
            date_created=self._clock.now(),
            num_segments=segment_info(body).segments,
        )
        self._messages[sid] = message
        self.fresh.append(message)
        return message

    async def fetch(self, sid: str) -> ProviderMessage:
        return self._messages[sid]

    async def find_sent(
        self, *, to: str, body: str, since: datetime, from_: str | None = None
    ) -> ProviderMessage | None:
        found = [m for m in self._messages.values() if m.to == to and m.body == body]
        return found[-1] if found else None

    async def list_messages(self, **_filters: Any) -> list[ProviderMessage]:
        return list(reversed(self._messages.values()))

    async def close(self) -> None:
        return None

    def take(self) -> list[ProviderMessage]:
        """The texts sent since the last call, in sending order."""
        fresh, self.fresh = self.fresh, []
        return fresh


@dataclass(order=True)
class _Event:
    at: datetime
    rank: int
    patient_id: str
    seq: int
    kind: str = field(compare=False)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def _always_refilled() -> Callable[[], float]:
    """A monotonic clock for the rate limiter that always reads a day later: a simulated sender never waits.

    Spreading a burst at the site's send rate moves texts by seconds, which no daily figure can show.
    """
    ticks = itertools.count(0, 86_400)
    return lambda: float(next(ticks))


class Simulation:
    """One simulated period on one store (which it changes: give it a copy)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, spec: SimSpec) -> None:
        if spec.end <= spec.start:
            raise ValueError("end must be after start")
        self.spec = spec
        self.stats = SimStats()
        self.clock = FixedClock(spec.start)
        self._settings = settings
        self._engine = engine
        self._sm: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._rngs: dict[str, Any] = {}
        self._waiting: set[str] = set()  # patients whose reply is on its way
        self._answered: set[int] = set()  # conversations a patient answered (they are engaged)
        self._last_signal = 0
        self._sites: list[str] = []
        self._dirty: set[str] = set()  # patients with a fill the planner has not seen yet
        self._due: datetime | None = None
        self._expiry: datetime | None = None
        self._zone = ZoneInfo("UTC")

    async def run(self) -> SimStats:
        """Simulate from ``spec.start`` to ``spec.end``; the store then holds what happened."""
        db = DbWorker(self._engine)
        provider = SimProvider(self.clock)
        channel = Channel(settings=self._settings, clock=self.clock, client=provider)
        deliverer = Deliverer(channel, db, self.clock, linger=0.0)
        sender = ChannelOutreachSender(self._sm, channel, self.clock, db, deliverer)
        dispatcher = Dispatcher(
            self._sm,
            sender,
            self.clock,
            owner="simulation",
            batch_size=500,
            concurrency=1,  # one patient at a time: the same order, hence the same ids, on every run
            registry=CollectorRegistry(),
            rate_limiter=RateLimiter(monotonic=_always_refilled()),
            db=db,
        )
        self._db, self._provider, self._deliverer, self._dispatcher = db, provider, deliverer, dispatcher
        try:
            await self._prepare()
            await self._loop()
        finally:
            await deliverer.close()
            await db.close()
        return self.stats

    # ---- the clock ----------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        at, next_plan, full_plan = self.spec.start, self.spec.start, self.spec.start
        for _ in range(_MAX_STEPS):
            if at >= next_plan:
                # Nightly, the dispensary feed's new fills are planned; weekly, everyone (the horizon rolls on).
                everyone = at >= full_plan
                await self._replan(at, None if everyone else self._dirty)
                self._dirty = set()
                full_plan = at + FULL_REPLAN_EVERY if everyone else full_plan
                next_plan = self._next_plan(at)
                self._due, self._expiry = await self._db.run(_moments)
            await self._step(at)
            self.stats.steps += 1
            following = await self._next_moment(at, next_plan)
            if following >= self.spec.end:
                return
            at = following
            self.clock.set(at)
        raise RuntimeError("simulation did not finish")  # a rule that never lets a row go: a bug

    def _next_plan(self, at: datetime) -> datetime:
        local = at.astimezone(self._zone)
        day = local.date() + timedelta(days=1 if local.hour >= REPLAN_AT_HOUR else 0)
        return datetime(day.year, day.month, day.day, REPLAN_AT_HOUR, tzinfo=self._zone).astimezone(at.tzinfo)

    async def _next_moment(self, at: datetime, next_plan: datetime) -> datetime:
        self._due, self._expiry = await self._db.run(_moments)
        moments = [m for m in (self._due, self._expiry, next_plan) if m is not None]
        if self._events:
            moments.append(self._events[0].at)
        # Every candidate is in the future once a step ran (due rows went out or moved on); never stand still.
        return max(min(moments), at + timedelta(seconds=1))

    async def _step(self, at: datetime) -> None:
        """One moment. Replies, fills and time-outs never add outreach rows or earlier expiries, so the due time
        and the expiry read before the step still say whether the dispatcher and the time-outs have work."""
        while self._events and self._events[0].at <= at:
            event = heapq.heappop(self._events)
            if event.kind == "reply":
                await self._reply(event, at)
            else:
                await self._fill(event, at)
        if self._expiry is not None and self._expiry <= at:
            outgoing: list[int] = []
            while batch := await self._db.run(run_timeouts, at):
                outgoing += batch
            if outgoing:
                await self._deliverer.deliver(outgoing)
        if self._due is not None and self._due <= at:
            await self._dispatcher.run_once(now=at)
        await self._after(at)

    def _push(self, at: datetime, kind: str, patient_id: str, **data: Any) -> None:
        if at < self.spec.end:
            heapq.heappush(self._events, _Event(at, _RANK[kind], patient_id, next(self._seq), kind, data))

    # ---- setting up -------------------------------------------------------------------------------------

    async def _prepare(self) -> None:
        async with self._sm.begin() as session:
            sites = list(await session.scalars(select(Site.id).order_by(Site.id)))
            wanted = list(self.spec.site_ids) if self.spec.site_ids is not None else sites
            missing = sorted(set(wanted) - set(sites))
            if missing:
                raise LookupError(missing[0])
            self._sites = wanted
            zone = (
                await session.scalar(select(Site.time_zone).where(Site.id == wanted[0])) if wanted else None
            )
            self._zone = ZoneInfo(zone or "UTC")
            if set(wanted) != set(sites):
                await session.execute(_out_of_scope(wanted))
            self._last_signal = int(await session.scalar(select(func.max(Signal.id))) or 0)
        for at, patient_id, body in self.spec.scripted:
            self._push(at, "reply", patient_id, body=body, conversation=None)

    async def _replan(self, at: datetime, patient_ids: set[str] | None) -> None:
        if patient_ids is not None and not patient_ids:
            return
        async with self._sm.begin() as session:
            if patient_ids is not None or len(self._sites) != 1:
                await replan(session, patient_ids=patient_ids, now=at)
            else:
                await replan(session, patient_ids=None, now=at, site_id=self._sites[0])
        self.stats.replans += 1

    # ---- what patients do -------------------------------------------------------------------------------

    async def _after(self, at: datetime) -> None:
        """Texts just sent: delivered (the status path), then each patient who got a question may answer."""
        sent = self._provider.take()
        if not sent:
            return
        updates = [StatusUpdate(m.sid, "delivered", None, at) for m in sent]
        phones = list(dict.fromkeys(m.to for m in sent))
        prompts = await self._db.run_at(
            Priority.ANSWER, lambda conn: _delivered(conn, updates, phones, self._sites, at)
        )
        for patient_id, conversation_id, prompt in prompts:
            if patient_id in self._waiting:
                continue
            engaged = Prompt(
                prompt.flow,
                prompt.state,
                prompt.language,
                conversation_id in self._answered,
                prompt.days_left,
            )
            answer = answer_for(engaged, self.spec.rates, self._rng(patient_id))
            if answer is not None:
                self._waiting.add(patient_id)
                self._push(
                    at + answer.delay, "reply", patient_id, body=answer.body, conversation=conversation_id
                )

    def _rng(self, patient_id: str) -> Any:
        rng = self._rngs.get(patient_id)
        if rng is None:
            rng = self._rngs[patient_id] = patient_rng(self.spec.seed, patient_id)
        return rng

    async def _reply(self, event: _Event, at: datetime) -> None:
        self._waiting.discard(event.patient_id)
        if event.data.get("conversation") is not None:
            self._answered.add(int(event.data["conversation"]))
        body, since = str(event.data["body"]), self._last_signal
        # An answer goes to the number that asked; a text of the patient's own goes to their pharmacy.
        own = event.data.get("conversation") is None
        try:
            handled = await self._db.run(_handle_reply, event.patient_id, body, at, since, own)
        except Exception:  # rolled back; as the inbox does, the text still reaches a person
            _LOGGER.exception("a simulated reply of patient %s could not be handled", event.patient_id)
            handled = await self._db.run(_handle_reply, event.patient_id, body, at, since, own, True)
        if handled is None:
            return
        outgoing, refills, self._last_signal = handled
        self.stats.replies += 1
        if outgoing:
            await self._deliverer.deliver(outgoing)
        for patient_id, prescription_id in refills if self.spec.refills else []:
            self._push(at + REFILL_AFTER, "fill", patient_id, prescription=prescription_id)

    async def _fill(self, event: _Event, at: datetime) -> None:
        """The dispensary dispenses the refill (same supply and copay as last time) and the planner follows."""
        prescription_id = str(event.data["prescription"])
        async with self._sm.begin() as session:
            last = await session.scalar(
                select(Fill)
                .where(Fill.prescription_id == prescription_id)
                .order_by(Fill.dispensed_on.desc(), Fill.id.desc())
                .limit(1)
            )
            status = await session.scalar(
                select(Prescription.status).where(Prescription.id == prescription_id)
            )
            if last is None or status != "active":
                return
            day = at.astimezone(self._zone).date()
            row = FillIn(
                fill_id=f"sim-{prescription_id}-{day.isoformat()}"[:64],
                prescription_id=prescription_id,
                dispensed_on=day,
                days_supply=last.days_supply,
                quantity=last.quantity,
                copay=Decimal(last.copay_cents) / 100,
            )
            result = await import_fills(session, [row], store_ids=True)
        # The nightly re-plan takes the new fill in, as it takes in a dispensary feed.
        self.stats.fills += len(result.affected_patient_ids)
        self._dirty |= set(result.affected_patient_ids)


def _out_of_scope(site_ids: list[str]) -> Any:
    """Pending outreach of the sites not simulated is set aside, so only the chosen sites' patients are texted."""
    in_scope = select(Prescription.id).where(Prescription.site_id.in_(site_ids))
    scoped_patients = select(Patient.id).where(Patient.site_id.in_(site_ids))
    return (
        update(Outreach)
        .where(
            Outreach.state.in_((*_PENDING, "claimed", "sending")),
            (Outreach.prescription_id.not_in(in_scope))
            | (Outreach.prescription_id.is_(None) & Outreach.patient_id.not_in(scoped_patients)),
        )
        .values(state="cancelled", reason="not_simulated", lease_owner=None)
    )


_PATIENTS_BY_PHONE = select(Patient.id, Patient.phone, Patient.language, Patient.site_id, Patient.time_zone)


def _open_prompts(
    conn: Connection, phones: list[str], site_ids: list[str], at: datetime
) -> list[tuple[str, int, Prompt]]:
    """For each number just texted: the patient with an open dialog step there, and that step."""
    patients = conn.execute(_PATIENTS_BY_PHONE.where(Patient.phone.in_(phones)).order_by(Patient.id)).all()
    by_id = {p.id: p for p in patients if p.site_id in site_ids}
    if not by_id:
        return []
    open_rows = conn.execute(
        select(
            Conversation.id,
            Conversation.patient_id,
            Conversation.flow,
            Conversation.state,
            Conversation.prescription_id,
        )
        .where(Conversation.patient_id.in_(list(by_id)), Conversation.status == "open")
        .order_by(Conversation.patient_id, Conversation.id.desc())
    ).all()
    seen_phones: set[str] = set()
    out: list[tuple[str, int, Prompt]] = []
    for row in open_rows:
        patient = by_id[row.patient_id]
        if patient.phone in seen_phones:
            continue
        seen_phones.add(patient.phone)
        left = None
        if row.state == "awaiting_days" and row.prescription_id:
            left = _days_left(
                conn, row.prescription_id, at.astimezone(ZoneInfo(patient.time_zone or "UTC")).date()
            )
        prompt = Prompt(row.flow, row.state, patient.language or "en", False, left)
        out.append((row.patient_id, int(row.id), prompt))
    return out


def _days_left(conn: Connection, prescription_id: str, today: date) -> int | None:
    fills = conn.execute(
        select(Fill.dispensed_on, Fill.days_supply).where(Fill.prescription_id == prescription_id)
    ).all()
    return days_left([FillRecord(f.dispensed_on, f.days_supply) for f in fills], today)


def _moments(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """The next pending outreach row's due time and the next dialog step's expiry."""
    due = conn.execute(select(func.min(Outreach.due_at)).where(Outreach.state.in_(_PENDING))).scalar()
    expiry = conn.execute(
        select(func.min(Conversation.expires_at)).where(
            Conversation.status == "open", Conversation.expires_at.is_not(None)
        )
    ).scalar()
    return _aware(due), _aware(expiry)


def _aware(value: datetime | None) -> datetime | None:
    """A Core aggregate skips the column type: SQLite hands back a naive (UTC) value."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _delivered(
    conn: Connection, updates: list[StatusUpdate], phones: list[str], site_ids: list[str], at: datetime
) -> list[tuple[str, int, Prompt]]:
    """Mark the texts delivered (as the carrier's callbacks would), then read what each patient was asked."""
    apply_statuses(conn, updates)
    return _open_prompts(conn, phones, site_ids, at)


_Handled = tuple[list[int], list[tuple[str, str]], int]


def _handle_reply(
    conn: Connection,
    patient_id: str,
    body: str,
    at: datetime,
    since_signal: int,
    to_own_site: bool,
    as_fallback: bool = False,
) -> _Handled | None:
    """Store the patient's text and handle it (the inbox's one implementation), as one unit of work.

    Returns the replies to deliver, the refills the text confirmed (patient, prescription) and the newest
    signal id; None when the patient is gone. ``as_fallback``: hand the text to a person, as the inbox does
    with a text whose handling failed.
    """
    message_id = _store_inbound(conn, patient_id, body, at, to_own_site)
    if message_id is None:
        return None
    if as_fallback:
        outgoing = fallback(conn, message_id, at)
    else:
        outgoing = process_batch(conn, [message_id], at).outgoing
    rows = conn.execute(
        select(Signal.id, Signal.patient_id, Signal.prescription_id, Signal.kind)
        .where(Signal.id > since_signal)
        .order_by(Signal.id)
    ).all()
    refills = [
        (r.patient_id, r.prescription_id) for r in rows if r.kind == "refill_confirmed" and r.prescription_id
    ]
    return outgoing, refills, max([since_signal, *(r.id for r in rows)])


_INSERT_INBOUND = insert(Message).returning(Message.id)


def _store_inbound(
    conn: Connection, patient_id: str, body: str, at: datetime, to_own_site: bool
) -> int | None:
    """The patient's text as the webhook stores it: to the number that texted them last, or to their site's."""
    patient = conn.execute(select(Patient.phone, Patient.site_id).where(Patient.id == patient_id)).first()
    if patient is None:
        return None
    last_from = (
        None
        if to_own_site
        else conn.execute(
            select(Message.from_number)
            .where(Message.to_number == patient.phone, Message.direction == "out")
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        ).scalar()
    )
    site_phone = conn.execute(select(Site.phone).where(Site.id == patient.site_id)).scalar()
    newest = conn.execute(select(func.max(Message.id))).scalar() or 0
    sid = f"SMin{newest + 1:030d}"  # the row's own id: unique, and the same on every run
    values = {
        "direction": "in",
        "kind": "inbound",
        "provider_sid": sid,
        "from_number": patient.phone,
        "to_number": last_from or site_phone or "",
        "body": body,
        "num_media": 0,
        "media": [],
        "status": "received",
        "segments": segment_info(body).segments,
        "cleaned": False,
        "encoding": "",
        "attempts": 0,
        "created_at": at,
    }
    message_id: int = conn.execute(_INSERT_INBOUND, values).scalar_one()
    return message_id
