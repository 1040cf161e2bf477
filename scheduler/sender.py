"""The sender protocol: how the dispatcher hands due outreach to whoever writes and sends the text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = ["OutreachSender", "SendOutcome", "SendStatus"]

SendStatus = Literal["sent", "failed", "unknown", "retry"]


@dataclass(frozen=True)
class SendOutcome:
    """What became of one send.

    Attributes:
        status: ``sent`` (the provider took it), ``failed`` (it will not go out; ``reason`` says why) or
            ``unknown`` (outcome not known, e.g. a timeout: the rows stay ``sending`` and are reconciled later)
            or ``retry`` (the provider was unavailable: the rows wait ``deferred``/``provider_retry`` and the
            stored text is sent, after reconciling, on a later run until the rows' deadline).
        message_id: the stored outbound Message row, when one was written.
        reason: a provider error code ("21610", "21211") or a short word ("opted_out").
        segments: the text's billed segments (the send rate is counted in segments, as Twilio meters it).
    """

    status: SendStatus
    message_id: int | None = None
    reason: str = ""
    segments: int = 1


class OutreachSender(Protocol):
    """Writes one outbound message for a bundle of outreach rows and sends it.

    The sender stores the Message row (and sets ``Outreach.message_id`` on the rows) in its own transaction
    BEFORE it calls the provider, so a crash between the two can be reconciled instead of resent.
    """

    async def send(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome:
        """Send one text for these rows (the first id is the lead of the bundle)."""
        ...

    async def reconcile(self, patient_id: str, outreach_ids: list[int], now: datetime) -> SendOutcome | None:
        """After a crash mid-send: ``sent`` if the provider has the text, None if it never went, else unknown."""
        ...
