"""Inbound-webhook benchmark: midbot's POST /twilio/inbound against a bare aiohttp handler, same run.

Run ``python bench/bench_webhook.py [--quick]``. It starts three processes on 127.0.0.1 — ``midbot serve``
on a fresh seeded SQLite file, a bare aiohttp server that reads the form and answers empty TwiML, and the
Twilio simulator (where midbot's replies go) — then drives signed Twilio-shaped form posts at rising
concurrency (closed loop) against both, and a fixed-rate open-loop phase against midbot. It prints a
table and, as the last line, one JSON object with every figure. Children are stopped on every exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from integrations.twilio.signature import SIGNATURE_HEADER, sign

_LOGGER = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "bench-webhook-auth-token"
SITE_PHONE = "+15005550006"
BODIES = ("yes", "1", "refill pls", "nausea is bad", "thanks", "when is my refill ready?")
TARGET_RATIO = 0.45  # issue 11
TARGET_P99_MS = 40.0  # issue 11: p99 < 40 ms at 100 req/s
_PR_SET_PDEATHSIG = 1


# --- configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """How much load, for how long; every count and duration is bounded."""

    patients: int = 500
    levels: tuple[int, ...] = (1, 4, 16, 64)
    max_requests: int = 4000
    max_seconds: float = 5.0
    warmup: int = 40
    rate: float = 100.0
    rate_seconds: float = 10.0
    settle_seconds: float = 8.0
    drain_seconds: float = 60.0  # before the fixed-rate phase: the closed loops' backlog drains first
    budget_seconds: float = 110.0
    timeout: float = 10.0
    pin: bool = False
    profile: str | None = None


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not levels or any(not 1 <= level <= 512 for level in levels):
        raise argparse.ArgumentTypeError("each level must be from 1 to 512")
    return levels


def _positive(kind: Callable[[str], float], high: float) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"must be > 0 and <= {high:g}, got {text}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None = None) -> tuple[BenchConfig, argparse.Namespace]:
    """The run's configuration: defaults for a full run (about 90 s), --quick for a few hundred posts."""
    parser = argparse.ArgumentParser(prog="python bench/bench_webhook.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few hundred requests (about 15 s)")
    parser.add_argument("--patients", type=_positive(int, 100_000), help="seeded patients (default 500)")
    parser.add_argument("--levels", type=_levels, help="closed-loop concurrency levels (default 1,4,16,64)")
    parser.add_argument("--max-requests", type=_positive(int, 1_000_000), help="per level and target")
    parser.add_argument("--max-seconds", type=_positive(float, 10), help="per level and target (<= 10)")
    parser.add_argument("--warmup", type=_positive(int, 10_000), help="unmeasured requests per target")
    parser.add_argument("--rate", type=_positive(float, 2000), help="open-loop requests/s (default 100)")
    parser.add_argument("--rate-seconds", type=_positive(float, 30), help="open-loop duration (default 10)")
    parser.add_argument("--pin", action="store_true", help="pin client and servers to different CPUs")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, child logs)")
    parser.add_argument(
        "--profile", metavar="FILE", help="run midbot under cProfile and write its stats to FILE (slower)"
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    base = (
        BenchConfig(
            patients=100, max_requests=30, warmup=10, rate_seconds=0.6, settle_seconds=3.0, drain_seconds=3.0
        )
        if args.quick
        else BenchConfig()
    )
    overrides = {
        name: getattr(args, name)
        for name in ("patients", "levels", "max_requests", "max_seconds", "warmup", "rate", "rate_seconds")
        if getattr(args, name) is not None
    }
    overrides["pin"] = args.pin
    overrides["profile"] = str(Path(args.profile).resolve()) if args.profile else None
    return BenchConfig(**{**base.__dict__, **overrides}), args


# --- the bare baseline server (a child process of its own) ----------------------------------------------


async def _bare_inbound(request: web.Request) -> web.Response:
    await request.post()
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def _bare_health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def serve_bare(port: int) -> int:
    """Serve the baseline: one handler that reads the form and returns empty TwiML."""
    app = web.Application()
    app.router.add_post("/twilio/inbound", _bare_inbound)
    app.router.add_get("/healthz", _bare_health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    return 0


# --- seeding ------------------------------------------------------------------------------------------


def patient_phone(index: int) -> str:
    """A distinct E.164 number; the last four digits stay clear of the simulator's magic suffixes."""
    return f"+1312{200 + index // 5000:03d}{2000 + index % 5000:04d}"


async def seed_database(database_url: str, patients: int, today: date) -> None:
    """Migrate a fresh database and add one site and ``patients`` patients with an active oral drug."""
    from bot.db.migrate import upgrade
    from bot.db.models import Fill, Patient, Prescription, Site
    from bot.db.session import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        site = Site(id="bench", name="Bench Oncology Pharmacy", phone=SITE_PHONE, time_zone="America/Chicago")
        ids = [(f"p{i:06d}", f"rx{i:06d}", f"f{i:06d}") for i in range(patients)]
        patient_rows = [
            Patient(
                id=pid,
                site_id="bench",
                first_name="Pat",
                last_name=f"Bench{n}",
                phone=patient_phone(n),
                language="es" if n % 5 == 0 else "en",
                sms_consent=True,
                detailed_consent=n % 2 == 0,
            )
            for n, (pid, _rx, _fill) in enumerate(ids)
        ]
        prescriptions = [
            Prescription(
                id=rx,
                patient_id=pid,
                site_id="bench",
                drug="capecitabine",
                therapy_class="oncology",
                payer_type="commercial",
                status="active",
                written_on=today - timedelta(days=60),
            )
            for pid, rx, _fill in ids
        ]
        fills = [
            Fill(
                id=fill,
                prescription_id=rx,
                dispensed_on=today - timedelta(days=25),
                days_supply=28,
                quantity=56,
                copay_cents=2500,
            )
            for _pid, rx, fill in ids
        ]
        async with make_sessionmaker(engine).begin() as session:
            # The models declare no relationships, so flush parents before children for the foreign keys.
            for rows in ([site], patient_rows, prescriptions, fills):
                session.add_all(rows)
                await session.flush()
    finally:
        await engine.dispose()


# --- child processes -----------------------------------------------------------------------------------


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One started server process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    url: str

    def tail(self, lines: int = 15) -> str:
        """The end of the child's log, for error messages."""
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Children:
    """The benchmark's server processes; ``stop`` ends each one it started, by pid."""

    workdir: Path
    children: dict[str, Child] = field(default_factory=dict)

    def start(
        self, name: str, argv: list[str], env: dict[str, str], url: str, cpus: set[int] | None
    ) -> Child:
        """Start ``argv`` with output to ``workdir/name.log``."""
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        if cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, cpus)
        child = self.children[name] = Child(name, process, log_path, log, url)
        return child

    def stop(self) -> None:
        """SIGTERM each child, then SIGKILL whoever is still alive after a grace period."""
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 10
        for child in self.children.values():
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(timeout=5)
            child.log.close()

    def cpu_seconds(self, name: str) -> float | None:
        """User + system CPU the child has used so far (Linux /proc), or None elsewhere."""
        try:
            fields = (
                Path(f"/proc/{self.children[name].process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            )
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def wait_idle(self, name: str, max_seconds: float, busy_share: float = 0.08) -> bool:
        """Wait until the child uses under ``busy_share`` of a CPU over a 0.25 s window; False on time-out.

        midbot keeps working after it answers (reply delivery, status callbacks); without this, that
        backlog would be measured as part of the next phase, against the bare server too.
        """
        deadline = time.monotonic() + max_seconds
        before = self.cpu_seconds(name)
        while before is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            after = self.cpu_seconds(name)
            if after is None or after - before < busy_share * 0.25:
                return True
            before = after
        return before is None


async def wait_ready(session: aiohttp.ClientSession, child: Child, path: str, timeout: float = 30.0) -> None:
    """Poll ``path`` until it answers below 500; fail with the child's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(child.url + path, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status < 500:
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name} not ready after {timeout:g} s:\n{child.tail()}")


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any MIDBOT_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIDBOT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --- load ----------------------------------------------------------------------------------------------


class Forms:
    """Signed, Twilio-shaped incoming-message forms: unique MessageSid, From cycling over the patients."""

    def __init__(self, patients: int, url: str, auth_token: str) -> None:
        self._patients = patients
        self._url = url
        self._token = auth_token
        self._count = 0
        self._run = os.urandom(4).hex()

    def next(self) -> tuple[dict[str, str], dict[str, str]]:
        """The next (form, headers) pair."""
        n = self._count
        self._count += 1
        sid = f"SM{self._run}{n:024x}"
        params = {
            "ToCountry": "US",
            "ToState": "IL",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "CHICAGO",
            "FromZip": "60601",
            "SmsSid": sid,
            "FromState": "IL",
            "SmsStatus": "received",
            "FromCity": "CHICAGO",
            "Body": BODIES[n % len(BODIES)],
            "FromCountry": "US",
            "To": SITE_PHONE,
            "ToZip": "60601",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": patient_phone((n * 7919) % self._patients),
            "ApiVersion": "2010-04-01",
        }
        return params, {SIGNATURE_HEADER: sign(self._token, self._url, params)}


@dataclass
class Phase:
    """What one load phase measured."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    cpu_seconds: float | None = None

    def fail(self, kind: str) -> None:
        """Count one failed request."""
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def summary(self) -> dict[str, Any]:
        """Throughput, latency percentiles (ms) and errors."""
        ok = len(self.latencies)
        ordered = sorted(self.latencies)
        done = ok + self.errors
        return {
            "requests": done,
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "seconds": round(self.elapsed, 3),
            "rps": round(ok / self.elapsed, 1) if self.elapsed > 0 else 0.0,
            "p50_ms": round(percentile(ordered, 50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 99) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else 0.0,
            "cpu_ms_per_req": (
                round(self.cpu_seconds * 1000 / done, 2) if self.cpu_seconds is not None and done else None
            ),
        }


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def post_one(
    session: aiohttp.ClientSession, url: str, forms: Forms, phase: Phase, planned: float | None = None
) -> None:
    """One signed POST, counted as a latency or an error in ``phase``.

    Latency runs to the end of the body from ``planned`` (perf_counter), or else from the moment the
    signed form is ready.
    """
    params, headers = forms.next()
    start = time.perf_counter() if planned is None else planned
    try:
        async with session.post(url, data=params, headers=headers) as resp:
            text = await resp.text()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        phase.fail(type(exc).__name__)
        return
    if status != 200:
        phase.fail(f"http_{status}")
    elif "<Response" not in text:
        phase.fail("not_twiml")
    else:
        phase.latencies.append(time.perf_counter() - start)


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    forms: Forms,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> Phase:
    """``concurrency`` workers each send the next request as soon as the last one is answered."""
    phase = Phase()
    budget = iter(range(max_requests))
    stop_at = time.perf_counter() + max_seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at and next(budget, None) is not None:
            await post_one(session, url, forms, phase)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - began
    return phase


async def open_loop(
    session: aiohttp.ClientSession, url: str, forms: Forms, rate: float, seconds: float
) -> Phase:
    """Send on a timer (``rate`` per second) whatever the answers do; latency counts from the planned time."""
    phase = Phase()
    total = max(1, int(rate * seconds))
    began = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        planned = began + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post_one(session, url, forms, phase, planned)))
    await asyncio.gather(*tasks)
    phase.elapsed = time.perf_counter() - began
    return phase


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class Targets:
    """The two URLs under test and their form factories."""

    midbot_url: str
    bare_url: str
    midbot_forms: Forms
    bare_forms: Forms


def _cpu_sets(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(client CPUs, server CPUs) when pinning and at least two CPUs are ours; else no pinning."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def start_children(children: Children, database_url: str, cfg: BenchConfig) -> Targets:
    """Start the simulator, midbot and the bare server on free loopback ports."""
    client_cpus, server_cpus = _cpu_sets(cfg.pin)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    sim_port, midbot_port, bare_port = free_port(), free_port(), free_port()
    midbot_base = f"http://127.0.0.1:{midbot_port}"
    sim_base = f"http://127.0.0.1:{sim_port}"
    children.start(
        "simulator",
        [
            sys.executable,
            "-m",
            "integrations.twilio.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(sim_port),
            "--webhook-url",
            f"{midbot_base}/twilio/inbound",
            "--account-sid",
            ACCOUNT_SID,
            "--auth-token",
            AUTH_TOKEN,
            "--seed",
            "7",
        ],
        child_env({}),
        sim_base,
        client_cpus,
    )
    children.start(
        "midbot",
        [
            sys.executable,
            *(["-m", "cProfile", "-o", cfg.profile] if cfg.profile else []),
            "-m",
            "bot",
            "serve",
        ],
        child_env(
            {
                "MIDBOT_DATABASE_URL": database_url,
                "MIDBOT_HOST": "127.0.0.1",
                "MIDBOT_PORT": str(midbot_port),
                "MIDBOT_PUBLIC_BASE_URL": midbot_base,
                "MIDBOT_TWILIO_API_BASE_URL": sim_base,
                "MIDBOT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "MIDBOT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "MIDBOT_RUN_DISPATCHER": "false",
                "MIDBOT_LOG_LEVEL": "WARNING",
                "MIDBOT_LOG_FORMAT": "text",
            }
        ),
        midbot_base,
        server_cpus,
    )
    children.start(
        "bare",
        [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(bare_port)],
        child_env({}),
        f"http://127.0.0.1:{bare_port}",
        server_cpus,
    )
    midbot_url, bare_url = f"{midbot_base}/twilio/inbound", f"http://127.0.0.1:{bare_port}/twilio/inbound"
    return Targets(
        midbot_url,
        bare_url,
        Forms(cfg.patients, midbot_url, AUTH_TOKEN),
        Forms(cfg.patients, bare_url, AUTH_TOKEN),
    )


async def _measure(
    children: Children,
    session: aiohttp.ClientSession,
    name: str,
    url: str,
    forms: Forms,
    level: int,
    cfg: BenchConfig,
) -> dict[str, Any]:
    cpu_before = children.cpu_seconds(name)
    phase = await closed_loop(session, url, forms, level, cfg.max_requests, cfg.max_seconds)
    cpu_after = children.cpu_seconds(name)
    if cpu_before is not None and cpu_after is not None:
        phase.cpu_seconds = cpu_after - cpu_before
    return phase.summary()


async def run_load(children: Children, targets: Targets, cfg: BenchConfig) -> dict[str, Any]:
    """Warm up, run each concurrency level against bare then midbot, then the fixed-rate phase."""
    limit = max(max(cfg.levels), 256)
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, force_close=False)
    timeout = aiohttp.ClientTimeout(total=cfg.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await wait_ready(session, children.children["simulator"], "/simulator/handsets")
        await wait_ready(session, children.children["midbot"], "/healthz")
        await wait_ready(session, children.children["bare"], "/healthz")
        for url, forms in (
            (targets.bare_url, targets.bare_forms),
            (targets.midbot_url, targets.midbot_forms),
        ):
            warm = await closed_loop(session, url, forms, 4, cfg.warmup, 10.0)
            if warm.errors:
                name = "bare" if url == targets.bare_url else "midbot"
                raise RuntimeError(
                    f"warm-up against {name} failed: {warm.error_kinds}\n{children.children[name].tail()}"
                )
        settled = [await children.wait_idle("midbot", cfg.settle_seconds)]
        levels: list[dict[str, Any]] = []
        skipped: list[int] = []
        # Keep the whole run bounded: a level starts only if it and the fixed-rate phase still fit.
        deadline = time.monotonic() + cfg.budget_seconds - cfg.rate_seconds - cfg.timeout
        for level in cfg.levels:
            if levels and time.monotonic() + 2 * cfg.max_seconds + cfg.settle_seconds > deadline:
                skipped.append(level)
                continue
            bare = await _measure(children, session, "bare", targets.bare_url, targets.bare_forms, level, cfg)
            midbot = await _measure(
                children, session, "midbot", targets.midbot_url, targets.midbot_forms, level, cfg
            )
            ratio = round(midbot["rps"] / bare["rps"], 3) if bare["rps"] else 0.0
            levels.append({"concurrency": level, "bare": bare, "midbot": midbot, "ratio": ratio})
            settled.append(await children.wait_idle("midbot", cfg.settle_seconds))
        # The fixed-rate phase measures midbot at 100 req/s from rest: first let the closed loops' backlog
        # (replies paced by the site's send rate, status callbacks) drain, for up to drain_seconds.
        settled.append(await children.wait_idle("midbot", cfg.drain_seconds))
        cpu_before = children.cpu_seconds("midbot")
        fixed = await open_loop(session, targets.midbot_url, targets.midbot_forms, cfg.rate, cfg.rate_seconds)
        cpu_after = children.cpu_seconds("midbot")
        if cpu_before is not None and cpu_after is not None:
            fixed.cpu_seconds = cpu_after - cpu_before
        settled.append(await children.wait_idle("midbot", cfg.settle_seconds))
    return {
        "levels": levels,
        "fixed_rate": {"target_rps": cfg.rate, **fixed.summary()},
        "midbot_busy_after_settle": settled.count(False),
        "skipped_levels": skipped,
    }


def store_counts(db_path: Path) -> dict[str, int]:
    """What midbot stored: inbound rows, processed ones, replies, tasks, signals (a sanity check)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        return {
            "inbound": one("SELECT count(*) FROM message WHERE direction = 'in'"),
            "inbound_processed": one(
                "SELECT count(*) FROM message WHERE direction = 'in' AND processed_at IS NOT NULL"
            ),
            "replies": one("SELECT count(*) FROM message WHERE direction = 'out'"),
            "replies_sent": one(
                "SELECT count(*) FROM message WHERE direction = 'out' AND provider_sid IS NOT NULL"
            ),
            "tasks": one("SELECT count(*) FROM task"),
            "signals": one("SELECT count(*) FROM signal"),
        }


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Best levels, peak ratio and whether the targets were met."""
    levels = result["levels"]
    best_midbot = max(levels, key=lambda row: row["midbot"]["rps"])
    best_bare = max(levels, key=lambda row: row["bare"]["rps"])
    peak_ratio = best_midbot["midbot"]["rps"] / best_bare["bare"]["rps"] if best_bare["bare"]["rps"] else 0.0
    fixed = result["fixed_rate"]
    return {
        "midbot_best_concurrency": best_midbot["concurrency"],
        "midbot_best_rps": best_midbot["midbot"]["rps"],
        "bare_best_concurrency": best_bare["concurrency"],
        "bare_best_rps": best_bare["bare"]["rps"],
        "ratio_at_midbot_best_level": best_midbot["ratio"],
        "peak_ratio": round(peak_ratio, 3),
        "targets": {"ratio_min": TARGET_RATIO, "fixed_rate_p99_ms_max": TARGET_P99_MS},
        "ratio_ok": peak_ratio >= TARGET_RATIO,
        "fixed_rate_p99_ok": fixed["p99_ms"] < TARGET_P99_MS and fixed["errors"] == 0,
    }


def render_table(result: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [
        "closed loop (signed Twilio form posts, 127.0.0.1)",
        f"{'conc':>5} | {'bare req/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'midbot req/s':>12} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'err':>4} {'cpu ms/req':>10} | {'ratio':>6}",
    ]
    for row in result["levels"]:
        b, m = row["bare"], row["midbot"]
        cpu = f"{m['cpu_ms_per_req']:.2f}" if m["cpu_ms_per_req"] is not None else "-"
        lines.append(
            f"{row['concurrency']:>5} | {b['rps']:>10.1f} {b['p50_ms']:>8.2f} {b['p99_ms']:>8.2f} | "
            f"{m['rps']:>12.1f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} {m['errors']:>4} {cpu:>10} | "
            f"{row['ratio']:>6.3f}"
        )
    v, f = result["verdict"], result["fixed_rate"]
    ok = {True: "OK", False: "MISSED"}
    lines += [
        f"best: midbot {v['midbot_best_rps']:.1f} req/s at {v['midbot_best_concurrency']}, bare "
        f"{v['bare_best_rps']:.1f} req/s at {v['bare_best_concurrency']}; ratio at midbot's best level "
        f"{v['ratio_at_midbot_best_level']:.3f}, peak/peak {v['peak_ratio']:.3f} "
        f"(target >= {TARGET_RATIO:.2f}: {ok[v['ratio_ok']]})",
        f"open loop {f['target_rps']:g} req/s for {f['seconds']:.1f} s against midbot: {f['requests']} sent, "
        f"{f['rps']:.1f} req/s answered, p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, max "
        f"{f['max_ms']:.2f} ms, errors {f['errors']} (target p99 < {TARGET_P99_MS:g} ms: "
        f"{ok[v['fixed_rate_p99_ok']]})",
        f"midbot stored: {json.dumps(result['stored'])}",
    ]
    if result["skipped_levels"]:
        lines.append(f"skipped levels (time budget): {result['skipped_levels']}")
    if result["midbot_busy_after_settle"]:
        lines.append(
            f"midbot was still busy after {result['midbot_busy_after_settle']} settle wait(s): its backlog "
            "overlapped the next phase"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so the finally blocks stop the children."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(cfg: BenchConfig, keep: bool = False) -> dict[str, Any]:
    """Seed, start the three servers, load them, stop them; returns every figure."""
    workdir = Path(tempfile.mkdtemp(prefix="midbot-bench-webhook-"))
    db_path = workdir / "midbot.db"
    database_url = f"sqlite+aiosqlite:///{db_path}"
    children = Children(workdir)
    try:
        try:
            asyncio.run(seed_database(database_url, cfg.patients, datetime.now(UTC).date()))
            targets = start_children(children, database_url, cfg)
            result = asyncio.run(run_load(children, targets, cfg))
        finally:
            children.stop()
        result["stored"] = store_counts(db_path)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{exc}\n(database and child logs kept in {workdir})" if keep else str(exc)
        ) from None
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result["verdict"] = verdict(result)
    result["config"] = {
        **cfg.__dict__,
        "levels": list(cfg.levels),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
    }
    if keep:
        result["workdir"] = str(workdir)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table, then the JSON line last."""
    cfg, args = parse_args(argv)
    if args.serve_bare is not None:
        return serve_bare(args.serve_bare)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with _sigterm_exits():
            result = run(cfg, keep=args.keep)
    except KeyboardInterrupt:
        print("bench_webhook: interrupted; children stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"bench_webhook: {exc}", file=sys.stderr)
        return 1
    print(render_table(result), flush=True)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
