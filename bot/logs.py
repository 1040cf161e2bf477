"""Structured logging: one JSON object per line in production, readable lines in a terminal."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

__all__ = [
    "REQUEST_ID",
    "AccessLog",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "redact",
    "redact_exception",
]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# PostgreSQL's DETAIL of a failed write quotes the row or key ("Failing row contains (…, +1312…, <body>)",
# "Key (phone)=(…) already exists"): the values hide_parameters keeps out of SQLAlchemy's message come back
# through the driver's exception text. The DETAIL runs to the next line that is traceback structure.
_DETAIL = re.compile(
    r"^DETAIL:.*?(?=^(?:Traceback|  File |\[SQL|\(Background|HINT:|The above exception|During handling|\S+Error\b)|\Z)",
    re.MULTILINE | re.DOTALL,
)
_REDACTED = "DETAIL:  [redacted: PostgreSQL quotes row values here]\n"


def redact(text: str) -> str:
    """Drop the parts of an error text that quote stored values (PostgreSQL's DETAIL); ids stay."""
    return _DETAIL.sub(_REDACTED, text) if "DETAIL:" in text else text


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and not any(exc is s for s in seen):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def redact_exception(text: str, exc: BaseException | None) -> str:
    """``text`` (a formatted traceback of ``exc``) without the DETAIL of any exception in its chain.

    Each exception's own text is cut at its DETAIL, however the quoted values read (line breaks included);
    the pattern-based ``redact`` then catches what no exception object accounts for.
    """
    for one in _chain(exc):
        try:
            message = str(one)
        except Exception:  # an exception whose __str__ fails is shown by traceback as such
            continue
        head, found, _rest = message.partition("\nDETAIL:")
        if found:
            text = text.replace(message, head + "\n" + _REDACTED.rstrip("\n"))
    return redact(text)


class _Redacting(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return redact_exception(super().formatException(ei), ei[1] if ei else None)


class JsonFormatter(_Redacting):
    """Render a record as one JSON object; extra= fields (ids only, never PHI) are kept."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "request_id": REQUEST_ID.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(_Redacting):
    """A terminal-friendly line with the request id."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        rid = REQUEST_ID.get()
        if rid != "-":
            line += f" [req {rid}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class AccessLog(AbstractAccessLogger):
    """The access log: one line per request with method, path, status, size and time, never the query string.

    aiohttp's default line is the whole request line, and a staff search puts a patient's name in the query
    (``GET /patients?q=Lopez``); paths hold ids only. Pass as ``access_log_class`` to every runner.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %s %.1fms",
            request.remote or "-",
            request.method,
            request.rel_url.path,
            response.status,
            response.body_length,
            time * 1000,
        )


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to whatever `sys.stderr` is when a record is emitted, not the stream it was
    created with: a CLI run inside a test (or a daemon that redirects stderr) never writes to a closed file."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Install one stderr handler on the root logger."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel("WARNING")
    # A tick skipped because the previous one is still running is expected (max_instances=1), not a warning.
    logging.getLogger("apscheduler").setLevel("ERROR")
