"""`midbot serve`, `midbot migrate`: run the service and manage the schema."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

from bot.app import create_app
from bot.cli.common import open_store, settings_from_env
from bot.logs import configure_logging

ORDER = 10
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add serve and migrate."""
    serve = sub.add_parser("serve", help="run the web service, webhooks and dispatcher")
    serve.add_argument("--host", help="listen address (default MIDBOT_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default MIDBOT_PORT)")
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(func=cmd_migrate)


async def _migrate(settings_url_holder: object) -> None:
    settings = settings_url_holder
    async with open_store(settings):  # type: ignore[arg-type]
        pass


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Bring the schema to head."""
    settings = settings_from_env()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_migrate(settings))
    print("database schema is at head")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; in-flight requests finish before exit."""
    settings = settings_from_env()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_sqlite:
        # The embedded default migrates itself; PostgreSQL replicas are migrated once, by `midbot migrate`.
        asyncio.run(_migrate(settings))
    app = create_app(settings)
    _LOGGER.info("midbot serving on http://%s:%s", settings.host, settings.port)
    web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=30)
    return 0
