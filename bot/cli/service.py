"""`midbot serve`, `midbot migrate`: run the service and manage the schema."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from aiohttp import web

from bot.app import create_app
from bot.cli.common import CliError, open_store, settings_from_env
from bot.logs import AccessLog, configure_logging
from conversations.classify import classify

ORDER = 10
_LOGGER = logging.getLogger(__name__)
_SWITCH_INTERVAL = 0.001  # seconds; CPython's default is 0.005


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
    if settings.uses_default_token_off_loopback:
        raise CliError(
            "MIDBOT_TWILIO_AUTH_TOKEN: set your Twilio auth token; the built-in simulator token is public and "
            f"is refused for {settings.twilio_api_base_url}"
        )
    if settings.is_sqlite:
        # The embedded default migrates itself; PostgreSQL replicas are migrated once, by `midbot migrate`.
        asyncio.run(_migrate(settings))
    app = create_app(settings)
    app.on_startup.append(tune_on_startup)  # after the store and the SMS engine are up (cleanup contexts)
    _LOGGER.info("midbot serving on http://%s:%s", settings.host, settings.port)
    web.run_app(app, host=settings.host, port=settings.port, print=None, shutdown_timeout=30, access_log_class=AccessLog)
    return 0


async def tune_on_startup(_app: web.Application) -> None:
    tune_process()


def tune_process() -> None:
    """Ready this process for serving webhooks (the serving commands call it once, before serving).

    * Load the classifier's lexicons now: about a second the first text would otherwise wait for.
    * Move the startup heap out of the garbage collector's way: with the lexicons, the ORM and the app in
      memory (about 100,000 objects), every full collection scanned them all and stalled the process for
      100-500 ms every few seconds under load. Frozen objects are never scanned (nor freed: the heap is
      collected once first).
    * Hand the GIL over more often: the database thread (bot.db.worker) runs Python between its SQLite calls,
      and with the default 5 ms slices a webhook answer waited for several of them.
    """
    classify("warm up")
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL))
