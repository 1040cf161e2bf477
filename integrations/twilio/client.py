"""Send and look up SMS through the twilio library's async API, with safe retries.

`TwilioClient` drives ``twilio.rest.Client`` with `_RoutingHttpClient`, an ``AsyncTwilioHttpClient``
that (1) sends every request over the caller's ``aiohttp.ClientSession`` (the library would open one of
its own), (2) sends it to the configured base URL instead of ``https://api.twilio.com`` (so the same code
talks to the local simulator or any Twilio-compatible server) and (3) owns the retry policy, run by
tenacity:

* 429 and 5xx answers are retried with exponential backoff and full jitter, waiting at least the
  server's Retry-After (a Retry-After over a minute is not slept: `TransientSendError` at once); when
  the retries run out, `TransientSendError`.
* A connection that could not be opened (refused, DNS, connect timeout) is retried the same way: the
  request never left.
* A timeout or dropped connection *after* a POST was written raises `UnknownOutcomeError` at once:
  Twilio may have accepted the message, so resending could text the patient twice. The caller
  reconciles with `TwilioClient.find_sent`. GET requests are idempotent and are simply retried.
* Other 4xx answers become `ApiError` (`PermanentSendError` for a send) and are never retried.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
from aiohttp.typedefs import Query
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from integrations.twilio.errors import ApiError, PermanentSendError, TransientSendError, UnknownOutcomeError

__all__ = ["ProviderMessage", "TwilioClient", "DEFAULT_BASE_URL"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.twilio.com"
Sleep = Callable[[float], Awaitable[None]]

_BACKOFF_BASE = 0.5  # seconds; attempt n waits up to base * 2**n
_BACKOFF_CAP = 30.0
_MAX_RETRY_AFTER = 60.0  # a longer Retry-After is handed back to the caller instead of blocking
_RECONCILE_SLACK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    """A message as Twilio reports it."""

    sid: str
    status: str
    to: str
    from_: str
    body: str
    error_code: int | None
    date_created: datetime | None
    num_segments: int


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or bad."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_fields(text: str, status: int) -> tuple[int, str]:
    """Twilio error body ``{"code", "message", ...}`` → (code, message); the status when not JSON."""
    try:
        payload = json.loads(text)
    except ValueError:
        return status, text[:200]
    if not isinstance(payload, dict):
        return status, text[:200]
    code = payload.get("code")
    return (code if isinstance(code, int) else status), str(payload.get("message", ""))


class _RoutingHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """The twilio library's async HTTP client on the caller's session, pointed at ``base_url``, with retries."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout: float,
        max_retries: int,
        sleep: Sleep,
        rng: random.Random,
    ) -> None:
        # pool_connections=False stops the library from opening a ClientSession of its own; the caller's
        # session takes its place in the library's ``session`` attribute (request() below is its only user).
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = session
        self._base_url = base_url.rstrip("/")
        self._max_retries = max_retries
        self._sleep = sleep
        self._rng = rng
        self._window = wait_exponential(multiplier=_BACKOFF_BASE, max=_BACKOFF_CAP)
        # Per request, so the app session's own default timeout does not decide how long a send may take.
        self._timeout = aiohttp.ClientTimeout(total=timeout * 2, connect=timeout, sock_read=timeout)

    def route(self, url: str) -> str:
        """Rewrite a Twilio API URL (any ``*.twilio.com`` host) onto the configured base URL."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        return self._base_url + tail

    def backoff(self, state: RetryCallState) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**(attempt - 1))), but never less than Retry-After."""
        jitter = self._rng.uniform(0.0, self._window(state))
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = error.retry_after if isinstance(error, TransientSendError) else None
        return max(jitter, retry_after or 0.0)

    def _retrying(self, method: str, path: str) -> AsyncRetrying:
        def log_retry(state: RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            _LOGGER.info("twilio %s %s: retry %d in %.2fs", method, path, state.attempt_number, delay)

        return AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self.backoff,
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            before_sleep=log_retry,
            reraise=True,  # callers catch TransientSendError, not tenacity.RetryError
        )

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """One logical request: attempts until a final answer, a permanent error, or retries run out."""
        target = self.route(url)
        path = urlsplit(target).path  # never log the query: it carries phone numbers
        async for attempt in self._retrying(method, path):
            with attempt:
                number = attempt.retry_state.attempt_number
                return await self._attempt(method, target, path, params, data, headers, auth, number)
        raise AssertionError("unreachable: tenacity returns the answer or re-raises the last error")

    async def _attempt(
        self,
        method: str,
        target: str,
        path: str,
        params: dict[str, object] | None,
        data: dict[str, object] | None,
        headers: dict[str, str] | None,
        auth: tuple[str, str] | None,
        number: int,
    ) -> Response:
        """One HTTP exchange: the final response, or TransientSendError (retryable) / UnknownOutcomeError."""
        headers = dict(headers or {})
        if auth:
            # Built by hand: aiohttp.BasicAuth is deprecated in aiohttp 3.14 and absent helpers before it.
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        try:
            async with self.session.request(
                method.upper(),
                target,
                # twilio types its query as dict[str, object] but has serialised every value to str/int.
                params=cast(Query, params),
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                text = await resp.text()
                status, resp_headers = resp.status, resp.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never established: nothing reached Twilio, a retry is safe.
            _LOGGER.warning("twilio %s %s: cannot connect (%s)", method, path, type(exc).__name__)
            raise TransientSendError(
                f"cannot connect to Twilio: {type(exc).__name__}", attempts=number
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            if method.upper() != "GET":
                _LOGGER.warning("twilio %s %s: no answer (%s)", method, path, type(exc).__name__)
                raise UnknownOutcomeError(
                    f"no answer from Twilio after the request was sent ({type(exc).__name__})"
                ) from exc
            raise TransientSendError(f"Twilio read failed: {type(exc).__name__}", attempts=number) from exc
        _LOGGER.debug("twilio %s %s -> %d (attempt %d)", method, path, status, number)
        if status != 429 and status < 500:
            return Response(status, text, resp_headers)
        code, message = _error_fields(text, status)
        raise TransientSendError(
            f"Twilio answered {status} ({code}): {message}",
            status=status,
            code=code,
            attempts=number,
            retry_after=_retry_after(resp_headers),
        )

    async def close(self) -> None:
        """Nothing to release: the session belongs to whoever created it (the library would close it)."""

    async def __aexit__(self, *_exc: object) -> None:
        """As close(): leave the caller's session open."""


def _retryable(exc: BaseException) -> bool:
    """429/5xx/connection failures, unless the server asked for a wait too long to sit through."""
    if not isinstance(exc, TransientSendError):
        return False  # UnknownOutcomeError above all: resending could text the patient twice
    # A long Retry-After is handed back at once rather than parking the caller; it can reschedule.
    return exc.retry_after is None or exc.retry_after <= _MAX_RETRY_AFTER


def _api_error(exc: TwilioException, *, send: bool) -> ApiError:
    status = int(getattr(exc, "status", 0) or 0)
    code = getattr(exc, "code", None)
    message = str(getattr(exc, "msg", "") or getattr(exc, "detail", "") or exc)
    # The library prefixes Twilio's own message with its action ("Unable to create record: ...").
    message = message.split(": ", 1)[1] if message.startswith("Unable to ") and ": " in message else message
    kind = PermanentSendError if send else ApiError
    return kind(int(code) if isinstance(code, int) else status, message, status)


def _provider_message(inst: Any) -> ProviderMessage:
    try:
        segments = int(inst.num_segments or 1)
    except (TypeError, ValueError):
        segments = 1
    created = inst.date_created if isinstance(inst.date_created, datetime) else None
    return ProviderMessage(
        sid=str(inst.sid),
        status=str(inst.status or ""),
        to=str(inst.to or ""),
        from_=str(inst.from_ or ""),
        body=str(inst.body or ""),
        error_code=inst.error_code,
        date_created=created,
        num_segments=segments,
    )


class TwilioClient:
    """Send, fetch and find SMS messages through Twilio's Messages API (or the local simulator).

    It sends over the ``session`` it is given and never closes it: the session's owner (the app's
    HTTP cleanup context, or the CLI command) does. Safe to share across concurrent tasks.

    Args:
        session: the aiohttp session to send over.
        account_sid, auth_token: the Twilio credentials.
        base_url: where the Twilio API lives (the simulator's URL in development and tests).
        timeout: seconds to connect and to wait between bytes of an answer (twice that in all).
        max_retries: further attempts after the first, for 429, 5xx and connection failures.
        sleep, rng: injectable for tests (no real waits, a fixed jitter).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        account_sid: str,
        auth_token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        max_retries: int = 4,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._http = _RoutingHttpClient(
            session=session,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            sleep=sleep,
            rng=rng or random.Random(),
        )
        # environment={}: TWILIO_EDGE/REGION and friends must not re-route what the settings say.
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})

    async def __aenter__(self) -> TwilioClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Kept for callers' ``async with``/``close()``; the session is left open for its owner to close."""
        await self._http.close()

    async def send(
        self,
        *,
        to: str,
        body: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
    ) -> ProviderMessage:
        """Create an outbound SMS.

        Args:
            to: destination, E.164.
            body: the text.
            from_: sending number (E.164); or
            messaging_service_sid: a Messaging Service ("MG...") that picks the sender.
            status_callback: URL Twilio posts delivery status changes to.

        Returns:
            The created message (status queued or accepted).

        Raises:
            PermanentSendError: Twilio refused it (e.g. 21610 opted out, 21211 invalid number).
            TransientSendError: rate limited or unavailable for longer than the retries.
            UnknownOutcomeError: no answer after the request was sent; reconcile with find_sent.
        """
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if from_:
            kwargs["from_"] = from_
        if messaging_service_sid:
            kwargs["messaging_service_sid"] = messaging_service_sid
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            inst = await self._client.messages.create_async(**kwargs)
        except TwilioException as exc:
            raise _api_error(exc, send=True) from None
        message = _provider_message(inst)
        _LOGGER.info("twilio message %s created (%s)", message.sid, message.status)
        return message

    async def fetch(self, sid: str) -> ProviderMessage:
        """The current state of one message.

        Raises:
            ApiError: e.g. 20404 when no such message exists.
            TransientSendError: Twilio unavailable for longer than the retries.
        """
        try:
            inst = await self._client.messages(sid).fetch_async()
        except TwilioException as exc:
            raise _api_error(exc, send=False) from None
        return _provider_message(inst)

    async def find_sent(
        self, *, to: str, body: str, since: datetime, from_: str | None = None
    ) -> ProviderMessage | None:
        """Find a message sent to ``to`` with exactly ``body``, created no earlier than ``since``.

        Used after an `UnknownOutcomeError` to learn whether the send went through. Lists messages
        To=to (and From=from_) with DateSent on or after the day of since - 1 minute and returns the newest whose
        body matches and whose date_created >= since - 1 minute (clock skew), or None.

        Raises:
            ApiError, TransientSendError: as for fetch.
        """
        if since.tzinfo is None:
            raise ValueError("since must be an aware datetime")
        since = since.astimezone(UTC)
        earliest = since - _RECONCILE_SLACK
        candidates = await self.list_messages(to=to, from_=from_, date_sent_after=earliest.date())
        best: ProviderMessage | None = None
        for candidate in candidates:
            if candidate.body != body or candidate.date_created is None or candidate.date_created < earliest:
                continue
            if best is None or candidate.date_created > (best.date_created or earliest):
                best = candidate
        return best

    async def list_messages(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        date_sent_after: date | None = None,
        page_size: int = 100,
        limit: int | None = None,
    ) -> list[ProviderMessage]:
        """Messages of the account, newest first, following Twilio's paging.

        Args:
            to, from_: filter on the destination / sender.
            date_sent_after: only messages sent on or after this day (Twilio's ``DateSent>``).
            page_size: messages per API page.
            limit: stop after this many messages (None: all pages).

        Raises:
            ApiError, TransientSendError: as for fetch.
        """
        filters: dict[str, Any] = {"page_size": page_size}
        for name, value in (
            ("to", to),
            ("from_", from_),
            ("date_sent_after", date_sent_after),
            ("limit", limit),
        ):
            if value is not None:
                filters[name] = value
        try:
            instances = await self._client.messages.list_async(**filters)
        except TwilioException as exc:
            raise _api_error(exc, send=False) from None
        return [_provider_message(inst) for inst in instances]
