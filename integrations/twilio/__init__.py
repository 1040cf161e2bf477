"""Twilio: send SMS and reconcile, check webhook signatures, count segments, and a local simulator.

The simulator lives in ``integrations.twilio.simulator`` (imported on demand: it pulls in jinja2).
"""

from __future__ import annotations

from integrations.twilio.client import DEFAULT_BASE_URL, ProviderMessage, TwilioClient
from integrations.twilio.errors import (
    ApiError,
    PermanentSendError,
    TransientSendError,
    TwilioError,
    UnknownOutcomeError,
)
from integrations.twilio.segments import SegmentInfo, is_gsm7, normalize_for_gsm, segment_info
from integrations.twilio.signature import SIGNATURE_HEADER, sign, validate_signature

__all__ = [
    "DEFAULT_BASE_URL",
    "SIGNATURE_HEADER",
    "ApiError",
    "PermanentSendError",
    "ProviderMessage",
    "SegmentInfo",
    "TransientSendError",
    "TwilioClient",
    "TwilioError",
    "UnknownOutcomeError",
    "is_gsm7",
    "normalize_for_gsm",
    "segment_info",
    "sign",
    "validate_signature",
]
