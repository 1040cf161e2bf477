"""`midbot simulator`: run the local Twilio-compatible simulator and handset page."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from bot.cli.common import CliError, settings_from_env
from bot.logs import configure_logging
from bot.settings import Settings
from integrations.twilio.simulator import SimulatorConfig, create_simulator_app

ORDER = 85
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulator`."""
    parser = sub.add_parser(
        "simulator",
        help="run the local Twilio simulator (Messages API, signed webhooks, handset page)",
        description="Serves the Twilio Messages API subset midbot uses, posts signed webhooks to midbot, "
        "and a handset page at /simulator/. Point MIDBOT_TWILIO_API_BASE_URL at the printed URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="listen port (default 8099)")
    parser.add_argument(
        "--webhook-url", help="midbot's incoming-message URL (default MIDBOT_PUBLIC_BASE_URL/twilio/inbound)"
    )
    parser.add_argument("--account-sid", help="account sid to accept (default MIDBOT_TWILIO_ACCOUNT_SID)")
    parser.add_argument(
        "--auth-token", help="auth token to accept and sign with (default MIDBOT_TWILIO_AUTH_TOKEN)"
    )
    parser.add_argument("--seed", type=int, help="seed message sids for repeatable runs")
    parser.set_defaults(func=cmd_simulator)


def _config(args: argparse.Namespace, settings: Settings) -> SimulatorConfig:
    webhook = args.webhook_url or f"{settings.public_base_url}/twilio/inbound"
    if not webhook.startswith(("http://", "https://")):
        raise CliError(f"--webhook-url: must be an http:// or https:// URL, got {webhook!r}")
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port: must be from 1 to 65535, got {args.port}")
    return SimulatorConfig(
        account_sid=args.account_sid or settings.twilio_account_sid,
        auth_token=args.auth_token or settings.twilio_auth_token.get_secret_value(),
        webhook_url=webhook,
        seed=args.seed,
    )


def cmd_simulator(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM."""
    settings = settings_from_env()
    config = _config(args, settings)
    configure_logging(settings.log_level, settings.log_format)
    base = f"http://{args.host}:{args.port}"
    print(
        f"Twilio simulator: {base}  (handset page {base}/simulator/, webhooks to {config.webhook_url})",
        flush=True,
    )
    try:
        web.run_app(create_simulator_app(config), host=args.host, port=args.port, print=None, access_log=None)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
