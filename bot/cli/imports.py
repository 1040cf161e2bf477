"""`midbot import {patients,prescriptions,fills} FILE.csv`: upsert the dispensary record from CSV files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli.common import CliError, add_now, open_store, parse_now, settings_from_env
from bot.clock import utcnow
from bot.db.records import (
    BATCH_SIZE,
    FillIn,
    ImportResult,
    PatientIn,
    PrescriptionIn,
    import_fills,
    import_patients,
    import_prescriptions,
    validate_rows,
)
from bot.settings import Settings
from integrations.dispensary.csvio import (
    ISO_DATE,
    CsvTable,
    DispensaryError,
    RowError,
    check_date_format,
    parse_map,
    read_table,
)

ORDER = 40
_LOGGER = logging.getLogger(__name__)

Runner = Callable[[AsyncSession, Sequence[Any], Sequence[int], datetime], Awaitable[ImportResult]]


@dataclass(frozen=True)
class _Kind:
    model: type[PatientIn] | type[PrescriptionIn] | type[FillIn]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    run: Runner


async def _patients(
    s: AsyncSession, rows: Sequence[Any], numbers: Sequence[int], _now: datetime
) -> ImportResult:
    return await import_patients(s, rows, row_numbers=numbers)


async def _prescriptions(
    s: AsyncSession, rows: Sequence[Any], numbers: Sequence[int], now: datetime
) -> ImportResult:
    return await import_prescriptions(s, rows, row_numbers=numbers, now=now)


async def _fills(
    s: AsyncSession, rows: Sequence[Any], numbers: Sequence[int], _now: datetime
) -> ImportResult:
    return await import_fills(s, rows, row_numbers=numbers)


# Columns of DESIGN.md "CSV import". Optional columns may be absent; an empty optional cell keeps what
# the store has (or takes the default for a new row), except time_zone, where empty means "the site's".
KINDS: dict[str, _Kind] = {
    "patients": _Kind(
        PatientIn,
        ("patient_id", "site_id", "first_name", "last_name", "phone", "sms_consent"),
        ("birth_date", "language", "time_zone", "detailed_consent"),
        _patients,
    ),
    "prescriptions": _Kind(
        PrescriptionIn,
        ("prescription_id", "patient_id", "drug", "status"),
        ("therapy_class", "payer_type", "written_on"),
        _prescriptions,
    ),
    "fills": _Kind(
        FillIn,
        ("fill_id", "prescription_id", "dispensed_on", "days_supply"),
        ("quantity", "copay"),
        _fills,
    ),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `import`."""
    parser = sub.add_parser(
        "import",
        help="import patients, prescriptions or fills from a CSV file (re-import updates)",
        description="Upsert rows by the source system's ids. Bad rows are reported as FILE:ROW: column: "
        "reason and skipped; good rows are kept. Exit 1 when any row was bad.",
    )
    parser.add_argument("kind", choices=sorted(KINDS), help="what the file holds")
    parser.add_argument("file", metavar="FILE.csv", help="UTF-8 CSV with a header row")
    parser.add_argument(
        "--map", metavar="OURS=THEIRS,...", help="read our column OURS from the file's column THEIRS"
    )
    parser.add_argument(
        "--date-format",
        default=ISO_DATE,
        metavar="FMT",
        help="strftime format of dates (default %%Y-%%m-%%d)",
    )
    parser.add_argument(
        "--region", default="US", metavar="CC", help="default country of phone numbers (default US)"
    )
    parser.add_argument(
        "--progress", action="store_true", help="show a progress bar on stderr (auto on a TTY)"
    )
    parser.add_argument(
        "--no-replan", action="store_true", help="skip re-planning outreach (run `midbot plan --all` later)"
    )
    add_now(parser)
    parser.set_defaults(func=cmd_import)


def require_date_format(fmt: str) -> None:
    """Reject a --date-format that cannot read back the dates it writes (CliError, exit 1)."""
    try:
        check_date_format(fmt)
    except ValueError as exc:
        raise CliError(f"--date-format: {exc}") from None


class _Progress:
    """A one-line progress bar on stderr, redrawn in place."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label, self.done = enabled and total > 0, total, label, 0

    def advance(self, count: int) -> None:
        self.done += count
        if self.enabled:
            share = self.done / self.total
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {self.done:,}/{self.total:,} ({share:.0%})")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


REPLAN_CHUNK = 500  # patients per re-planning transaction


async def _replan(
    sessionmaker: async_sessionmaker[AsyncSession], patient_ids: set[str], now: datetime, pause: _Pause
) -> object | None:
    """Re-plan outreach for the imported patients, a few hundred per transaction (each one short)."""
    if importlib.util.find_spec("scheduler.planner") is None:
        return None
    planner = importlib.import_module("scheduler.planner")
    replan = getattr(planner, "replan", None)
    if replan is None:
        return None
    total: dict[str, int] = {}
    ordered = sorted(patient_ids)
    for start in range(0, len(ordered), REPLAN_CHUNK):
        async with pause.timed(), sessionmaker.begin() as session:
            part = await replan(session, patient_ids=set(ordered[start : start + REPLAN_CHUNK]), now=now)
        for key, count in part.as_dict().items():
            total[key] = total.get(key, 0) + int(count)
    return _PlanTotals(total)


@dataclass(frozen=True)
class _PlanTotals:
    """The re-planning counts summed over its transactions."""

    counts: dict[str, int]

    def as_dict(self) -> dict[str, int]:
        """``{"planned": N, "cancelled": N, "unchanged": N}``."""
        return dict(self.counts)


class _Pause:
    """On SQLite, after each write transaction a pause about half as long as it held the lock, so the
    webhook (another process on the same file) gets the lock between chunks instead of waiting out a whole
    import (SQLite has one writer at a time); PostgreSQL needs none."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite

    @contextlib.asynccontextmanager
    async def timed(self) -> AsyncIterator[None]:
        began = time.monotonic()
        yield
        if self.sqlite:
            await asyncio.sleep(min(0.05, max(0.005, (time.monotonic() - began) / 2)))


async def _store(
    settings: Settings,
    kind: _Kind,
    rows: list[Any],
    numbers: list[int],
    now: datetime,
    progress: _Progress,
    replan: bool = True,
) -> tuple[ImportResult, object | None]:
    result = ImportResult()
    summary = None
    pause = _Pause(settings.database_url.startswith("sqlite"))
    async with open_store(settings) as (_engine, sessionmaker):
        for start in range(0, len(rows), BATCH_SIZE):
            stop = start + BATCH_SIZE
            async with pause.timed(), sessionmaker.begin() as session:
                result.merge(await kind.run(session, rows[start:stop], numbers[start:stop], now))
            progress.advance(len(rows[start:stop]))
        if replan and result.affected_patient_ids:
            summary = await _replan(sessionmaker, result.affected_patient_ids, now, pause)
    return result, summary


def _read(args: argparse.Namespace, kind: _Kind) -> CsvTable:
    try:
        mapping = parse_map(args.map, (*kind.required, *kind.optional))
        return read_table(args.file, kind.required, kind.optional, mapping)
    except DispensaryError as exc:
        raise CliError(str(exc)) from None


def cmd_import(args: argparse.Namespace) -> int:
    """Validate every row, upsert the good ones in batches, report the bad ones; exit 1 if any."""
    kind = KINDS[args.kind]
    require_date_format(args.date_format)
    table = _read(args, kind)
    now = parse_now(args.now) or utcnow()
    settings = settings_from_env()
    models, numbers, issues = validate_rows(
        kind.model, table.rows, date_format=args.date_format, phone_region=args.region.upper()
    )
    progress = _Progress(args.progress or sys.stderr.isatty(), len(models), f"importing {args.kind}")
    try:
        result, plan = asyncio.run(_store(settings, kind, models, numbers, now, progress, not args.no_replan))
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0][:200]
        raise CliError(f"database error: {detail}") from None
    finally:
        progress.close()
    result.errors.extend(issues)
    for issue in sorted(result.errors, key=lambda e: e.row):  # stable: columns stay in file order
        print(RowError(issue.row, table.column(issue.field), issue.reason).render(args.file), file=sys.stderr)
    line = {"kind": args.kind, "file": args.file, "rows": len(table.rows), **result.summary()}
    as_dict = getattr(plan, "as_dict", None)
    line["plan"] = as_dict() if callable(as_dict) else None
    print(json.dumps(line))
    return 1 if result.errors else 0
