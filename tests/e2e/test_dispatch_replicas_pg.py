"""Replica safety on real PostgreSQL: three `midbot dispatch` processes, one killed mid-batch, every row once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, insert, select

from bot.db.migrate import upgrade
from bot.db.models import Fill, Outreach, Patient, Prescription, Site
from bot.db.session import make_engine, make_sessionmaker
from integrations.twilio.simulator.app import SimulatorConfig, start_simulator
from tests import phi
from tests.e2e.conftest import ACCOUNT, AUTH_TOKEN

# 2,000 rows: a kill lands mid-batch (after 200 sent) with batches of 50 in flight on each replica; more rows only
# make the suite slower (MIDBOT_TEST_REPLICA_ROWS=5000 for the long run).
ROWS = int(os.environ.get("MIDBOT_TEST_REPLICA_ROWS", "2000"))
NOW = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 10:00 in Chicago


async def _seed(url: str) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        session.add(
            Site(
                id="S1",
                name="Lakeside Pharmacy",
                phone="+13125550100",
                time_zone="America/Chicago",
                send_rate=10000.0,
                settings={},
            )
        )
        await session.flush()
        ids = [f"P{i:05d}" for i in range(ROWS)]
        await session.execute(
            insert(Patient),
            [
                {
                    "id": pid,
                    "site_id": "S1",
                    "first_name": "Pat",
                    "last_name": "Doe",
                    "phone": f"+1312{i:07d}",
                    "language": "en",
                    "sms_consent": True,
                    "detailed_consent": False,
                    "phone_status": "ok",
                    "deliverability": {},
                }
                for i, pid in enumerate(ids)
            ],
        )
        await session.execute(
            insert(Prescription),
            [
                {
                    "id": f"RX{pid}",
                    "patient_id": pid,
                    "site_id": "S1",
                    "drug": "capecitabine",
                    "therapy_class": "oncology",
                    "payer_type": "commercial",
                    "status": "active",
                }
                for pid in ids
            ],
        )
        await session.execute(
            insert(Fill),
            [
                {
                    "id": f"F{pid}",
                    "prescription_id": f"RX{pid}",
                    "dispensed_on": date(2026, 10, 30),
                    "days_supply": 28,
                    "quantity": 56,
                    "copay_cents": 0,
                }
                for pid in ids
            ],
        )
        await session.execute(
            insert(Outreach),
            [
                {
                    "idempotency_key": f"{pid}:RX{pid}:refill:run_out-2:2026-11-24",
                    "patient_id": pid,
                    "prescription_id": f"RX{pid}",
                    "program_id": "refill",
                    "kind": "refill_reminder",
                    "step": "run_out-2",
                    "due_at": NOW - timedelta(minutes=5),
                    "deadline_at": NOW + timedelta(hours=8),
                    "state": "planned",
                    "reason": "",
                    "attempts": 0,
                }
                for pid in ids
            ],
        )
    await engine.dispose()


async def _states(url: str) -> Counter[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(Outreach.state, func.count()).group_by(Outreach.state))).all()
        return Counter({state: n for state, n in rows})
    finally:
        await engine.dispose()


async def _accept(_request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _spawn(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as err:  # a file, not a pipe: a full pipe would stall the dispatcher
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "dispatch",
            "--now",
            NOW.isoformat(),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )


async def test_three_dispatchers_one_killed_each_row_sent_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    await _seed(postgres_url)
    callbacks = web.Application()
    callbacks.router.add_post("/twilio/status", _accept)
    cb_runner = web.AppRunner(callbacks)
    await cb_runner.setup()
    cb_site = web.TCPSite(cb_runner, "127.0.0.1", 0)
    await cb_site.start()
    cb_port = cb_runner.addresses[0][1]
    sim_runner, sim_url = await start_simulator(
        SimulatorConfig(
            account_sid=ACCOUNT,
            auth_token=AUTH_TOKEN,
            webhook_url="http://127.0.0.1:9/none",
            callback_delays=(0.0, 0.0),
        ),
        "127.0.0.1",
        0,
    )
    env = {
        **os.environ,
        "MIDBOT_DATABASE_URL": postgres_url,
        "MIDBOT_TWILIO_API_BASE_URL": sim_url,
        "MIDBOT_TWILIO_ACCOUNT_SID": ACCOUNT,
        "MIDBOT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "MIDBOT_PUBLIC_BASE_URL": f"http://127.0.0.1:{cb_port}",
        "MIDBOT_DISPATCH_INTERVAL_SECONDS": "0.2",
        "MIDBOT_DISPATCH_LEASE_SECONDS": "10",
        "MIDBOT_DISPATCH_BATCH_SIZE": "50",
        "MIDBOT_LOG_LEVEL": "WARNING",
    }
    logs = [tmp_path / f"dispatcher{i}.log" for i in range(3)]
    procs = [await _spawn(env, log) for log in logs]
    try:
        victim = procs[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:  # kill it once it is sending
            states = await _states(postgres_url)
            if states["sent"] >= ROWS // 10:
                break
            await asyncio.sleep(0.1)
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        deadline = loop.time() + 180
        while loop.time() < deadline:
            states = await _states(postgres_url)
            if states["sent"] + states["failed"] + states["expired"] >= ROWS:
                break
            await asyncio.sleep(0.5)
        for log in logs:  # the session's PHI log scan covers the dispatchers' stderr too
            phi.scan_output(log.read_text(errors="replace"), f"dispatch subprocess {log.name}")
        assert states["sent"] == ROWS, (states, [log.read_text()[-2000:] for log in logs])
        async with __import__("aiohttp").ClientSession() as http:
            async with http.get(f"{sim_url}/simulator/messages") as response:
                data = await response.json()
        items = data["messages"] if isinstance(data, dict) else data
        sent_to = Counter(m["to"] for m in items if m["direction"] == "outbound-api")
        assert len(sent_to) == ROWS, f"{ROWS - len(sent_to)} patients never got their text"
        dupes = {to: n for to, n in sent_to.items() if n > 1}
        assert not dupes, f"{len(dupes)} patients got the text more than once"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await sim_runner.cleanup()
        await cb_runner.cleanup()
