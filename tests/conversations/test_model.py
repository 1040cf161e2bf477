"""The learned intent model: the shipped artifact, its training data hash, the frozen split, the ensemble."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conversations import ensemble, train
from conversations.classify import classify, classify_rules
from conversations.model import ARTIFACT, IntentModel, features, load_model

SHARED = train.SHARED_DATA
needs_shared = pytest.mark.skipif(
    not (SHARED / train.SHARED_TRAIN[0]).exists(), reason=f"the shared data is absent ({SHARED})"
)


def test_the_artifact_is_shipped_small_and_loads_fast() -> None:
    assert ARTIFACT.exists(), "run python -m conversations.train"
    assert ARTIFACT.stat().st_size < 5_000_000
    start = time.perf_counter()
    model = IntentModel.from_file(ARTIFACT)
    assert time.perf_counter() - start < 1.0
    assert model.meta["training_records"] > 1000
    assert len(model.meta["training_sha256"]) == 64


@needs_shared
def test_the_artifact_is_not_stale() -> None:
    """The artifact records the SHA-256 of its training records: retrain when the data (or the split) changes."""
    model = load_model()
    assert model is not None
    records = train.training_records()
    assert train.training_hash(records) == model.meta["training_sha256"], (
        "stale: python -m conversations.train"
    )
    assert model.meta["training_records"] == len(records)


@needs_shared
def test_the_frozen_split_is_deterministic_and_never_trained_on() -> None:
    listed = set(train.FROZEN_LIST.read_text(encoding="utf-8").split())
    frozen = train.frozen_records()
    assert {train.frozen_key(r) for r in frozen} == listed
    total = sum(len(train.load_records(SHARED / name)) for name in train.SHARED_TRAIN)
    assert 0.15 <= len(frozen) / total <= 0.25
    assert not listed & {train.frozen_key(r) for r in train.training_records()}


def test_training_is_deterministic() -> None:
    pytest.importorskip("sklearn")
    records = train.load_records(train.REPO_DATA / "intents_holdout_1.jsonl")
    first = train.fit(records, calibrate=False)
    second = train.fit(records, calibrate=False)
    assert first.vocabulary == second.vocabulary
    assert (first.raw_weights == second.raw_weights).all()
    assert (first.raw_bias == second.raw_bias).all()


def test_features_mix_characters_words_context_and_rules() -> None:
    feats = set(features(("no", "pills"), "refill_reminder", ("decline",), None))
    assert {" n", "pill", "w=no", "b=no_pills", "c=refill_reminder", "r=decline"} <= feats
    assert "cw=refill_reminder|no" in feats


@pytest.mark.parametrize(
    ("text", "context", "intent"),
    [
        ("1", "refill_reminder", "confirm"),
        ("si", "yes_no", "confirm"),
        ("2", "copay_offer", "decline"),
        ("3", "refill_reminder", "call_request"),
        ("no", "checkin_open", "decline"),
        ("2", "missed_doses", "missed_dose"),
    ],
)
def test_bare_answers_stay_rule_driven(text: str, context: str, intent: str) -> None:
    assert classify(text, context).intent == intent == classify_rules(text, context).intent


@pytest.mark.parametrize(
    "text", ["I can't breathe", "chest pain since this morning", "fiebre de 39", "temp 101.2 and chills"]
)
def test_an_emergency_found_by_the_rules_wins(text: str) -> None:
    assert classify_rules(text).intent == "emergency"
    assert classify(text).intent == "emergency"


@pytest.mark.parametrize("text", ["STOP", "please stop texting me", "ya no quiero que me escriban"])
def test_an_opt_out_found_by_the_rules_wins(text: str) -> None:
    assert classify(text).intent == "opt_out"


def test_confidence_is_a_probability_and_the_threshold_is_exposed() -> None:
    assert 0.0 < ensemble.CLARIFY_BELOW < 1.0
    for text in ("1", "hmm maybe", "my hands are peeling and it hurts", "asdf qwer"):
        result = classify(text, "refill_reminder")
        assert 0.0 <= result.confidence <= 1.0
    assert classify("1", "refill_reminder").confidence >= ensemble.CLARIFY_BELOW


def test_without_the_artifact_the_rules_work_alone(tmp_path: Path) -> None:
    rules = ensemble.OPTIONS
    result = ensemble.combine(
        __import__("conversations.classify", fromlist=["rule_pass"]).rule_pass("1", "refill_reminder"),
        None,
        rules,
    )
    assert result.intent == "confirm"
    assert load_model.__wrapped__(str(tmp_path / "absent.npz")) is None
