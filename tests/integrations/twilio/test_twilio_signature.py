"""X-Twilio-Signature: our sign/validate agree with the twilio library and refuse tampering."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from twilio.request_validator import RequestValidator

from integrations.twilio import sign, validate_signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_sign_matches_twilio_documented_algorithm() -> None:
    data = URL + "".join(f"{k}{PARAMS[k]}" for k in sorted(PARAMS))
    expected = base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    assert sign(TOKEN, URL, PARAMS) == expected
    assert RequestValidator(TOKEN).validate(URL, PARAMS, expected)


def test_good_signature_validates() -> None:
    assert validate_signature(TOKEN, URL, PARAMS, sign(TOKEN, URL, PARAMS))


def test_default_port_in_url_is_tolerated_like_twilio() -> None:
    signature = sign(TOKEN, URL, PARAMS)
    assert validate_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, signature)


@pytest.mark.parametrize("signature", [None, "", "not-base64", "RSOYDt4T1cUTdK1PDd93/VVr8B8="])
def test_missing_or_forged_signature_fails(signature: str | None) -> None:
    assert not validate_signature(TOKEN, URL, PARAMS, signature)


def test_wrong_token_fails() -> None:
    assert not validate_signature("other-token", URL, PARAMS, sign(TOKEN, URL, PARAMS))


@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://evil.example/myapp.php?foo=1&bar=2",
        "https://mycompany.com/other.php?foo=1&bar=2",
    ],
)
def test_wrong_url_fails(url: str) -> None:
    assert not validate_signature(TOKEN, url, PARAMS, sign(TOKEN, URL, PARAMS))


@pytest.mark.parametrize(
    "tamper",
    [
        {"Digits": "9999"},
        {"Extra": "1"},
        {"From": "+12349013031"},
    ],
)
def test_tampered_params_fail(tamper: dict[str, str]) -> None:
    signature = sign(TOKEN, URL, PARAMS)
    assert not validate_signature(TOKEN, URL, {**PARAMS, **tamper}, signature)


def test_dropped_param_fails() -> None:
    signature = sign(TOKEN, URL, PARAMS)
    assert not validate_signature(TOKEN, URL, {k: v for k, v in PARAMS.items() if k != "Digits"}, signature)


def test_repeated_params_are_signed_and_checked() -> None:
    params = {"MediaUrl": ["https://a.example/1", "https://a.example/2"], "Body": "hi"}
    signature = sign(TOKEN, URL, params)
    assert validate_signature(TOKEN, URL, params, signature)
    assert not validate_signature(TOKEN, URL, {**params, "MediaUrl": ["https://a.example/1"]}, signature)
