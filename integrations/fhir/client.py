"""A FHIR R4 sink over aiohttp: posts transaction Bundles of signals (and the messages and tasks behind them).

Exceptions::

    FhirError                 (retryable: bool)
     ├── FhirUnavailable      5xx, 408, 429, timeout, connection refused: try again later
     └── FhirRejected         any other 4xx, or a non-Bundle answer: retrying the same bundle won't help
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Message, Signal, Task
from bot.db.signals import signal_to_dict
from integrations.fhir.resources import (
    PATIENT_SYSTEM,
    bundle_json,
    communication_resource,
    signal_resource,
    task_resource,
    transaction_bundle,
)

__all__ = ["FhirClient", "FhirError", "FhirRejected", "FhirSink", "FhirUnavailable"]

_LOGGER = logging.getLogger(__name__)
_RETRY_STATUSES = frozenset({408, 429})


class FhirError(Exception):
    """The FHIR server did not take a bundle."""

    retryable = False


class FhirUnavailable(FhirError):
    """The server is down, slow or overloaded; the same bundle may succeed later."""

    retryable = True


class FhirRejected(FhirError):
    """The server refused the bundle (4xx); resending it unchanged will not help."""


class FhirClient:
    """Posts transaction Bundles to a FHIR R4 base URL with an injected aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, *, timeout: float = 30.0) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle to the base URL and return the transaction-response Bundle.

        Raises:
            FhirUnavailable: 5xx, 408, 429, a timeout or a connection error.
            FhirRejected: another 4xx, or a 2xx whose body is not a Bundle.
        """
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        try:
            async with self._http.post(
                self._base_url, json=bundle, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise FhirUnavailable(f"FHIR server unreachable: {type(exc).__name__}") from None
        if status >= 500 or status in _RETRY_STATUSES:
            raise FhirUnavailable(f"FHIR server answered {status}")
        if status >= 400:
            raise FhirRejected(f"FHIR server refused the bundle: {status} {_outcome_text(text)}")
        return _response_bundle(text)


def _outcome_text(text: str) -> str:
    """The first diagnostics of an OperationOutcome, if the server sent one (truncated)."""
    try:
        body = json.loads(text)
        issue = (body.get("issue") or [{}])[0]
        return str(issue.get("diagnostics") or issue.get("code") or "")[:200]
    except (ValueError, AttributeError, IndexError):
        return ""


def _response_bundle(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        raise FhirRejected("FHIR server answered with something that is not JSON") from None
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirRejected("FHIR server answered without a transaction-response Bundle")
    return body


class FhirSink:
    """The ``fhir`` signal sink: a batch of signals -> one transaction Bundle -> the FHIR server.

    Each signal becomes an Observation or a Flag; the inbound message a signal came from travels with it
    as a Communication, and the tasks opened from that message as Tasks.
    """

    name = "fhir"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = 30.0,
        patient_system: str = PATIENT_SYSTEM,
    ) -> None:
        self._client = FhirClient(http, base_url, timeout=timeout)
        self._patient_system = patient_system

    async def prepare(self, session: AsyncSession, signals: Sequence[Signal]) -> dict[str, Any]:
        """Build (and validate) the transaction Bundle for a batch of signals."""
        resources = [signal_resource(signal_to_dict(s), patient_system=self._patient_system) for s in signals]
        message_ids = sorted({s.source_message_id for s in signals if s.source_message_id is not None})
        if message_ids:
            messages = await session.scalars(select(Message).where(Message.id.in_(message_ids)))
            resources += [communication_resource(m, patient_system=self._patient_system) for m in messages]
            tasks = await session.scalars(
                select(Task).where(Task.source_message_id.in_(message_ids)).order_by(Task.id)
            )
            resources += [task_resource(t, patient_system=self._patient_system) for t in tasks]
        return bundle_json(transaction_bundle(resources))

    async def deliver(self, payload: dict[str, Any]) -> None:
        """Send the Bundle; raises FhirUnavailable / FhirRejected."""
        await self._client.transaction(payload)
        _LOGGER.info("FHIR transaction of %d entries accepted", len(payload.get("entry", [])))
