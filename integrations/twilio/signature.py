"""X-Twilio-Signature: compute and check webhook signatures with the twilio library's RequestValidator."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping

from multidict import MultiDict
from twilio.request_validator import RequestValidator

__all__ = ["SIGNATURE_HEADER", "sign", "validate_signature"]

_LOGGER = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"

Params = Mapping[str, str | list[str]]


def _multi(params: Params | Iterable[tuple[str, str]]) -> MultiDict[str]:
    """Flatten list values into a MultiDict, which RequestValidator reads with ``getall``."""
    items = params.items() if isinstance(params, Mapping) else params
    flat: MultiDict[str] = MultiDict()
    for name, value in items:
        if isinstance(value, list):
            for one in value:
                flat.add(name, one)
        else:
            flat.add(name, value)
    return flat


def sign(auth_token: str, url: str, params: Params) -> str:
    """The signature Twilio would send for a form POST of ``params`` to ``url``.

    Args:
        auth_token: the account's auth token (the HMAC key).
        url: the full URL Twilio requests, exactly as configured (scheme, host, port, path, query).
        params: the POST form parameters; a list value stands for a repeated parameter.

    Returns:
        base64(HMAC-SHA1(auth_token, url + each name and value, names sorted)).
    """
    return str(RequestValidator(auth_token).compute_signature(url, _multi(params)))


def validate_signature(
    auth_token: str, url: str, params: Params | Iterable[tuple[str, str]], signature: str | None
) -> bool:
    """Check an X-Twilio-Signature header against the request, in constant time.

    Args:
        auth_token: the account's auth token.
        url: the full URL Twilio was configured to call (the public one, not the one behind a proxy).
        params: the POST form parameters as received: a mapping (a list value for a repeated parameter)
            or every (name, value) pair in order. Twilio signs every value of a repeated parameter, so
            none may be dropped here.
        signature: the header value, or None when the header was missing.

    Returns:
        True only when the signature matches (with or without the default port in the URL).
    """
    if not signature:
        return False
    flat = _multi(params)
    validator = RequestValidator(auth_token)
    # The URL as configured first (one HMAC, the usual case); the library's validate() then tries it with and
    # without the default port (two more), for a URL that Twilio signed in the other form.
    expected = str(validator.compute_signature(url, flat)).encode()
    if hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return True
    valid = bool(validator.validate(url, flat, signature))
    if not valid:
        _LOGGER.debug("twilio signature mismatch (%d params)", len(flat))
    return valid
