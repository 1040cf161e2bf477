"""Run the Twilio simulator alone: ``python -m integrations.twilio.simulator [--port 8099] ...``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from integrations.twilio.simulator.app import SimulatorConfig, create_simulator_app

_LOGGER = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options, defaulting to the MIDBOT_TWILIO_* and MIDBOT_PUBLIC_BASE_URL variables."""
    env = os.environ
    public = env.get("MIDBOT_PUBLIC_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
    parser = argparse.ArgumentParser(prog="python -m integrations.twilio.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--webhook-url", default=f"{public}/twilio/inbound")
    parser.add_argument(
        "--account-sid", default=env.get("MIDBOT_TWILIO_ACCOUNT_SID", SimulatorConfig.account_sid)
    )
    parser.add_argument(
        "--auth-token", default=env.get("MIDBOT_TWILIO_AUTH_TOKEN", SimulatorConfig.auth_token)
    )
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SimulatorConfig(
        account_sid=args.account_sid, auth_token=args.auth_token, webhook_url=args.webhook_url, seed=args.seed
    )
    print(f"Twilio simulator on http://{args.host}:{args.port} (handset page /simulator/)", flush=True)
    try:
        web.run_app(create_simulator_app(config), host=args.host, port=args.port, print=None, access_log=None)
    except OSError as exc:
        print(f"simulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
