"""A tiny run of bench/bench_webhook.py, so the benchmark script cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_LOGGER = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_webhook.py"
SMOKE_ARGS = [
    "--patients", "12", "--levels", "1,3", "--max-requests", "8", "--max-seconds", "3",
    "--warmup", "3", "--rate", "40", "--rate-seconds", "0.25",
]  # fmt: skip


def _load_script() -> ModuleType:
    """Import the script as a module (it is not in a package); dataclasses need it in sys.modules."""
    if "bench_webhook" in sys.modules:
        return sys.modules["bench_webhook"]
    spec = importlib.util.spec_from_file_location("bench_webhook", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_webhook"] = module
    spec.loader.exec_module(module)
    return module


def _run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def smoke() -> tuple[dict[str, Any], str, float]:
    """One small benchmark run: (the final JSON line, the whole stdout, seconds taken)."""
    began = time.monotonic()
    done = _run(SMOKE_ARGS)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    return json.loads(last), done.stdout, took


def _check_phase(phase: dict[str, Any], requests: int) -> None:
    assert phase["requests"] == requests
    assert phase["errors"] == 0, phase["error_kinds"]
    assert phase["rps"] > 0
    assert 0 < phase["p50_ms"] <= phase["p99_ms"] <= phase["max_ms"]


def test_smoke_run_reports_every_level_for_both_targets(smoke: tuple[dict[str, Any], str, float]) -> None:
    report, _stdout, took = smoke
    assert took < 20, f"smoke run took {took:.1f} s"
    assert [row["concurrency"] for row in report["levels"]] == [1, 3]
    for row in report["levels"]:
        _check_phase(row["bare"], 8)
        _check_phase(row["midbot"], 8)
        assert row["ratio"] == pytest.approx(row["midbot"]["rps"] / row["bare"]["rps"], abs=0.002)


def test_smoke_fixed_rate_phase_is_open_loop_against_midbot(smoke: tuple[dict[str, Any], str, float]) -> None:
    report, _stdout, _took = smoke
    fixed = report["fixed_rate"]
    assert fixed["target_rps"] == 40
    _check_phase(fixed, 10)  # 40 req/s for 0.25 s, scheduled on a timer
    assert fixed["seconds"] >= 0.2


def test_smoke_midbot_stored_and_processed_each_message_once(
    smoke: tuple[dict[str, Any], str, float],
) -> None:
    report, _stdout, _took = smoke
    sent = 3 + 8 + 8 + 10  # warm-up, two levels, fixed rate
    stored = report["stored"]
    assert stored["inbound"] == sent
    assert stored["inbound_processed"] == sent
    assert stored["replies"] > 0


def test_smoke_verdict_and_table(smoke: tuple[dict[str, Any], str, float]) -> None:
    report, stdout, _took = smoke
    verdict = report["verdict"]
    assert verdict["targets"] == {"ratio_min": 0.45, "fixed_rate_p99_ms_max": 40.0}
    best = max(report["levels"], key=lambda row: row["midbot"]["rps"])
    assert verdict["midbot_best_rps"] == best["midbot"]["rps"]
    assert verdict["ratio_ok"] == (verdict["peak_ratio"] >= 0.45)
    assert isinstance(verdict["fixed_rate_p99_ok"], bool)
    assert "ratio" in stdout and "open loop 40 req/s" in stdout
    assert "workdir" not in report  # the temp database and logs are removed


def test_bad_level_is_a_usage_error_without_traceback() -> None:
    done = _run(["--levels", "0,4"], timeout=15)
    assert done.returncode == 2
    assert "each level must be from 1 to 512" in done.stderr
    assert "Traceback" not in done.stderr


def test_percentile_is_nearest_rank() -> None:
    script = _load_script()
    values = [float(v) for v in range(1, 101)]
    assert script.percentile(values, 50) == 50.0
    assert script.percentile(values, 99) == 99.0
    assert script.percentile([7.0], 99) == 7.0
    assert script.percentile([], 50) == 0.0


def test_patient_phones_are_distinct_and_avoid_simulator_magic_suffixes() -> None:
    script = _load_script()
    phones = [script.patient_phone(i) for i in range(12_000)]
    assert len(set(phones)) == len(phones)
    magic = {"0003", "0005", "0006", "0007", "0008", "0010", "0011"}
    assert all(p.startswith("+1") and len(p) == 12 and p[-4:] not in magic for p in phones)
