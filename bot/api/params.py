"""Query-string and path parameters of the REST API: read through pydantic models, documented from the same models.

A route names one model for its query string (``bot.api.schemas`` holds them); ``parse_query`` reads every field
of it from the request (a parameter given twice, or a value the model refuses, is a ``TaskInvalid`` naming the
parameter: a 400) and ``query_parameters`` turns the same model into the OpenAPI parameter list. Path
parameters are typed by name (``PATH_TYPES``), so ``task_id`` is the same bounded integer on every route.

The bounds are the stores': ids are 32-bit on PostgreSQL, and a page times its size must stay an OFFSET SQLite
can hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from multidict import MultiMapping
from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

from bot.staff.errors import TaskInvalid

__all__ = [
    "MAX_ID",
    "MAX_PAGE",
    "PATH_TYPES",
    "AuditSince",
    "Flag",
    "NoNul",
    "PageNumber",
    "Since",
    "TaskId",
    "error_text",
    "parse_path",
    "parse_query",
    "path_schema",
    "query_parameters",
]

MAX_ID = 2**31 - 1  # ids are INTEGER (32-bit) on PostgreSQL
MAX_PAGE = 1_000_000  # x the largest page size stays far inside a 64-bit OFFSET
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes "²", which int() refuses
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
Q = TypeVar("Q", bound=BaseModel)


def _no_nul(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL, and no id, name or filter of ours has one.
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("nul", "must not contain a NUL character")
    return value


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise PydanticCustomError("flag", "must be true or false")
    return value


def _as_utc(at: datetime) -> datetime:
    try:
        return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before the first representable UTC instant
        raise PydanticCustomError("since", "is out of range (before year 1 or after 9999 in UTC)") from None


def _iso_time(text: str) -> datetime | None:
    # A "+" left unencoded in a query string arrives as a space: 15:00:00 05:00 meant 15:00:00+05:00.
    candidates = [text] + ([text[::-1].replace(" ", "+", 1)[::-1]] if " " in text else [])
    for candidate in candidates:
        try:
            at = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return _as_utc(at)
    return None


def _since(value: Any) -> datetime | int:
    if not isinstance(value, str):
        raise PydanticCustomError("since", "must be an ISO 8601 time or an id")
    if _DIGITS.fullmatch(value):
        if len(value) > len(str(MAX_ID)) or int(value) > MAX_ID:
            raise PydanticCustomError("since", "must be an id of at most {max}", {"max": MAX_ID})
        return int(value)
    at = _iso_time(value)
    if at is None:
        raise PydanticCustomError(
            "since", "must be an ISO 8601 time (e.g. 2026-11-24T15:00:00Z) or an id (items after it)"
        )
    return at


def _audit_since(value: Any) -> datetime:
    at = _iso_time(value) if isinstance(value, str) and not value.isdecimal() else None
    if at is None:
        raise PydanticCustomError(
            "since", "must be an ISO 8601 time for the audit trail (e.g. 2026-11-24T15:00:00Z)"
        )
    return at


_TIME_DOC = "an ISO 8601 time, UTC when it has no zone (e.g. 2026-11-24T15:00:00Z)"
NoNul = Annotated[str, BeforeValidator(_no_nul), Field(json_schema_extra={"pattern": "^[^\u0000]*$"})]
Flag = Annotated[bool, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})]
PageNumber = Annotated[int, Field(ge=1, le=MAX_PAGE, description="page number, from 1")]
Since = Annotated[
    datetime | int,
    BeforeValidator(_since),
    WithJsonSchema({"type": "string", "description": f"{_TIME_DOC}: items recorded at or after it; or an id: "
                    "items after it", "examples": ["2026-11-24T15:00:00Z", "0"]}),
]  # fmt: skip
AuditSince = Annotated[
    datetime,
    BeforeValidator(_audit_since),
    WithJsonSchema({"type": "string", "description": f"{_TIME_DOC}: events at or after it",
                    "examples": ["2026-11-24T15:00:00Z"]}),
]  # fmt: skip
TaskId = Annotated[int, Field(ge=1, le=MAX_ID)]
PatientId = Annotated[NoNul, Field(min_length=1, max_length=64)]
PATH_TYPES: dict[str, Any] = {"task_id": TaskId, "patient_id": PatientId}
_PATH_ADAPTERS = {name: TypeAdapter(kind) for name, kind in PATH_TYPES.items()}


def error_text(name: str, error: ErrorDetails) -> str:
    """One line for a refused value, in words a caller can act on, starting with the parameter's name."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    texts = {
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "missing": "is required",
        "greater_than_equal": f"must be {ctx.get('ge')} or more",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "too_long": f"must be at most {ctx.get('max_length')} characters",
        "string_too_short": "must not be empty",
        "too_short": "must not be empty",
        "string_pattern_mismatch": f"must match {ctx.get('pattern')}",
    }
    text = texts.get(kind) or str(error["msg"]).removeprefix("Value error, ")
    return f"{name} {text}" if kind in texts or kind in ("nul", "flag", "since") else f"{name}: {text}"


def _invalid(exc: ValidationError, default: str) -> TaskInvalid:
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else default
    return TaskInvalid(error_text(name, first), name)


def parse_query(model: type[Q], query: MultiMapping[str]) -> Q:
    """Read ``model``'s fields from a query string: once each, blank as absent, surrounding spaces dropped.

    Raises:
        TaskInvalid: a parameter given twice, or a value the model refuses (``field`` names it).
    """
    raw: dict[str, str] = {}
    for name in model.model_fields:
        values = query.getall(name, [])
        if len(values) > 1:
            raise TaskInvalid(f"{name} must be given once", name)
        if values and values[0].strip():
            raw[name] = values[0].strip()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, "query") from None


def parse_path(match_info: Mapping[str, str]) -> dict[str, Any]:
    """The path parameters, each read as its ``PATH_TYPES`` type.

    Raises:
        TaskInvalid: a value its type refuses (``field`` names the parameter).
    """
    values: dict[str, Any] = {}
    for name, raw in match_info.items():
        try:
            values[name] = _PATH_ADAPTERS[name].validate_python(raw)
        except ValidationError as exc:
            raise TaskInvalid(error_text(name, exc.errors()[0]), name) from None
    return values


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's JSON schema as a query parameter's: no title, no ``null`` alternative (absent is the null)."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if "anyOf" in schema and len(options) == 1:
        merged = {k: v for k, v in schema.items() if k not in ("anyOf", "default") or v is not None}
        del merged["anyOf"]
        schema = {**options[0], **merged}
    if schema.get("default") is None:
        schema.pop("default", None)
    return schema


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` (in: query) of a query model."""
    doc = model.model_json_schema(mode="validation")
    required = set(doc.get("required", []))
    params = []
    for name, schema in doc.get("properties", {}).items():
        entry: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if name not in required:
            entry["allowEmptyValue"] = True  # blank is the same as absent
        plain = _plain(schema)
        if "description" in plain:
            entry["description"] = plain.pop("description")
        entry["schema"] = plain
        params.append(entry)
    return params


def path_schema(name: str) -> dict[str, Any]:
    """The JSON schema of a path parameter."""
    return _plain(_PATH_ADAPTERS[name].json_schema())
