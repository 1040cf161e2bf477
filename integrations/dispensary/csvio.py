"""CSV input for imports and adherence: column mapping, date and number parsing, row errors.

Exceptions::

    DispensaryError
    ├── CsvFileError   the file as a whole is unusable (missing, not UTF-8, no header, missing column)
    └── MappingError   a --map specification is malformed or names an unknown column
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bot.db.records import ISO_DATE, parse_date

__all__ = [
    "ISO_DATE",
    "CsvFileError",
    "CsvTable",
    "DispensaryError",
    "MappingError",
    "RowError",
    "check_date_format",
    "iter_errors",
    "parse_date",
    "parse_map",
    "parse_positive_int",
    "read_table",
]

_LOGGER = logging.getLogger(__name__)


class DispensaryError(Exception):
    """Base of the dispensary integration's errors."""


class CsvFileError(DispensaryError):
    """The CSV file cannot be used at all; the message names the file and the problem."""


class MappingError(DispensaryError):
    """A ``--map`` specification is malformed."""


@dataclass(frozen=True, slots=True, order=True)
class RowError:
    """One bad value: the file line it is on (header = line 1), its column, and why."""

    row: int
    column: str
    reason: str

    def render(self, filename: str) -> str:
        """The ``FILE:ROW: column: reason`` line."""
        return f"{filename}:{self.row}: {self.column}: {self.reason}"


@dataclass(slots=True)
class CsvTable:
    """The rows of a CSV file keyed by our column names, with the file's name for each column."""

    path: str
    source: dict[str, str]  # our column -> the file's header
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, values)

    def column(self, ours: str) -> str:
        """The header the file uses for our column ``ours`` (for messages)."""
        return self.source.get(ours, ours)


def parse_map(spec: str | None, known: Collection[str]) -> dict[str, str]:
    """Parse ``ours=theirs,ours=theirs`` into {ours: theirs}.

    Raises:
        MappingError: a pair without ``=``, an empty side, an unknown column of ours, or a repeat.
    """
    mapping: dict[str, str] = {}
    if not spec:
        return mapping
    for pair in spec.split(","):
        ours, sep, theirs = (part.strip() for part in pair.partition("="))
        if not sep or not ours or not theirs:
            raise MappingError(f"--map: expected ours=theirs, got {pair.strip()!r}")
        if ours not in known:
            raise MappingError(f"--map: unknown column {ours!r} (expected one of {', '.join(sorted(known))})")
        if ours in mapping:
            raise MappingError(f"--map: {ours!r} mapped twice")
        mapping[ours] = theirs
    return mapping


def _load_text(path: Path) -> str:
    try:
        # newline="": line endings untranslated, so a carriage return quoted inside a cell stays in that cell
        # (the csv module does its own line splitting) instead of turning into a line feed.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise CsvFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CsvFileError(f"{path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise CsvFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise CsvFileError(f"{path}: cannot read ({exc.strerror})") from None


def read_table(
    path: str | Path,
    required: Sequence[str],
    optional: Sequence[str] = (),
    mapping: dict[str, str] | None = None,
) -> CsvTable:
    """Read a CSV file with a header row into rows keyed by our column names.

    Args:
        path: the file.
        required: our columns that must be present (after mapping).
        optional: our columns read when present; absent ones are left out of the row dicts.
        mapping: {ours: the file's header} for files that name columns differently.

    Raises:
        CsvFileError: missing or unreadable file, no header, or missing required columns (all named).
    """
    mapping = mapping or {}
    name = str(path)
    reader = csv.reader(io.StringIO(_load_text(Path(path)), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CsvFileError(f"{name}: empty file (expected a header row)") from None
    except csv.Error as exc:
        raise CsvFileError(f"{name}:1: {exc}") from None
    source = {ours: mapping.get(ours, ours) for ours in (*required, *optional)}
    missing = [
        source[c] + (f" (for {c})" if source[c] != c else "") for c in required if source[c] not in header
    ]
    if missing:
        raise CsvFileError(f"{name}: missing column {', '.join(missing)}")
    positions = [(ours, header.index(theirs)) for ours, theirs in source.items() if theirs in header]
    width = max((i for _, i in positions), default=-1) + 1
    table = CsvTable(path=name, source=source)
    append = table.rows.append
    line = reader.line_num
    try:
        for values in reader:
            row_line, line = line + 1, reader.line_num
            if not "".join(values).strip():
                continue
            if len(values) < width:  # a short row reads as empty cells
                values = values + [""] * (width - len(values))
            append((row_line, {ours: values[i].strip() for ours, i in positions}))
    except csv.Error as exc:
        raise CsvFileError(f"{name}:{line + 1}: {exc}") from None
    return table


def check_date_format(fmt: str) -> None:
    """Check that ``fmt`` reads back the dates it writes.

    Raises:
        ValueError: with a message suggesting an example format.
    """
    sample = date(2001, 2, 3)
    try:
        ok = "%" in fmt and datetime.strptime(sample.strftime(fmt), fmt).date() == sample
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"cannot read dates with {fmt!r} (e.g. %m/%d/%Y)")


def parse_positive_int(value: str, *, maximum: int | None = None) -> int:
    """Parse a whole number ≥ 1 (``30`` or ``30.0``), optionally ≤ ``maximum``.

    Raises:
        ValueError: with a message naming what was expected.
    """
    text = value.strip()
    if not text:
        raise ValueError("required")
    try:
        number = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError("not a whole number")
    if number < 1:
        raise ValueError("must be at least 1")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum}")
    return int(number)


def iter_errors(errors: Sequence[RowError], filename: str) -> Iterator[str]:
    """Render errors in file order as ``FILE:ROW: column: reason`` lines."""
    for error in sorted(errors):
        yield error.render(filename)
