"""The `midbot` process: usage errors, bad settings, and a graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, input=stdin)


def test_unknown_command_exits_2_with_usage() -> None:
    result = run("nosuch")
    assert result.returncode == 2
    assert "usage: midbot" in result.stderr


def test_bad_port_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run("serve", env={"MIDBOT_PORT": "abc", "MIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"})
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
    env = {**os.environ, "MIDBOT_PORT": str(port), "MIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db",
           "MIDBOT_RUN_DISPATCHER": "false", "MIDBOT_LOG_FORMAT": "json"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_ready(port, proc)
        body = b"MessageSid=SM1&From=%2B13125550123&Body=hello"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            # Start a request and leave its body half sent while the process is told to stop.
            s.sendall(b"POST /twilio/inbound HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body[:10])
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            s.sendall(body[10:])
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 403"), answer[:200]  # unsigned: refused, but answered
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
