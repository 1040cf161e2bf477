"""`midbot demo` as a person runs it (issue 17): a subprocess on free loopback ports in a temp folder.

It opens on a practice with a few simulated days: the printed sign-ins of both sites see open tasks in every
queue. About 40 s after start, with replies hanging at the provider mid-send, it gets SIGINT and must stop
cleanly: exit 0 and not one traceback, warning or error line in all it printed. A busy port is one line.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

RUN_SECONDS = 40.0  # the figure: how long the demo runs before Ctrl-C
READY_WITHIN = 120.0  # building and simulating the practice on a busy 2-CPU machine
_BAD = re.compile(r"Traceback|Warning|WARNING|ERROR")


def _free_pair() -> int:
    """A port p with p + 1 also free (the demo puts the Twilio simulator on p + 1)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65535:
            with socket.socket() as other:
                try:
                    other.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port pair")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIDBOT_") and k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env["HOME"] = str(tmp_path)
    return env


class _Output:
    """Everything the process prints, read as it comes (stdout and stderr merged)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, needle: str, seconds: float, process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + seconds
        while needle not in self.text():
            assert process.poll() is None, f"demo exited early:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} after {seconds:.0f}s:\n{self.text()}"
            time.sleep(0.2)

    def join(self) -> None:
        self._thread.join(timeout=10)


def _accounts(text: str) -> tuple[str, dict[str, dict[str, str]]]:
    password = re.search(r"every account's password: (\S+)\)", text)
    assert password, text
    sites: dict[str, dict[str, str]] = {}
    for role, email, site in re.findall(
        r"^\s+(pharmacist|financial navigator|clinic admin)\s+(\S+@([\w-]+)\.\S+)", text, re.M
    ):
        sites.setdefault(site, {})[role] = email
    return password.group(1), sites


async def _queues(base: str, email: str, password: str) -> dict[str, int]:
    """Sign in through the real form; the counts the queues page shows."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/login") as page:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert csrf
        form = {"email": email, "password": password, "csrf_token": csrf.group(1)}
        async with http.post(f"{base}/login", data=form, allow_redirects=False) as signed:
            assert signed.status == 303, await signed.text()
        async with http.get(f"{base}/queues") as page:
            assert page.status == 200
            assert "task-link" in await page.text()
        async with http.get(f"{base}/queues.json") as data:
            body = await data.json()
    return {s["queue"]: s["count"] for s in body["summary"]}


async def _burst(sim: str, database: Path) -> None:
    """A slow provider (the next sends take 3 s) while a dozen patients text at once: sends are in flight."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT p.phone, s.phone FROM patient p JOIN site s ON s.id = p.site_id "
            "WHERE p.sms_consent AND p.opted_out_at IS NULL ORDER BY p.id LIMIT 12"
        ).fetchall()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim}/simulator/faults", json={"hang_seconds": 3, "count": 6}) as fault:
            assert fault.status == 201
        for phone, site_phone in rows:
            payload = {"from": phone, "to": site_phone, "body": "HELP"}
            async with http.post(f"{sim}/simulator/inbound", json=payload) as sent:
                assert sent.status < 300, await sent.text()


async def test_demo_opens_on_work_for_both_sites_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_pair()
    database = tmp_path / "demo.db"
    argv = [sys.executable, "-m", "bot", "demo", "--port", str(port), "--database", str(database)]
    started = time.monotonic()
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = _Output(process)
    try:
        output.wait_for("\nAlso: readiness", READY_WITHIN, process)
        password, sites = _accounts(output.text())
        assert set(sites) == {"lakeside", "desert-valley"}, output.text()
        base, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
        for site, emails in sites.items():
            everything = await _queues(base, emails["clinic admin"], password)
            assert all(everything[q] > 0 for q in everything) and len(everything) == 5, (site, everything)
            pharmacist = await _queues(base, emails["pharmacist"], password)
            assert pharmacist and all(n > 0 for n in pharmacist.values()), (site, pharmacist)
            navigator = await _queues(base, emails["financial navigator"], password)
            assert navigator.get("financial", 0) > 0, (site, navigator)
        with sqlite3.connect(
            database
        ) as db:  # a thread mid-conversation: the patient answered, a step is open
            (midway,) = db.execute(
                "SELECT count(*) FROM conversation c WHERE c.status = 'open' AND EXISTS (SELECT 1 FROM message m "
                "WHERE m.conversation_id = c.id AND m.direction = 'in')"
            ).fetchone()
        assert midway > 0
        time.sleep(max(0.0, RUN_SECONDS - 2 - (time.monotonic() - started)))
        await _burst(sim, database)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.join()
    text = output.text()
    assert code == 0, text
    assert "stopping midbot demo" in text
    assert not _BAD.search(text), text


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bot", "demo", "--port", str(port), "--database", str(tmp_path / "d.db")],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(rf"midbot: error: port {port} is in use; try --port \d+", lines[0]), lines
    assert not (tmp_path / "d.db").exists()


def test_bad_demo_options_are_one_line(tmp_path: Path) -> None:
    for argv in (["--port", "0"], ["--history-days", "-1"], ["--port", "x"]):
        result = subprocess.run(
            [sys.executable, "-m", "bot", "demo", *argv],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
