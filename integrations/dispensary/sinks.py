"""Signals out to the dispensary record: a signed webhook and FHIR sinks with cursors, dead letters, exports.

Each sink keeps its own row in ``sink_cursor`` (the id of the last signal it delivered), so a sink that is
down loses nothing and resumes where it stopped. A batch is retried with exponential backoff on 5xx and
timeouts; after ``max_attempts`` its signals go to ``dead_letter`` and the cursor moves on. Staff replay
dead letters later. A short lease on the cursor row keeps two processes from pushing the same sink at
once, so a receiver that dedupes by signal id (or FHIR identifier) sees every signal exactly once.

Exceptions::

    SinkError                   (retryable: bool)
     ├── SinkUnavailable        5xx, 408, 429, timeout, connection refused: try again later
     ├── SinkRejected           any other 4xx: the same batch will not be taken
     └── SinkNotConfigured      the sink's URL or secret is not set

    (integrations.fhir.client.FhirError is handled the same way, by its ``retryable`` flag.)
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO

import aiohttp
from pydantic import SecretStr
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, SystemClock
from bot.db.audit import csv_cell
from bot.db.models import DeadLetter, Signal, SinkCursor
from bot.db.signals import signal_to_dict, signals_since
from integrations.fhir.client import FhirError, FhirSink

__all__ = [
    "EXPORT_FIELDS",
    "SINKS",
    "ExportReport",
    "PushReport",
    "Sink",
    "SinkError",
    "SinkNotConfigured",
    "SinkRejected",
    "SinkUnavailable",
    "WebhookSink",
    "configured_sinks",
    "export_signals",
    "export_text",
    "make_sink",
    "push_configured_sinks",
    "push_signals",
    "replay_dead_letters",
    "sign",
    "verify_signature",
]

_LOGGER = logging.getLogger(__name__)


class SinkSettings(Protocol):
    """The settings the sinks read (``bot.settings.Settings`` has them)."""

    @property
    def signal_webhook_url(self) -> str: ...
    @property
    def signal_webhook_secret(self) -> SecretStr: ...
    @property
    def fhir_base_url(self) -> str: ...
    @property
    def instance_name(self) -> str: ...


SINKS: tuple[str, ...] = ("webhook", "fhir")
EXPORT_FIELDS: tuple[str, ...] = (
    "id",
    "patient_id",
    "prescription_id",
    "site_id",
    "kind",
    "value",
    "source",
    "source_message_id",
    "occurred_at",
    "created_at",
)
_RETRY_STATUSES = frozenset({408, 429})
Sleep = Callable[[float], Awaitable[None]]


class SinkError(Exception):
    """A sink did not take a batch."""

    retryable = False


class SinkUnavailable(SinkError):
    """The receiver is down, slow or overloaded; the same batch may succeed later."""

    retryable = True


class SinkRejected(SinkError):
    """The receiver refused the batch (4xx); resending it unchanged will not help."""


class SinkNotConfigured(SinkError):
    """The sink's settings (URL, secret) are missing; the message names the variable."""


# --- signatures ------------------------------------------------------------------------------------------


def _text(body: bytes | str) -> str:
    return body.decode("utf-8") if isinstance(body, bytes) else body


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``X-Midbot-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    message = f"{timestamp}.{_text(body)}".encode()
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """Check a webhook delivery as a receiver would: a fresh timestamp and a matching signature.

    Args:
        secret: the shared secret (MIDBOT_SIGNAL_WEBHOOK_SECRET).
        timestamp: the ``X-Midbot-Timestamp`` header (unix seconds).
        body: the raw request body, exactly as received.
        header: the ``X-Midbot-Signature`` header.
        tolerance: how many seconds the timestamp may differ from now (replay window).
        now: the current unix time (defaults to the system clock).

    Returns:
        True only when the timestamp is within ``tolerance`` and the signature matches (constant time).
    """
    try:
        sent = int(str(timestamp))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if not secret or abs(current - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), header or "")


# --- sinks -----------------------------------------------------------------------------------------------


class Sink(Protocol):
    """A signal destination: build a payload for a batch (may read the DB), then deliver it (HTTP)."""

    name: str

    async def prepare(self, session: AsyncSession, signals: Sequence[Signal]) -> Any:
        """Build the payload for a batch of signals."""
        ...

    async def deliver(self, payload: Any) -> None:
        """Send the payload; raise an error with ``retryable`` set when it was not taken."""
        ...


class WebhookSink:
    """POSTs ``{"signals": [...]}`` to a URL, signed with HMAC-SHA256 over ``f"{timestamp}.{body}"``."""

    name = "webhook"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now

    async def prepare(self, session: AsyncSession, signals: Sequence[Signal]) -> bytes:
        """The JSON body: the signals in their export shape, oldest first."""
        body = {"signals": [signal_to_dict(s) for s in signals]}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    async def deliver(self, payload: bytes) -> None:
        """POST the body, signed with a fresh timestamp on every attempt."""
        timestamp = int(self._now())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "midbot-signals/1",
            "X-Midbot-Timestamp": str(timestamp),
            "X-Midbot-Signature": sign(self._secret, timestamp, payload),
        }
        try:
            async with self._http.post(
                self._url, data=payload, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SinkUnavailable(f"webhook unreachable: {type(exc).__name__}") from None
        if status >= 500 or status in _RETRY_STATUSES:
            raise SinkUnavailable(f"webhook answered {status}")
        if status >= 400:
            raise SinkRejected(f"webhook refused the batch: {status}")


def configured_sinks(settings: SinkSettings) -> list[str]:
    """The sinks whose URL is set, in SINKS order."""
    urls = {"webhook": settings.signal_webhook_url, "fhir": settings.fhir_base_url}
    return [name for name in SINKS if urls[name]]


def make_sink(name: str, http: aiohttp.ClientSession, settings: SinkSettings) -> Sink:
    """Build a sink from settings.

    Raises:
        ValueError: an unknown sink name.
        SinkNotConfigured: its URL (or the webhook secret) is not set.
    """
    if name == "webhook":
        if not settings.signal_webhook_url:
            raise SinkNotConfigured("MIDBOT_SIGNAL_WEBHOOK_URL is not set")
        secret = settings.signal_webhook_secret.get_secret_value()
        if not secret:
            raise SinkNotConfigured("MIDBOT_SIGNAL_WEBHOOK_SECRET is not set (deliveries must be signed)")
        return WebhookSink(http, settings.signal_webhook_url, secret)
    if name == "fhir":
        if not settings.fhir_base_url:
            raise SinkNotConfigured("MIDBOT_FHIR_BASE_URL is not set")
        return FhirSink(http, settings.fhir_base_url)
    raise ValueError(f"sink: unknown sink {name!r} (expected one of {', '.join(SINKS)})")


# --- pushing ---------------------------------------------------------------------------------------------


@dataclass
class PushReport:
    """What one run of a sink did."""

    sink: str
    sent: int = 0
    batches: int = 0
    attempts: int = 0
    dead_lettered: int = 0
    last_signal_id: int = 0
    skipped: str = ""
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI prints it)."""
        return asdict(self)


@dataclass(frozen=True)
class _Retry:
    sleep: Sleep
    max_attempts: int
    backoff: float
    max_backoff: float


async def _deliver_with_retry(sink: Sink, payload: Any, retry: _Retry) -> tuple[int, str | None]:
    """Deliver with exponential backoff; returns (attempts made, last error or None on success)."""
    for attempt in range(1, retry.max_attempts + 1):
        try:
            await sink.deliver(payload)
            return attempt, None
        except (SinkError, FhirError) as exc:
            error = str(exc)
            _LOGGER.warning("sink %s attempt %d failed: %s", sink.name, attempt, error)
            if not exc.retryable or attempt == retry.max_attempts:
                return attempt, error
        await retry.sleep(min(retry.backoff * 2 ** (attempt - 1), retry.max_backoff))
    return retry.max_attempts, "no attempt made"


def _insert_for(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _owner(settings: SinkSettings) -> str:
    base = settings.instance_name or socket.gethostname()
    return f"{base}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


async def _claim(session: AsyncSession, sink: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Make sure the cursor row exists, then take (or renew) its lease if it is free or expired."""
    await session.execute(
        _insert_for(session)(SinkCursor)
        .values(sink=sink, last_signal_id=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["sink"])
    )
    result = await session.execute(
        update(SinkCursor)
        .where(
            SinkCursor.sink == sink,
            or_(
                SinkCursor.lease_owner.is_(None),
                SinkCursor.lease_owner == owner,
                SinkCursor.lease_expires_at < now,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def _release(session: AsyncSession, sink: str, owner: str) -> None:
    await session.execute(
        update(SinkCursor)
        .where(SinkCursor.sink == sink, SinkCursor.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def _advance(
    session: AsyncSession, sink: str, owner: str, last_id: int, now: datetime, ttl: timedelta
) -> bool:
    """Move the cursor to ``last_id`` (and renew the lease) only while we still hold the lease."""
    result = await session.execute(
        update(SinkCursor)
        .where(SinkCursor.sink == sink, SinkCursor.lease_owner == owner)
        .values(last_signal_id=last_id, lease_expires_at=now + ttl, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def _bury(
    session: AsyncSession, sink: str, signal_ids: Sequence[int], attempts: int, error: str
) -> None:
    """Put signals into the dead-letter table (or bump the row when one is already there)."""
    existing = {
        d.signal_id: d
        for d in await session.scalars(
            select(DeadLetter).where(DeadLetter.sink == sink, DeadLetter.signal_id.in_(signal_ids))
        )
    }
    for signal_id in signal_ids:
        row = existing.get(signal_id)
        if row is None:
            session.add(
                DeadLetter(
                    sink=sink, signal_id=signal_id, attempts=attempts, last_error=error[:500], status="dead"
                )
            )
        else:
            row.attempts += attempts
            row.last_error = error[:500]
            row.status = "dead"


async def _next_batch(
    maker: async_sessionmaker[AsyncSession], sink: Sink, batch_size: int
) -> tuple[list[int], Any]:
    async with maker() as session:
        cursor = await session.get(SinkCursor, sink.name)
        since = cursor.last_signal_id if cursor else 0
        signals = await signals_since(session, since_id=since, limit=batch_size)
        if not signals:
            return [], None
        return [s.id for s in signals], await sink.prepare(session, signals)


async def push_signals(
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    settings: SinkSettings,
    *,
    sink: str | Sink,
    sleep: Sleep = asyncio.sleep,
    batch_size: int = 200,
    max_attempts: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    lease_seconds: int = 300,
    clock: Clock | None = None,
) -> PushReport:
    """Run one sink until it has caught up with the newest signal.

    Args:
        sessionmaker: opens one short session per step; no transaction is held across an HTTP call.
        http: the app's shared client session.
        settings: for the sink's URL and secret, and the instance name in the lease.
        sink: "webhook", "fhir", or a Sink object (tests, custom receivers).
        sleep: awaited between retries (tests pass a fake that records the delays).
        batch_size: signals per delivery.
        max_attempts: deliveries per batch before its signals are dead-lettered.
        backoff: the first retry delay in seconds; doubled each time up to ``max_backoff``.
        lease_seconds: how long the cursor lease lasts without renewal (renewed after each batch).
        clock: the time source for the lease.

    Returns:
        A PushReport; ``skipped`` is set when another process holds the sink's lease.

    Raises:
        SinkNotConfigured: the sink's URL or secret is missing.
        ValueError: an unknown sink name.
    """
    target = make_sink(sink, http, settings) if isinstance(sink, str) else sink
    clock = clock or SystemClock()
    ttl = timedelta(seconds=lease_seconds)
    retry = _Retry(sleep, max_attempts, backoff, max_backoff)
    report = PushReport(sink=target.name)
    owner = _owner(settings)
    async with sessionmaker.begin() as session:
        if not await _claim(session, target.name, owner, clock.now(), ttl):
            report.skipped = "another process is pushing this sink"
            _LOGGER.info("sink %s: lease held elsewhere, skipping", target.name)
            return report
    try:
        await _push_loop(sessionmaker, target, owner, batch_size, retry, ttl, clock, report)
    finally:
        async with sessionmaker.begin() as session:
            await _release(session, target.name, owner)
    return report


async def _push_loop(
    maker: async_sessionmaker[AsyncSession],
    sink: Sink,
    owner: str,
    batch_size: int,
    retry: _Retry,
    ttl: timedelta,
    clock: Clock,
    report: PushReport,
) -> None:
    while True:
        ids, payload = await _next_batch(maker, sink, batch_size)
        if not ids:
            return
        attempts, error = await _deliver_with_retry(sink, payload, retry)
        report.attempts += attempts
        report.batches += 1
        async with maker.begin() as session:
            if error is not None:
                await _bury(session, sink.name, ids, attempts, error)
                report.dead_lettered += len(ids)
                report.errors.append(error)
            if not await _advance(session, sink.name, owner, ids[-1], clock.now(), ttl):
                # Lost the lease (we were too slow): leave the rest to whoever holds it now.
                _LOGGER.warning("sink %s: lease lost after signal %s", sink.name, ids[-1])
                report.skipped = "lease lost"
                return
        if error is None:
            report.sent += len(ids)
        report.last_signal_id = ids[-1]
        _LOGGER.info("sink %s: delivered up to signal %s (%s)", sink.name, ids[-1], error or "ok")


async def replay_dead_letters(
    sessionmaker: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    settings: SinkSettings,
    *,
    sink: str | Sink,
    dead_letter_ids: Sequence[int] | None = None,
    sleep: Sleep = asyncio.sleep,
    batch_size: int = 200,
    max_attempts: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
) -> PushReport:
    """Re-send a sink's dead letters (all, or the given ids); delivered ones become ``replayed``.

    Receivers dedupe by signal id, so a replay after a partial success is harmless.
    """
    target = make_sink(sink, http, settings) if isinstance(sink, str) else sink
    retry = _Retry(sleep, max_attempts, backoff, max_backoff)
    report = PushReport(sink=target.name)
    after = 0
    while True:
        async with sessionmaker() as session:
            query = select(DeadLetter).where(
                DeadLetter.sink == target.name, DeadLetter.status == "dead", DeadLetter.id > after
            )
            if dead_letter_ids is not None:
                query = query.where(DeadLetter.id.in_(list(dead_letter_ids)))
            letters = list(await session.scalars(query.order_by(DeadLetter.id).limit(batch_size)))
            if not letters:
                return report
            signals = list(
                await session.scalars(
                    select(Signal).where(Signal.id.in_([d.signal_id for d in letters])).order_by(Signal.id)
                )
            )
            payload = await target.prepare(session, signals)
        after = letters[-1].id
        attempts, error = await _deliver_with_retry(target, payload, retry)
        report.attempts += attempts
        report.batches += 1
        await _settle(sessionmaker, [d.id for d in letters], attempts, error)
        if error is None:
            report.sent += len(signals)
            report.last_signal_id = max(report.last_signal_id, signals[-1].id if signals else 0)
        else:
            report.errors.append(error)


async def _settle(
    maker: async_sessionmaker[AsyncSession], letter_ids: list[int], attempts: int, error: str | None
) -> None:
    async with maker.begin() as session:
        for letter in await session.scalars(select(DeadLetter).where(DeadLetter.id.in_(letter_ids))):
            letter.attempts += attempts
            if error is None:
                letter.status = "replayed"
            else:
                letter.last_error = error[:500]


# --- export ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportReport:
    """How many signals an export wrote, and the id to resume from next time."""

    count: int
    last_id: int


def _csv_row(signal: dict[str, Any]) -> list[str]:
    row = dict(signal)
    row["value"] = json.dumps(row["value"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return [csv_cell(row[name]) for name in EXPORT_FIELDS]  # formula-like text neutralised (OWASP)


async def export_signals(
    session: AsyncSession,
    out: TextIO,
    *,
    fmt: str = "ndjson",
    since_id: int = 0,
    since_time: datetime | None = None,
    site_id: str | None = None,
    page_size: int = 1000,
) -> ExportReport:
    """Write signals after a watermark as NDJSON (one object per line) or CSV (with a header row).

    Returns:
        The count written and the last id (``since_id`` when nothing was new), to pass as the next
        ``--since``.

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in ("ndjson", "csv"):
        raise ValueError(f"format: unknown format {fmt!r} (expected ndjson or csv)")
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_FIELDS)
    count, last_id = 0, since_id
    while True:
        page = await signals_since(
            session, since_id=last_id, since_time=since_time, site_id=site_id, limit=page_size
        )
        for signal in page:
            data = signal_to_dict(signal)
            if writer is not None:
                writer.writerow(_csv_row(data))
            else:
                out.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += len(page)
        if len(page) < page_size:
            return ExportReport(count, page[-1].id if page else last_id)
        last_id = page[-1].id


def export_text(signals: Sequence[Signal], fmt: str = "ndjson") -> str:
    """Signals rendered as NDJSON or CSV text (for an API download of one page)."""
    out = io.StringIO()
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        writer.writerows(_csv_row(signal_to_dict(s)) for s in signals)
    else:
        out.writelines(json.dumps(signal_to_dict(s), separators=(",", ":")) + "\n" for s in signals)
    return out.getvalue()


# --- background jobs -------------------------------------------------------------------------------------


async def push_configured_sinks(
    sessionmaker: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession, settings: SinkSettings
) -> list[PushReport]:
    """One scheduler tick: push every configured sink; a broken one is logged, not raised."""
    reports = []
    for name in configured_sinks(settings):
        try:
            reports.append(await push_signals(sessionmaker, http, settings, sink=name))
        except SinkNotConfigured as exc:
            _LOGGER.warning("sink %s not pushed: %s", name, exc)
        except Exception:  # a bug in one sink must not stop the others or the scheduler
            _LOGGER.exception("sink %s push failed", name)
    return reports
