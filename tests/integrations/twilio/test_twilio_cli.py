"""`midbot segments` and `midbot simulator` on the command line."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from bot.cli import main


def run_segments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: bytes
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code = main(["segments"])
    out, err = capsys.readouterr()
    return code, out, err


def test_segments_one_line_per_body(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = ["Hello", "a" * 161, "¿Cómo está?", "😀" * 36, "", "{" * 80]
    data = "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bodies).encode()
    code, out, err = run_segments(monkeypatch, capsys, data)
    assert code == 0 and err == ""
    assert [json.loads(line) for line in out.splitlines()] == [
        {"encoding": "GSM-7", "segments": 1},
        {"encoding": "GSM-7", "segments": 2},
        {"encoding": "UCS-2", "segments": 1},
        {"encoding": "UCS-2", "segments": 2},
        {"encoding": "GSM-7", "segments": 1},
        {"encoding": "GSM-7", "segments": 1},
    ]


def test_segments_bad_lines_are_reported_after_the_good_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b'"ok"\nnot json\n\n{"text": "x"}\n\xff\xfe\n"also ok"\n'
    code, out, err = run_segments(monkeypatch, capsys, data)
    assert code == 1
    assert out.splitlines() == ['{"encoding": "GSM-7", "segments": 1}'] * 2
    lines = err.splitlines()
    assert len(lines) == 3 and "Traceback" not in err
    assert lines[0].startswith("midbot segments: line 2: not valid JSON")
    assert lines[1] == "midbot segments: line 4: expected a JSON string, got dict"
    assert lines[2] == "midbot segments: line 5: not UTF-8"


def test_simulator_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulator", "--port", "0"]) == 1
    assert "--port" in capsys.readouterr().err
    assert main(["simulator", "--webhook-url", "ftp://x"]) == 1
    assert "--webhook-url" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["simulator", "--port", "eighty"])
    assert usage.value.code == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_simulator_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulator", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("midbot: cannot listen on 127.0.0.1:") and len(err.strip().splitlines()) == 1


def test_simulator_command_serves_until_terminated() -> None:
    port = _free_port()
    env = {**os.environ, "MIDBOT_PUBLIC_BASE_URL": "http://127.0.0.1:9", "MIDBOT_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "simulator", "--port", str(port), "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first and "http://127.0.0.1:9/twilio/inbound" in first
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/simulator/handsets", timeout=1) as resp:
                    assert json.load(resp) == {"handsets": []}
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
