"""Errors of the Twilio integration.

The tree, so callers can catch exactly what they can act on::

    TwilioError                  anything this package raises on purpose
     ├── ApiError                Twilio refused the request (4xx with a Twilio error code)
     │    └── PermanentSendError a send was refused: do not retry (opted out, bad number, ...)
     ├── TransientSendError      429 / 5xx / connection failures outlasted the retries: try again later
     └── UnknownOutcomeError     a send may have reached Twilio (timeout or drop after the request
                                 was written): reconcile with ``TwilioClient.find_sent``, never resend blindly
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "PermanentSendError",
    "TransientSendError",
    "TwilioError",
    "UnknownOutcomeError",
]

OPTED_OUT_CODES = frozenset({21610})
BAD_NUMBER_CODES = frozenset({21211, 21614})


class TwilioError(Exception):
    """Base of every error the Twilio integration raises."""


class ApiError(TwilioError):
    """Twilio answered with a client error: ``code`` is Twilio's error code, ``status`` the HTTP status."""

    def __init__(self, code: int, message: str, status: int) -> None:
        super().__init__(f"Twilio error {code} (HTTP {status}): {message}")
        self.code = code
        self.message = message
        self.status = status


class PermanentSendError(ApiError):
    """Twilio refused to accept a message; sending it again will fail the same way."""

    @property
    def opted_out(self) -> bool:
        """The recipient has opted out of messages from this sender (21610)."""
        return self.code in OPTED_OUT_CODES

    @property
    def bad_number(self) -> bool:
        """The destination is not a valid (mobile) number (21211, 21614)."""
        return self.code in BAD_NUMBER_CODES


class TransientSendError(TwilioError):
    """Rate limiting, server errors or connection failures lasted longer than the retries.

    Nothing was accepted by Twilio, so trying again later is safe. ``retry_after`` carries the
    last Retry-After the server asked for (seconds), when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        attempts: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.attempts = attempts
        self.retry_after = retry_after


class UnknownOutcomeError(TwilioError):
    """The request may have reached Twilio but no answer came back (timeout, dropped connection).

    The message may or may not exist; the caller must look for it (``find_sent``) before
    deciding to send again.
    """
