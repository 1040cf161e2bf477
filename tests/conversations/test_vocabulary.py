"""One vocabulary from flow to store: every signal kind and queue a flow can name is one the store accepts."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.db.signals import signal_row
from conversations.types import SignalSpec, TaskSpec
from conversations.vocabulary import QUEUES, SIGNAL_KINDS, SIGNAL_LABELS
from integrations.fhir.resources import SIGNAL_KIND_SYSTEM  # noqa: F401  (the FHIR mapping reads the labels)

FLOWS = Path(__file__).resolve().parents[2] / "conversations"


def _literals(call: str, position: int, keyword: str) -> set[str]:
    found: set[str] = set()
    for path in FLOWS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == call):
                continue
            args = [kw.value for kw in node.keywords if kw.arg == keyword] or node.args[position : position + 1]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def test_every_signal_kind_a_flow_names_is_known() -> None:
    named = _literals("SignalSpec", 0, "kind")
    assert {"refill_deferred", "checkin_unanswered", "refill_confirmed"} <= named  # the scan sees the flows
    assert named <= SIGNAL_KINDS, named - SIGNAL_KINDS


def test_every_queue_a_flow_names_is_known() -> None:
    named = _literals("TaskSpec", 0, "queue")
    assert "urgent_clinical" in named and named <= set(QUEUES), named - set(QUEUES)


@pytest.mark.parametrize("kind", sorted(SIGNAL_KINDS))
def test_the_store_and_the_fhir_mapping_accept_every_kind(kind: str) -> None:
    row = signal_row(patient_id="p", site_id="s", kind=kind, source="patient", occurred_at=datetime.now(UTC))
    assert row["kind"] == kind and SIGNAL_LABELS[kind]


def test_an_unknown_kind_or_queue_fails_where_the_flow_builds_it() -> None:
    with pytest.raises(ValueError, match="unknown signal kind"):
        SignalSpec("refill_maybe")
    with pytest.raises(ValueError, match="unknown queue"):
        TaskSpec(queue="pharmacy", kind="x", title="x")  # type: ignore[arg-type]
