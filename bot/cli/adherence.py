"""`midbot adherence FILE.csv`: PDC, gaps and secondary abandonment per patient–drug from a fills file."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.cli.common import CliError
from integrations.dispensary.abandonment import SECONDARY_GRACE_DAYS, secondary_abandonment
from integrations.dispensary.adherence import ADHERENCE_THRESHOLD, FillRecord, NoFillInPeriod, pdc
from integrations.dispensary.csvio import (
    ISO_DATE,
    CsvTable,
    DispensaryError,
    RowError,
    check_date_format,
    parse_date,
    parse_map,
    parse_positive_int,
    read_table,
)

ORDER = 45
_LOGGER = logging.getLogger(__name__)

COLUMNS = ("patient_id", "drug", "dispensed_on", "days_supply")
MAX_DAYS_SUPPLY = 3650


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `adherence`."""
    parser = sub.add_parser(
        "adherence",
        help="PDC, gaps and abandonment per patient and drug from a fills CSV (one JSON line each)",
        description="Proportion of days covered by the PQA method (early refills carried forward, supply "
        "past the period end dropped). The period runs from each patient-drug's first fill in the period "
        "to --period-end, else --as-of, else the last day its fills cover. Secondary abandonment is judged "
        "at --as-of, else the latest dispense date in the file.",
    )
    parser.add_argument("file", metavar="FILE.csv", help="fills: patient_id, drug, dispensed_on, days_supply")
    parser.add_argument(
        "--map",
        metavar="OURS=THEIRS,...",
        help="read our column OURS from the file's column THEIRS, e.g. patient_id=PATIENT_ID,drug=CATEGORY",
    )
    parser.add_argument(
        "--date-format",
        default=ISO_DATE,
        metavar="FMT",
        help="strftime format of dates (default %%Y-%%m-%%d)",
    )
    parser.add_argument("--period-start", metavar="YYYY-MM-DD", help="earliest index date")
    parser.add_argument("--period-end", metavar="YYYY-MM-DD", help="last day of the measurement period")
    parser.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="the day abandonment is judged (and default end)"
    )
    parser.add_argument(
        "--threshold", type=float, default=ADHERENCE_THRESHOLD, help="PDC counted adherent (default 0.8)"
    )
    parser.add_argument(
        "--grace-days",
        type=int,
        default=SECONDARY_GRACE_DAYS,
        help=f"days after run-out without a refill before secondary abandonment (default {SECONDARY_GRACE_DAYS})",
    )
    parser.set_defaults(func=cmd_adherence)


def _require_date_format(fmt: str) -> None:
    try:
        check_date_format(fmt)
    except ValueError as exc:
        raise CliError(f"--date-format: {exc}") from None


def _option_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from None


def _natural(value: str) -> tuple[int, int, str]:
    """Sort numeric ids as numbers (2 before 10), then the rest as text."""
    return (0, int(value), value) if value.isdigit() else (1, 0, value)


def collect(
    table: CsvTable, date_format: str
) -> tuple[dict[tuple[str, str], list[FillRecord]], list[RowError]]:
    """Group good rows by (patient_id, drug); bad values become RowErrors naming the file's column."""
    groups: dict[tuple[str, str], list[FillRecord]] = defaultdict(list)
    errors: list[RowError] = []
    for line, row in table.rows:
        problems: list[RowError] = []
        for name in ("patient_id", "drug"):
            if not row[name]:
                problems.append(RowError(line, table.column(name), "required"))
        try:
            dispensed = parse_date(row["dispensed_on"], date_format)
        except ValueError as exc:
            problems.append(RowError(line, table.column("dispensed_on"), str(exc)))
        try:
            supply = parse_positive_int(row["days_supply"], maximum=MAX_DAYS_SUPPLY)
        except ValueError as exc:
            problems.append(RowError(line, table.column("days_supply"), str(exc)))
        if problems:
            errors.extend(problems)
            continue
        groups[(row["patient_id"], row["drug"])].append(FillRecord(dispensed, supply))
    return groups, errors


def measure(
    fills: Sequence[FillRecord],
    *,
    period_start: date | None,
    period_end: date | None,
    as_of: date,
    threshold: float = ADHERENCE_THRESHOLD,
    grace_days: int = SECONDARY_GRACE_DAYS,
) -> dict[str, Any]:
    """The output fields of one patient–drug (without its ids)."""
    loss = secondary_abandonment(fills, as_of=as_of, grace_days=grace_days)
    abandonment = {
        "secondary": loss.abandoned,
        "days_since_run_out": loss.days_since_run_out,
        "run_out": loss.run_out.isoformat() if loss.run_out else None,
        "as_of": as_of.isoformat(),
    }
    try:
        result = pdc(fills, period_start, period_end, threshold=threshold)
    except NoFillInPeriod:
        empty: dict[str, Any] = dict.fromkeys(_FIELDS)
        return empty | {"fills": 0, "abandonment": abandonment}
    return {
        "index_date": result.index_date.isoformat(),
        "period_end": result.period_end.isoformat(),
        "days_in_period": result.days_in_period,
        "days_covered": result.days_covered,
        "pdc": result.pdc,
        "adherent": result.adherent,
        "max_gap_days": result.max_gap_days,
        "gap_days": result.total_gap_days,
        "fills": result.fills,
        "mpr": result.mpr,
        "eligible": result.eligible,
        "abandonment": abandonment,
    }


_FIELDS = (
    "index_date",
    "period_end",
    "days_in_period",
    "days_covered",
    "pdc",
    "adherent",
    "max_gap_days",
    "gap_days",
    "fills",
    "mpr",
    "eligible",
)


def cmd_adherence(args: argparse.Namespace) -> int:
    """Print one JSON object per patient–drug, sorted by patient then drug; exit 1 if any row was bad."""
    _require_date_format(args.date_format)
    if not 0 < args.threshold <= 1:
        raise CliError("--threshold: must be in (0, 1]")
    if args.grace_days < 0:
        raise CliError("--grace-days: must not be negative")
    start = _option_date(args.period_start, "--period-start")
    end = _option_date(args.period_end, "--period-end")
    as_of = _option_date(args.as_of, "--as-of")
    if start and end and end < start:
        raise CliError("--period-end: before --period-start")
    try:
        table = read_table(args.file, COLUMNS, (), parse_map(args.map, COLUMNS))
    except DispensaryError as exc:
        raise CliError(str(exc)) from None
    groups, errors = collect(table, args.date_format)
    if groups:
        judged = as_of or max(f.dispensed_on for fills in groups.values() for f in fills)
        for patient_id, drug in sorted(groups, key=lambda k: (_natural(k[0]), _natural(k[1]))):
            fields = measure(
                groups[(patient_id, drug)],
                period_start=start,
                period_end=end or as_of,
                as_of=judged,
                threshold=args.threshold,
                grace_days=args.grace_days,
            )
            sys.stdout.write(json.dumps({"patient_id": patient_id, "drug": drug, **fields}) + "\n")
    for error in errors:  # already in file order, columns as in the header
        print(error.render(args.file), file=sys.stderr)
    _LOGGER.debug("adherence: %d patient-drugs, %d bad values", len(groups), len(errors))
    return 1 if errors else 0
