"""`midbot demo`: a two-site practice with a few days of history, the Twilio simulator and the service, on loopback.

The practice is the synthetic one (``integrations.dispensary.synthetic``) as it stood a few days ago; those days
are then simulated (``bot.sim``: the real planner, dispatcher, dialogs and task routing on a simulated clock),
so the demo opens on queues with work in every one, threads mid-conversation and metrics with data. Each site
gets a pharmacist and a clinic admin, all with one printed password.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import secrets
import signal
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.cli.common import CliError, one_line_errors, open_store, settings_from_env
from bot.cli.service import tune_on_startup
from bot.clock import utcnow
from bot.db.models import Conversation, Patient, Prescription, Site, Task
from bot.db.vocabulary import QUEUES
from bot.logs import AccessLog, configure_logging
from bot.settings import Settings

ORDER = 5
_LOGGER = logging.getLogger(__name__)
EMAIL_DOMAIN = "demo.midbot.test"
HISTORY_DAYS = 3
_ACCOUNTS = (("pharmacist", "pharmacist"), ("financial_navigator", "navigator"), ("clinic_admin", "admin"))
# A patient text that lands in each queue through the ordinary handling (emergency advice, triage, copay help,
# a question for the pharmacy, a refill request naming the way).
_EXAMPLES = {
    "urgent_clinical": {"en": "I have a fever of 101 and chills", "es": "tengo fiebre de 101 y escalofríos"},
    "clinical": {"en": "I have moderate diarrhea since yesterday", "es": "tengo diarrea moderada desde ayer"},
    "refill": {
        "en": "I need a refill delivered please",
        "es": "necesito un resurtido, envíelo a mi casa por favor",
    },
    "financial": {"en": "I can't afford my copay", "es": "no puedo pagar el copago"},
    "general": {"en": "What time do you close today?", "es": "¿A qué hora cierran hoy?"},
}
# A refill asked for without saying how: where the site offers both, midbot asks "delivery or pickup?", so the
# demo opens with a thread mid-conversation whatever the hour it starts (the simulated reminders go out at 10:00
# local time, and their dialogs may all be over by the evening).
_MIDWAY = {"en": "I need a refill", "es": "necesito un resurtido"}
_MIDWAY_BEFORE = timedelta(minutes=1)
_QUEUE_WORDS = {
    "urgent_clinical": "urgent",
    "clinical": "clinical",
    "refill": "refill",
    "financial": "financial",
    "general": "general",
}


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
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic practice and its history")
    demo.add_argument(
        "--history-days",
        type=int,
        default=HISTORY_DAYS,
        help=f"days of texts, replies and tasks simulated before the demo opens (default {HISTORY_DAYS})",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep an existing demo database instead of recreating it"
    )
    demo.set_defaults(func=cmd_demo)
    one_line_errors(demo)


@dataclass
class _SiteCard:
    """What the first screen says about one site."""

    id: str
    name: str
    patients: int
    open_tasks: dict[str, int] = field(default_factory=dict)


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo practice and serve until interrupted."""
    base = settings_from_env()
    port = base.port if args.port is None else args.port
    sim_port = port + 1 if args.simulator_port is None else args.simulator_port
    _check_args(args, port, sim_port)
    _check_free("127.0.0.1", port, sim_port, args.simulator_port is None)
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


def _check_args(args: argparse.Namespace, port: int, sim_port: int) -> None:
    for name, value in (("--port", port), ("--simulator-port", sim_port)):
        if not 1 <= value <= 65535:
            raise CliError(f"{name}: must be from 1 to 65535, got {value}", code=2)
    if port == sim_port:
        raise CliError("--simulator-port: must differ from --port", code=2)
    if not 1 <= args.patients <= 5000:
        raise CliError(f"--patients: must be from 1 to 5000, got {args.patients}", code=2)
    if not 0 <= args.history_days <= 30:
        raise CliError(f"--history-days: must be from 0 to 30, got {args.history_days}", code=2)


def _in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp listens: TIME_WAIT is fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _check_free(host: str, port: int, sim_port: int, sim_follows: bool) -> None:
    """A busy port is one line naming a port that is free (with the next one, for the simulator)."""
    if _in_use(host, port) or (sim_follows and _in_use(host, sim_port)):
        free = next(
            (
                p
                for p in range(port + 1, min(port + 200, 65535))
                if not _in_use(host, p) and not _in_use(host, p + 1)
            ),
            None,
        )
        busy = port if _in_use(host, port) else sim_port
        hint = f"; try --port {free}" if free else ""
        raise CliError(f"error: port {busy} is in use{hint}")
    if _in_use(host, sim_port):
        raise CliError(f"error: port {sim_port} is in use; try --simulator-port {sim_port + 1}")


async def _seed(
    settings: Settings, args: argparse.Namespace
) -> tuple[str, list[_SiteCard], list[dict[str, str]]]:
    from bot.staff.auth import create_user
    from integrations.dispensary.synthetic import generate_practice, load_practice
    from scheduler.planner import replan
    from scheduler.programs import load_default_programs

    now = utcnow()
    start = now - timedelta(days=args.history_days)
    password = secrets.token_urlsafe(12)
    async with open_store(settings) as (engine, sessionmaker):
        async with sessionmaker.begin() as session:
            fresh = await session.scalar(select(Patient.id).limit(1)) is None
            if fresh:
                practice = generate_practice(seed=args.seed, patients=args.patients, today=start.date())
                await load_practice(session, practice)
        async with sessionmaker.begin() as session:
            sites = list(await session.scalars(select(Site).order_by(Site.id)))
            for site in sites:
                await load_default_programs(session, site.id)
                for role, local in _ACCOUNTS:
                    email = f"{local}@{site.id}.{EMAIL_DOMAIN}"
                    await create_user(
                        session, site_id=site.id, email=email, role=role, password=password, update=True
                    )
        if fresh and args.history_days:
            await _history(settings, engine, sessionmaker, start, now, args.seed)
        async with sessionmaker.begin() as session:
            await replan(session, patient_ids=None, now=utcnow())
        cards = await _cards(sessionmaker)
        handsets = await _handsets(sessionmaker)
    return password, cards, handsets


async def _history(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    start: datetime,
    now: datetime,
    seed: int,
) -> None:
    """Simulate the days before ``now``; in the last hour, a patient of each site texts about each queue
    the simulated days left empty (urgent alerts are rare by design: a tenth of a third of check-ins)."""
    from bot.sim.engine import SimSpec, Simulation

    last_hour = max(start, now - timedelta(hours=1))
    if last_hour > start:
        await Simulation(settings, engine, SimSpec(start=start, end=last_hour, seed=seed)).run()
    script = await _examples(sessionmaker, last_hour, now)
    await Simulation(settings, engine, SimSpec(start=last_hour, end=now, seed=seed, scripted=script)).run()


async def _examples(
    sessionmaker: async_sessionmaker[AsyncSession], start: datetime, now: datetime
) -> tuple[tuple[datetime, str, str], ...]:
    """(time, patient, text) for each site's empty queues, and one refill request left mid-dialog, from patients
    who are not in a dialog."""
    async with sessionmaker() as session:
        busy = set(
            await session.scalars(select(Conversation.patient_id).where(Conversation.status == "open"))
        )
        open_queues = set(
            (
                await session.execute(
                    select(Task.site_id, Task.queue).where(Task.status.in_(("open", "claimed")))
                )
            ).all()
        )
        patients = (
            await session.scalars(
                select(Patient)
                .where(Patient.sms_consent.is_(True), Patient.opted_out_at.is_(None))
                .order_by(Patient.site_id, Patient.id)
            )
        ).all()
        sites = list(await session.scalars(select(Site.id).order_by(Site.id)))
    shared = {phone for phone, n in Counter(p.phone for p in patients).items() if n > 1}
    script: list[tuple[datetime, str, str]] = []
    for site_id in sites:
        free = [p for p in patients if p.site_id == site_id and p.id not in busy and p.phone not in shared]
        for queue in QUEUES:
            if (site_id, queue) in open_queues or not free:
                continue
            patient = free.pop(0)
            text = _EXAMPLES[queue]["es" if patient.language == "es" else "en"]
            at = start + (now - start) * (len(script) + 1) / 12
            script.append((at, patient.id, text))
        if free:  # texted just before the demo opens: the question is still waiting for the patient
            patient = free.pop(0)
            script.append((now - _MIDWAY_BEFORE, patient.id, _MIDWAY["es" if patient.language == "es" else "en"]))
    return tuple(script)


async def _cards(sessionmaker: async_sessionmaker[AsyncSession]) -> list[_SiteCard]:
    async with sessionmaker() as session:
        cards = {
            s.id: _SiteCard(s.id, s.name, 0) for s in await session.scalars(select(Site).order_by(Site.id))
        }
        patients = await session.execute(
            select(Prescription.site_id, func.count(func.distinct(Prescription.patient_id))).group_by(
                Prescription.site_id
            )
        )
        for site_id, count in patients:
            if site_id in cards:
                cards[site_id].patients = int(count)
        tasks = await session.execute(
            select(Task.site_id, Task.queue, func.count())
            .where(Task.status.in_(("open", "claimed")))
            .group_by(Task.site_id, Task.queue)
        )
        for site_id, queue, count in tasks:
            if site_id in cards:
                cards[site_id].open_tasks[queue] = int(count)
    return list(cards.values())


async def _handsets(sessionmaker: async_sessionmaker[AsyncSession]) -> list[dict[str, str]]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Patient.phone, Patient.first_name, Patient.last_name, Patient.id).order_by(Patient.id)
            )
        ).all()
    return [{"phone": r.phone, "name": f"{r.first_name} {r.last_name} ({r.id})"} for r in rows]


async def _demo(settings: Settings, sim_port: int, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"midbot demo: building the practice and simulating {args.history_days} days of it…", flush=True)
    seeding = asyncio.ensure_future(_seed(settings, args))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({seeding, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not seeding.done():
        seeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await seeding
        print("\nstopped before the demo opened", flush=True)
        return
    stopping.cancel()
    password, cards, handsets = seeding.result()
    await _serve(settings, sim_port, password, cards, handsets, stop)


async def _serve(
    settings: Settings,
    sim_port: int,
    password: str,
    cards: list[_SiteCard],
    handsets: list[dict[str, str]],
    stop: asyncio.Event,
) -> None:
    from integrations.twilio.simulator.app import SimulatorConfig, start_simulator

    sim_config = SimulatorConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        webhook_url=f"{settings.public_base_url}/twilio/inbound",
    )
    try:
        sim_runner, sim_url = await start_simulator(sim_config, "127.0.0.1", sim_port)
    except OSError:
        raise CliError(f"error: port {sim_port} is in use; try --simulator-port {sim_port + 1}") from None
    app = create_app(settings)
    app.on_startup.append(tune_on_startup)
    runner = web.AppRunner(app, shutdown_timeout=10, access_log_class=AccessLog)
    try:
        await _register_handsets(sim_url, handsets)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.host, settings.port).start()
        except OSError:
            raise CliError(f"error: port {settings.port} is in use; try --port {settings.port + 2}") from None
        _print_first_screen(settings, sim_url, password, cards)
        await stop.wait()
        print("\nstopping midbot demo…", flush=True)
        # The simulator plays Twilio: its status callbacks for the last texts find the service closed. Twilio's
        # failed callbacks never reach a real deployment's log, so they stay out of the demo's terminal too.
        logging.getLogger("integrations.twilio.simulator").setLevel(logging.ERROR)
    finally:
        await runner.cleanup()
        await sim_runner.cleanup()


async def _register_handsets(sim_url: str, handsets: list[dict[str, str]]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim_url}/simulator/handsets", json=handsets) as response:
            if response.status >= 400:
                _LOGGER.warning("simulator did not take the handset list: %s", response.status)


def _tasks_line(card: _SiteCard) -> str:
    counts = [f"{card.open_tasks.get(q, 0)} {_QUEUE_WORDS[q]}" for q in QUEUES]
    return f"open tasks: {', '.join(counts)}"


def _print_first_screen(settings: Settings, sim_url: str, password: str, cards: list[_SiteCard]) -> None:
    base = settings.public_base_url
    lines = [
        "",
        "midbot demo is running (Ctrl-C to stop)",
        "",
        "A two-site practice whose last few days have been simulated: reminders went out, patients answered,",
        "refills were asked for and side effects reported, so every queue has work in it.",
        "",
        f"Sign in at {base}/login (every account's password: {password})",
    ]
    for card in cards:
        lines += [
            "",
            f"  {card.name} ({card.id}): {card.patients} patients, {_tasks_line(card)}",
            f"    pharmacist            pharmacist@{card.id}.{EMAIL_DOMAIN}",
            f"    financial navigator   navigator@{card.id}.{EMAIL_DOMAIN}",
            f"    clinic admin          admin@{card.id}.{EMAIL_DOMAIN}  (sees every queue)",
        ]
    lines += [
        "",
        "What to try",
        f"  1. Sign in as a pharmacist and open the queues ({base}/queues): urgent tasks come first.",
        "  2. Open a task: the patient's whole thread is there. Reply to the patient, then resolve it.",
        f'  3. Be a patient: {sim_url}/simulator/ - pick a handset, text "I need a refill" or',
        '     "tengo diarrea", and watch midbot answer and the task appear in the queue.',
        f"  4. Metrics beside the published benchmarks: {base}/metrics-dashboard",
        "  5. What would the next month bring? In another terminal:",
        f"     MIDBOT_DATABASE_URL={settings.database_url} midbot simulate --weeks 4 --html report.html",
        "",
        f"Also: readiness {base}/readyz, Prometheus {base}/metrics, REST API {base}/api/v1/openapi.json",
        "",
    ]
    print("\n".join(lines), flush=True)
