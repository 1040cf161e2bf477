"""The simulator's in-memory state: messages, opt-outs, handsets, injected faults, magic numbers.

Magic destination numbers (``To`` of an outbound message):

==========================  ===============================================================
number                      what happens
==========================  ===============================================================
+15005550001                create fails: 400, code 21211 (invalid 'To' number)
+15005550009                create fails: 400, code 21614 ('To' is not a mobile number)
not E.164 (+ and 8-15 dig)  create fails: 400, code 21211
opted out or blocklisted    create fails: 400, code 21610 (recipient unsubscribed); a handset
                            opts out by texting STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
                            REVOKE or OPTOUT, and back in with START, YES or UNSTOP
ends in 0003                queued -> sent -> undelivered, ErrorCode 30003 (unreachable handset)
ends in 0005                queued -> sent -> undelivered, ErrorCode 30005 (unknown handset)
ends in 0006                queued -> sent -> undelivered, ErrorCode 30006 (landline)
ends in 0007                queued -> sent -> undelivered, ErrorCode 30007 (carrier filtering)
ends in 0008                queued -> sent -> undelivered, ErrorCode 30008 (unknown error)
ends in 0010                queued -> failed, ErrorCode 21610 (late opt-out, as via a Messaging Service)
ends in 0011                queued -> failed, ErrorCode 21211 (late invalid number)
anything else               queued -> sent -> delivered
==========================  ===============================================================

A message sent with a MessagingServiceSid and no From starts as ``accepted`` (as on Twilio) and goes
through ``queued`` next.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from integrations.twilio.segments import segment_info

__all__ = [
    "API_VERSION",
    "ERROR_MESSAGES",
    "E164",
    "Fault",
    "Handset",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "SimMessage",
    "SimulatorError",
    "SimulatorState",
    "handsets_from",
    "keyword",
    "planned_outcome",
    "rfc2822",
]

_LOGGER = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
INVALID_NUMBER = "+15005550001"
NOT_MOBILE = "+15005550009"

ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21212: "Invalid 'From' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21701: "The Messaging Service does not exist",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

_SUFFIX_OUTCOMES: dict[str, tuple[str, int]] = {
    "0003": ("undelivered", 30003),
    "0005": ("undelivered", 30005),
    "0006": ("undelivered", 30006),
    "0007": ("undelivered", 30007),
    "0008": ("undelivered", 30008),
    "0010": ("failed", 21610),
    "0011": ("failed", 21211),
}


class SimulatorError(Exception):
    """A request the simulated API refuses, with Twilio's code and HTTP status."""

    def __init__(self, code: int, status: int = 400, message: str | None = None) -> None:
        super().__init__(message or ERROR_MESSAGES.get(code, "Error"))
        self.code = code
        self.status = status
        self.message = message or ERROR_MESSAGES.get(code, "Error")

    def body(self) -> dict[str, Any]:
        """Twilio's error document."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def planned_outcome(to: str) -> tuple[str, int | None]:
    """Final status and error code the simulator will report for a message to ``to``."""
    return _SUFFIX_OUTCOMES.get(to[-4:], ("delivered", None))


def keyword(body: str) -> str:
    """The body as an opt-out/opt-in keyword candidate: trimmed, upper case, no trailing punctuation."""
    return body.strip().rstrip(".!").strip().upper()


def rfc2822(at: datetime | None) -> str | None:
    """Twilio's date format: ``Tue, 24 Nov 2026 15:00:00 +0000``."""
    return None if at is None else format_datetime(at.astimezone(UTC).replace(microsecond=0))


@dataclass
class SimMessage:
    """One message, in either direction, as the simulated account stores it."""

    sid: str
    account_sid: str
    direction: str  # outbound-api | outbound-reply | inbound
    from_: str
    to: str
    body: str
    status: str
    date_created: datetime
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    media_urls: list[str] = field(default_factory=list)
    date_sent: datetime | None = None
    date_updated: datetime | None = None
    error_code: int | None = None

    @property
    def uri(self) -> str:
        """The message resource path."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    @property
    def num_segments(self) -> int:
        """Segments of the body (segments.py)."""
        return segment_info(self.body).segments

    def twilio_json(self) -> dict[str, Any]:
        """The Message resource as Twilio's 2010-04-01 API renders it."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code) if self.error_code else None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": self.uri,
        }

    def handset_json(self) -> dict[str, Any]:
        """The compact form the handset page and tests read."""
        return {
            "sid": self.sid,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "body": self.body,
            "status": self.status,
            "error_code": self.error_code,
            "num_segments": self.num_segments,
            "media_urls": list(self.media_urls),
            "date_created": self.date_created.isoformat(),
        }


@dataclass(frozen=True)
class Fault:
    """An injected failure for the next create calls: an HTTP error or a hang."""

    status: int | None = None
    retry_after: float | None = None
    hang_seconds: float | None = None


@dataclass(frozen=True)
class Handset:
    """A phone registered on the handset page."""

    phone: str
    name: str = ""


class SimulatorState:
    """Everything the simulated account remembers; one per simulator app."""

    def __init__(
        self,
        account_sid: str,
        *,
        seed: int | None,
        clock: Callable[[], datetime],
        blocklist: Iterable[str] = (),
    ) -> None:
        self.account_sid = account_sid
        self.clock = clock
        self._rng = random.Random(seed)
        self._messages: dict[str, SimMessage] = {}
        self.opted_out: set[str] = set()
        self.blocklist: set[str] = set(blocklist)
        self.handsets: dict[str, Handset] = {}
        self._faults: list[Fault] = []

    def new_sid(self) -> str:
        """A fresh "SM" + 32 hex message sid."""
        while True:
            sid = f"SM{self._rng.getrandbits(128):032x}"
            if sid not in self._messages:
                return sid

    def add(self, message: SimMessage) -> SimMessage:
        """Store a message (keyed by sid)."""
        self._messages[message.sid] = message
        return message

    def get(self, sid: str) -> SimMessage | None:
        """A stored message by sid."""
        return self._messages.get(sid)

    def messages(self) -> list[SimMessage]:
        """All messages, oldest first."""
        return list(self._messages.values())

    def reset(self) -> None:
        """Forget messages, opt-outs and pending faults (handsets and the blocklist stay)."""
        self._messages.clear()
        self.opted_out.clear()
        self._faults.clear()

    def add_fault(self, fault: Fault, count: int) -> None:
        """Queue ``count`` copies of a fault for the next create calls."""
        self._faults.extend([fault] * count)

    def pending_faults(self) -> list[Fault]:
        """Faults not yet consumed, in order."""
        return list(self._faults)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def next_fault(self) -> Fault | None:
        """Consume the next pending fault, if any."""
        return self._faults.pop(0) if self._faults else None

    def refuses(self, to: str) -> int | None:
        """The error code a create to ``to`` fails with at once, or None."""
        if to == INVALID_NUMBER or not E164.match(to):
            return 21211
        if to == NOT_MOBILE:
            return 21614
        if to in self.opted_out or to in self.blocklist:
            return 21610
        return None

    def register(self, handsets: Iterable[Handset]) -> None:
        """Add or rename handsets on the handset page."""
        for handset in handsets:
            self.handsets[handset.phone] = handset

    def known_phones(self) -> list[Handset]:
        """Registered handsets plus every number that received or sent a message, registered first."""
        seen = dict(self.handsets)
        for message in self._messages.values():
            phone = message.from_ if message.direction == "inbound" else message.to
            seen.setdefault(phone, Handset(phone))
        return list(seen.values())

    def service_numbers_for(self, phone: str, default: str) -> list[str]:
        """Numbers that talked with ``phone``, most recent first, ending with ``default``."""
        numbers: list[str] = []
        for message in reversed(self._messages.values()):
            other = message.to if message.direction == "inbound" else message.from_
            if phone in (message.from_, message.to) and other not in numbers:
                numbers.append(other)
        if default not in numbers:
            numbers.append(default)
        return numbers

    def thread(
        self, phone: str | None = None, to: str | None = None, from_: str | None = None
    ) -> list[SimMessage]:
        """Messages filtered by either party (phone), To and From; oldest first."""
        out = []
        for message in self._messages.values():
            if phone and phone not in (message.from_, message.to):
                continue
            if (to and message.to != to) or (from_ and message.from_ != from_):
                continue
            out.append(message)
        return out


def handsets_from(payload: object) -> list[Handset]:
    """Validate a POST /simulator/handsets body: a list of {"phone", "name"}."""
    if not isinstance(payload, list):
        raise ValueError('body: expected a JSON list of {"phone", "name"} objects')
    out = []
    for index, item in enumerate(payload):
        if not isinstance(item, Mapping):
            raise ValueError(f"[{index}]: expected an object")
        phone, name = item.get("phone"), item.get("name", "")
        if not isinstance(phone, str) or not E164.match(phone):
            raise ValueError(f"[{index}].phone: expected an E.164 number such as +15551234567")
        if not isinstance(name, str) or len(name) > 200:
            raise ValueError(f"[{index}].name: expected a string of at most 200 characters")
        out.append(Handset(phone, name))
    return out
