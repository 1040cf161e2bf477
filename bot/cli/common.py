"""Shared helpers of the CLI commands: errors, settings, the engine, `--now`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

__all__ = ["CliError", "add_now", "one_line_errors", "open_store", "parse_now", "settings_from_env"]


class CliError(Exception):
    """Invalid input for a command: printed as one line, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings_from_env() -> Settings:
    """Settings from MIDBOT_* variables; raises SettingsError naming the bad variable."""
    return load_settings()


def parse_now(value: str | None) -> datetime | None:
    """Parse a --now ISO 8601 value (a trailing Z is UTC; a naive value is taken as UTC)."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--now: not an ISO 8601 time: {value!r}", code=2) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def add_now(parser: argparse.ArgumentParser) -> None:
    """Add the --now option shared by plan and dispatch."""
    parser.add_argument(
        "--now", metavar="ISO8601", help="act as if the clock read this time (UTC if no zone)"
    )


@asynccontextmanager
async def open_store(
    settings: Settings, migrate: bool = True
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """Open the database for a command, migrating it to head first (idempotent)."""
    from bot.db.migrate import upgrade  # imported here so light commands start fast
    from bot.db.session import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        if migrate:
            await upgrade(engine)
        yield engine, make_sessionmaker(engine)
    finally:
        await engine.dispose()


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make a subcommand's usage errors (bad or unknown options) one line on stderr and exit code 2."""

    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)

    parse_known = parser.parse_known_args

    def strict(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        # Left-over words would reach the top-level parser, whose error prints the whole usage block.
        parsed, extras = parse_known(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = strict  # type: ignore[method-assign, assignment]
