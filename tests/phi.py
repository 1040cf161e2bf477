"""The PHI log scan: every log record of the test session (and the output of the subprocesses tests start, when
they hand it in) must hold no phone number, seeded patient name, drug name or message body. ids only.

``install()`` wraps the logging record factory (so no handler reset can hide a record) and the places message
bodies pass through in tests (webhook signing, the simulator's store), ``scan_output()`` takes a subprocess's
captured text, and ``violations()`` scans everything collected. (No tests here; tests/conftest.py wires it.)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.logs import TextFormatter
from integrations.dispensary.synthetic import DRUGS

# E.164 (+ and 10-15 digits), or a 10-digit North American number, bare or formatted: an area code and an
# exchange never start with 0 or 1, so epoch seconds, counts and ids of 10 digits do not match, nor digits
# inside a word (a hex message sid), nor a bare number that is a path segment (an id in "GET /tasks/2147483648";
# an E.164 number in a path is still caught by the first alternative).
PHONE = re.compile(r"\+\d{10,15}(?!\d)|(?<![\w+/])\(?[2-9]\d{2}\)?[-. ]?[2-9]\d{2}[-. ]?\d{4}(?!\w)")
# Names the test fixtures seed (tests/bot/support.py, tests/e2e/conftest.py, the API tests); common words
# that are also names (Long, Young) are left out, whole "First Last" pairs of the synthetic practice are in.
_SEEDED_NAMES = ("Maria Lopez", "Robert Hill", "Ana Ruiz", "Rosa Diaz", "Lopez", "Ruiz", "Diaz", "Margarita")
_DRUGS = sorted({spec.name for spec in DRUGS} | {"prednisone", "letrozole", "dexamethasone", "zytiga"})
NAME = re.compile(r"\b(" + "|".join(map(re.escape, _SEEDED_NAMES)) + r")\b")
DRUG = re.compile(r"\b(" + "|".join(_DRUGS) + r")\b", re.IGNORECASE)
_MIN_BODY = 12  # shorter bodies ("STOP", "1", "yes") are words any log may hold
_MAX_LINES = 2_000_000
_MAX_LINE = 4_000
_FORMATTER = TextFormatter()


@dataclass
class _Collected:
    lines: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    bodies: set[str] = field(default_factory=set)


_STATE = _Collected()


def add_body(body: object) -> None:
    """Remember a message body that passed through the test session (to find it in logs later)."""
    if isinstance(body, str):
        text = body.strip()
        if len(text) >= _MIN_BODY and not text.isdigit():
            _STATE.bodies.add(text)


def _add_line(where: str, text: str) -> None:
    if len(_STATE.lines) < _MAX_LINES:
        _STATE.lines.append((where, text[:_MAX_LINE]))


def scan_output(text: str, where: str) -> None:
    """Hand in a subprocess's captured output (stderr, a log file) for the session's scan."""
    for line in text.splitlines():
        _add_line(where, line)


def _record_factory(original: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        try:
            text = _FORMATTER.format(record)  # as production writes it (bot.logs), redactions included
        except Exception:  # a broken format string is the logger's bug, reported by logging itself
            text = str(record.msg)
        for line in text.splitlines() or [""]:
            _add_line(f"log {record.name}:{record.levelname}", line)
        return record

    return factory


def install() -> None:
    """Collect every log record from now on, and every message body seen in webhooks and the simulator."""
    logging.setLogRecordFactory(_record_factory(logging.getLogRecordFactory()))
    from twilio.request_validator import RequestValidator

    from integrations.twilio.simulator.store import SimulatorState

    compute = RequestValidator.compute_signature

    def compute_signature(self: RequestValidator, uri: str, params: Any, algorithm: str | None = None) -> str:
        if params and not isinstance(params, str):
            values = params.getall("Body", []) if hasattr(params, "getall") else [params.get("Body")]
            for value in values:
                add_body(value)
        return str(compute(self, uri, params, algorithm))

    RequestValidator.compute_signature = compute_signature  # type: ignore[method-assign]
    add = SimulatorState.add

    def add_message(self: SimulatorState, message: Any) -> Any:
        add_body(getattr(message, "body", None))
        return add(self, message)

    SimulatorState.add = add_message  # type: ignore[method-assign]


def _body_hits(text: str, prefixes: dict[str, list[str]]) -> str | None:
    for start in range(len(text) - _MIN_BODY + 1):
        for body in prefixes.get(text[start : start + _MIN_BODY], ()):
            if text.startswith(body, start):
                return body
    return None


def find_phi(lines: Iterable[tuple[str, str]], bodies: Iterable[str] = ()) -> list[str]:
    """Each line holding PHI, as ``where: kind 'match': line``."""
    prefixes: dict[str, list[str]] = {}
    for body in bodies:
        prefixes.setdefault(body[:_MIN_BODY], []).append(body)
    found = []
    for where, text in lines:
        hit = None
        for kind, pattern in (("phone", PHONE), ("name", NAME), ("drug", DRUG)):
            match = pattern.search(text)
            if match:
                hit = f"{kind} {match.group(0)!r}"
                break
        if hit is None and prefixes and len(text) >= _MIN_BODY:
            body = _body_hits(text, prefixes)
            hit = f"message body {body[:40]!r}" if body else None
        if hit is not None:
            found.append(f"{where}: {hit}: {text[:300]}")
    return found


def violations() -> list[str]:
    """Every collected line holding PHI."""
    return find_phi(_STATE.lines, _STATE.bodies)


def mark() -> int:
    """A position in the collected lines, for a test that scans only what it caused (``since(mark)``)."""
    return len(_STATE.lines)


def since(position: int) -> list[tuple[str, str]]:
    """The lines collected after ``mark()`` returned ``position``."""
    return _STATE.lines[position:]
