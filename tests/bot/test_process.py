"""The `midbot` process: usage errors, bad settings, and a graceful SIGTERM."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def test_unknown_command_exits_2_with_usage() -> None:
    result = run("nosuch")
    assert result.returncode == 2
    assert "usage: midbot" in result.stderr


def test_bad_port_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run(
        "serve", env={"MIDBOT_PORT": "abc", "MIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "MIDBOT_PORT" in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_url_and_log_level_are_named(tmp_path: Path) -> None:
    result = run("serve", env={"MIDBOT_DATABASE_URL": "mysql://nope", "MIDBOT_LOG_LEVEL": "LOUD"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "MIDBOT_DATABASE_URL" in result.stderr and "MIDBOT_LOG_LEVEL" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("midbot ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("midbot serve did not become ready")


def test_sigterm_during_a_request_completes_it_and_exits_0(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "MIDBOT_PORT": str(port),
        "MIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db",
        "MIDBOT_RUN_DISPATCHER": "false",
        "MIDBOT_LOG_FORMAT": "json",
        "MIDBOT_TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # the default token is for loopback only
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/patients?q=Lopez")  # a staff search: the name is in the query string
        conn.getresponse().read()
        conn.request("GET", "/login")
        page = conn.getresponse()
        html = page.read().decode()
        cookie = "; ".join(c.split(";", 1)[0] for c in page.headers.get_all("Set-Cookie") or [])
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token, "the sign-in form carries a CSRF token"
        # A sign-in takes a few hundred ms (argon2 in a worker thread): SIGTERM lands while it is in flight.
        form = urllib.parse.urlencode(
            {"email": "nobody@clinic.test", "password": "wrong password 123", "csrf_token": token.group(1)}
        )
        answer: dict[str, object] = {}

        def sign_in() -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            c.request(
                "POST",
                "/login",
                body=form,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
            )
            response = c.getresponse()
            answer["status"] = response.status
            answer["body"] = response.read()

        worker = threading.Thread(target=sign_in)
        worker.start()
        time.sleep(0.08)
        proc.send_signal(signal.SIGTERM)
        worker.join(timeout=30)
        assert answer.get("status") in (200, 303, 401, 403, 429), answer
        assert proc.wait(timeout=30) == 0
        log = proc.stderr.read() if proc.stderr else ""
        assert "Lopez" not in log and "q=" not in log, log[-2000:]  # a search's query is never logged
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refuses_the_public_simulator_token_off_loopback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    env = {**os.environ, "MIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    env.pop("MIDBOT_TWILIO_AUTH_TOKEN", None)
    env["MIDBOT_TWILIO_API_BASE_URL"] = "https://api.twilio.com"
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "MIDBOT_TWILIO_AUTH_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
