"""`bench_import.py --beside-webhook`: CSV imports into the SQLite file a running `midbot serve` writes to,
while bench_webhook.py's open loop posts signed webhooks at a fixed rate (no coordinated omission).

Phases, in one run so the figures are side by side: the webhook alone; beside one import of N fills (with
re-planning); beside two imports at once (N/2 new fills each). Every process is on 127.0.0.1 and stopped on
exit; the temporary directory is removed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import bench_webhook as bw

P99_TARGET_MS = 1000.0


def _import(database_url: str, kind: str, path: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = bw.child_env({"MIDBOT_DATABASE_URL": database_url, "MIDBOT_LOG_LEVEL": "WARNING"})
    handle = log.open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "import", kind, str(path), *extra],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=bw._die_with_parent,
        )
    finally:
        handle.close()


async def _open_loop_while(
    session: aiohttp.ClientSession,
    url: str,
    forms: bw.Forms,
    rate: float,
    busy: Callable[[], bool],
    max_seconds: float,
) -> bw.Phase:
    """Post at ``rate`` a second until ``busy()`` turns false (or ``max_seconds``); latency from the plan."""
    phase = bw.Phase()
    began = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    i = 0
    while busy() and time.perf_counter() - began < max_seconds:
        planned = began + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(bw.post_one(session, url, forms, phase, planned)))
        i += 1
    await asyncio.gather(*tasks)
    phase.elapsed = time.perf_counter() - began
    return phase


def _finish(process: subprocess.Popen[bytes], log: Path, started: float) -> dict[str, Any]:
    code = process.wait(timeout=600)
    lines = log.read_text(errors="replace").strip().splitlines()
    summary: dict[str, Any] = {}
    for line in reversed(lines):
        if line.startswith("{"):
            summary = json.loads(line)
            break
    return {"exit": code, "seconds": round(time.monotonic() - started, 2), "summary": summary,
            "tail": lines[-3:] if code else []}  # fmt: skip


async def _phases(
    children: bw.Children, targets: bw.Targets, files: dict[str, Path], database_url: str, workdir: Path,
    rate: float, max_seconds: float,
) -> dict[str, Any]:  # fmt: skip
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=512)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await bw.wait_ready(session, children.children["simulator"], "/simulator/handsets")
        await bw.wait_ready(session, children.children["midbot"], "/healthz")
        await bw.closed_loop(session, targets.midbot_url, targets.midbot_forms, 4, 40, 10.0)
        await children.wait_idle("midbot", 8.0)
        alone_until = time.monotonic() + 10
        alone = await _open_loop_while(
            session,
            targets.midbot_url,
            targets.midbot_forms,
            rate,
            lambda: time.monotonic() < alone_until,
            10,
        )
        await children.wait_idle("midbot", 8.0)
        started = time.monotonic()
        one = _import(database_url, "fills", files["fills"], workdir / "import-1.log")
        beside_one = await _open_loop_while(
            session, targets.midbot_url, targets.midbot_forms, rate, lambda: one.poll() is None, max_seconds
        )
        one_result = _finish(one, workdir / "import-1.log", started)
        await children.wait_idle("midbot", 8.0)
        started = time.monotonic()
        pair = [
            _import(database_url, "fills", files[name], workdir / f"import-{name}.log")
            for name in ("fills_a", "fills_b")
        ]
        beside_two = await _open_loop_while(
            session,
            targets.midbot_url,
            targets.midbot_forms,
            rate,
            lambda: any(p.poll() is None for p in pair),
            max_seconds,
        )
        pair_results = [
            _finish(p, workdir / f"import-{name}.log", started)
            for p, name in zip(pair, ("fills_a", "fills_b"), strict=True)
        ]
    return {
        "webhook_alone": alone.summary(),
        "beside_one_import": {"webhook": beside_one.summary(), "import": one_result},
        "beside_two_imports": {"webhook": beside_two.summary(), "imports": pair_results},
    }


def _split(source: Path, directory: Path) -> dict[str, Path]:
    """Two files of new fills (ids F… renamed G… and H…), half of ``source``'s rows each."""
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    half = len(rows) // 2
    out = {}
    for name, prefix, part in (("fills_a", "G", rows[:half]), ("fills_b", "H", rows[half:])):
        path = directory / f"{name}.csv"
        path.write_text("\n".join([header, *(prefix + row[1:] for row in part)]) + "\n", encoding="utf-8")
        out[name] = path
    return out


def beside_webhook(
    fills: int,
    rate: float,
    max_seconds: float,
    seed: int,
    generate: Callable[[Path, int, int], dict[str, Path]],
) -> int:
    """Run the three phases; print a table, then one JSON line. Exit 0 when every target is met."""
    workdir = Path(tempfile.mkdtemp(prefix="midbot-bench-beside-"))
    database_url = f"sqlite+aiosqlite:///{workdir / 'midbot.db'}"
    children = bw.Children(workdir)
    cfg = bw.BenchConfig(patients=200)
    try:
        asyncio.run(bw.seed_database(database_url, cfg.patients, datetime.now(UTC).date()))
        files = generate(workdir, fills, seed)
        files.update(_split(files["fills"], workdir))
        for kind in ("patients", "prescriptions"):
            setup = _import(database_url, kind, files[kind], workdir / f"setup-{kind}.log", "--no-replan")
            if setup.wait(timeout=600) != 0:
                print((workdir / f"setup-{kind}.log").read_text(), file=sys.stderr)
                return 1
        targets = bw.start_children(children, database_url, cfg)
        result = asyncio.run(_phases(children, targets, files, database_url, workdir, rate, max_seconds))
    finally:
        children.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    one, two = result["beside_one_import"], result["beside_two_imports"]
    verdict = {
        "p99_under_1s_beside_one_import": one["webhook"]["p99_ms"] < P99_TARGET_MS,
        "p99_under_1s_beside_two_imports": two["webhook"]["p99_ms"] < P99_TARGET_MS,
        "import_completed": one["import"]["exit"] == 0,
        "both_concurrent_imports_completed": all(r["exit"] == 0 for r in two["imports"]),
        "no_webhook_errors": not (one["webhook"]["errors"] or two["webhook"]["errors"]),
    }
    result.update({"verdict": verdict, "config": {"fills": fills, "rate": rate, "cpus": os.cpu_count()}})
    alone = result["webhook_alone"]
    print(f"webhook at {rate:g}/s, p50 / p99 / max ms, errors (target p99 < {P99_TARGET_MS:.0f} ms):")
    for label, phase in (
        ("alone", alone),
        (f"beside one import of {fills:,} fills", one["webhook"]),
        (f"beside two imports of {fills // 2:,} each", two["webhook"]),
    ):
        ratio = phase["p99_ms"] / alone["p99_ms"] if alone["p99_ms"] else 0.0
        print(f"  {label:<40} {phase['p50_ms']:8.1f} {phase['p99_ms']:8.1f} {phase['max_ms']:8.1f}"
              f"  errors {phase['errors']}  (p99 x{ratio:.1f} of alone)")  # fmt: skip
    print(f"import of {fills:,}: exit {one['import']['exit']} in {one['import']['seconds']} s;"
          f" two at once: exits {[r['exit'] for r in two['imports']]} in"
          f" {[r['seconds'] for r in two['imports']]} s")  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    return 0 if all(verdict.values()) else 1
