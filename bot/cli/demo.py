"""`midbot demo`: a fresh SQLite practice, the Twilio simulator and the service, all on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
from datetime import date
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.cli.common import open_store, settings_from_env
from bot.cli.service import tune_on_startup
from bot.clock import SystemClock
from bot.db.models import Patient, Site
from bot.logs import AccessLog, configure_logging
from bot.settings import Settings

ORDER = 5
_LOGGER = logging.getLogger(__name__)
DEMO_EMAIL = "pharmacist@demo.midbot.test"
ADMIN_EMAIL = "admin@demo.midbot.test"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add demo."""
    demo = sub.add_parser(
        "demo", help="run a demo practice with the built-in Twilio simulator (no account needed)"
    )
    demo.add_argument("--port", type=int, default=None, help="service port (default MIDBOT_PORT, 8080)")
    demo.add_argument(
        "--simulator-port", type=int, default=None, help="simulator port (default service port + 1)"
    )
    demo.add_argument("--database", default="./var/demo.db", help="SQLite file, recreated on each run")
    demo.add_argument("--patients", type=int, default=200, help="synthetic patients to create")
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic practice")
    demo.add_argument(
        "--keep", action="store_true", help="keep an existing demo database instead of recreating it"
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo practice and serve until interrupted."""
    base = settings_from_env()
    port = args.port or base.port
    sim_port = args.simulator_port or port + 1
    db_path = Path(args.database)
    if db_path.exists() and not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    settings = base.model_copy(
        update={
            "database_url": f"sqlite+aiosqlite:///{db_path}",
            "port": port,
            "public_base_url": f"http://127.0.0.1:{port}",
            "twilio_api_base_url": f"http://127.0.0.1:{sim_port}",
            "host": "127.0.0.1",
        }
    )
    # The demo is for people: keep the terminal to warnings unless a log level was asked for.
    level = settings.log_level if "MIDBOT_LOG_LEVEL" in os.environ else "WARNING"
    configure_logging(level, settings.log_format)
    asyncio.run(_demo(settings, sim_port, args))
    return 0


async def _seed(settings: Settings, args: argparse.Namespace) -> tuple[str, str, list[dict[str, str]]]:
    from bot.staff.auth import create_user
    from integrations.dispensary.synthetic import generate_practice, load_practice
    from scheduler.planner import replan
    from scheduler.programs import load_default_programs

    async with open_store(settings) as (_engine, sessionmaker):
        async with sessionmaker.begin() as session:
            has_data = await session.scalar(select(Patient.id).limit(1))
            password = secrets.token_urlsafe(12)
            if not has_data:
                practice = generate_practice(seed=args.seed, patients=args.patients, today=date.today())
                await load_practice(session, practice)
        async with sessionmaker.begin() as session:
            sites = (await session.scalars(select(Site).order_by(Site.id))).all()
            for site in sites:
                await load_default_programs(session, site.id)
            first = sites[0].id
            await create_user(
                session, site_id=first, email=DEMO_EMAIL, role="pharmacist", password=password, update=True
            )
            await create_user(
                session, site_id=first, email=ADMIN_EMAIL, role="clinic_admin", password=password, update=True
            )
        async with sessionmaker.begin() as session:
            await replan(session, patient_ids=None, now=SystemClock().now())
        handsets = await _handsets(sessionmaker)
    return first, password, handsets


async def _handsets(sessionmaker: async_sessionmaker[AsyncSession]) -> list[dict[str, str]]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Patient.phone, Patient.first_name, Patient.last_name, Patient.id).order_by(Patient.id)
            )
        ).all()
    return [{"phone": r.phone, "name": f"{r.first_name} {r.last_name} ({r.id})"} for r in rows]


async def _demo(settings: Settings, sim_port: int, args: argparse.Namespace) -> None:
    from integrations.twilio.simulator.app import SimulatorConfig, start_simulator

    site_id, password, handsets = await _seed(settings, args)
    sim_config = SimulatorConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        webhook_url=f"{settings.public_base_url}/twilio/inbound",
    )
    sim_runner, sim_url = await start_simulator(sim_config, "127.0.0.1", sim_port)
    await _register_handsets(sim_url, handsets)
    app = create_app(settings)
    app.on_startup.append(tune_on_startup)
    runner = web.AppRunner(app, shutdown_timeout=10, access_log_class=AccessLog)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    _print_urls(settings, sim_url, password)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("\nstopping midbot demo…", flush=True)
    await runner.cleanup()
    await sim_runner.cleanup()


async def _register_handsets(sim_url: str, handsets: list[dict[str, str]]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim_url}/simulator/handsets", json=handsets) as response:
            if response.status >= 400:
                _LOGGER.warning("simulator did not take the handset list: %s", response.status)


def _print_urls(settings: Settings, sim_url: str, password: str) -> None:
    base = settings.public_base_url
    print(
        "\nmidbot demo is running (Ctrl-C to stop)\n"
        f"  service        {base}/            readiness {base}/readyz\n"
        f"  staff sign-in  {base}/login       {DEMO_EMAIL} / {password}\n"
        f"                                    {ADMIN_EMAIL} / {password} (clinic admin)\n"
        f"  queues         {base}/queues\n"
        f"  metrics        {base}/metrics-dashboard   Prometheus {base}/metrics\n"
        f"  REST API       {base}/api/v1/openapi.json\n"
        f"  handsets       {sim_url}/simulator/   (text as a patient and see midbot's reply)\n",
        flush=True,
    )
