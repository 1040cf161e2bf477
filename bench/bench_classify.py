"""Benchmark of the intent classifier: messages per second on one core, with the model and lexicon-only.

Both classifiers run side by side in one process: ``classify`` (the learned model combined with the lexicon
rules, what midbot ships) and ``classify_rules`` (the lexicon rules alone). Classifies the labelled dev set (../shared/data/intents_dev.jsonl, else the project's own
tests/conversations/data/intents_extra.jsonl) over and over for a bounded time, in this one process (one
core), and prints messages/s against the 5,000 messages/s target. CPU time is the figure compared with the
target (it does not drop when other processes share the machine); wall-clock throughput is printed beside it.
The last line is one JSON object with every figure.

    python bench/bench_classify.py [--seconds 5] [--file FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conversations.classify import classify, classify_rules  # noqa: E402
from conversations.model import load_model  # noqa: E402
from conversations.normalize import fix_word  # noqa: E402
from conversations.types import Classification  # noqa: E402

TARGET = 5000.0
DEV = ROOT.parent / "shared" / "data" / "intents_dev.jsonl"
EXTRA = ROOT / "tests" / "conversations" / "data" / "intents_extra.jsonl"


def _load(path: Path) -> list[tuple[str, str | None, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            rows.append((data["text"], data.get("context"), data.get("lang") or "en"))
    return rows


Classifier = Callable[[str, str | None], Classification]


def _run(
    rows: list[tuple[str, str | None, str]], seconds: float, classifier: Classifier = classify
) -> tuple[int, float, float]:
    """Classify rows round after round until ``seconds`` of CPU time; (messages, cpu s, wall s)."""
    count = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.process_time() - cpu0 < seconds:
        for text, context, _ in rows:
            classifier(text, context)
        count += len(rows)
    return count, time.process_time() - cpu0, time.perf_counter() - wall0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="CPU seconds per phase (default 5, max 60)"
    )
    parser.add_argument("--file", type=Path, help="labelled JSON lines to classify (default: the dev set)")
    args = parser.parse_args(argv)
    seconds = min(max(args.seconds, 0.2), 60.0)
    path = args.file or (DEV if DEV.exists() else EXTRA)
    try:
        rows = _load(path)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench_classify: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print(f"bench_classify: {path} holds no messages", file=sys.stderr)
        return 1
    load0 = time.perf_counter()
    model = load_model()
    load_ms = 1000 * (time.perf_counter() - load0)
    start = time.process_time()
    for text, context, _ in rows:  # the first pass fills the spelling cache, as a running service would
        classify(text, context)
    warm_ms = 1000 * (time.process_time() - start)
    figures: dict[str, object] = {
        "file": str(path),
        "messages": len(rows),
        "first_pass_ms": round(warm_ms, 1),
        "model": model is not None,
        "model_load_ms": round(load_ms, 1),
    }
    count, cpu, wall = _run(rows, seconds)
    rate, wall_rate = count / cpu, count / wall
    figures.update(
        classified=count,
        cpu_seconds=round(cpu, 3),
        wall_seconds=round(wall, 3),
        messages_per_second=round(rate),
        wall_messages_per_second=round(wall_rate),
        target=TARGET,
        ratio_to_target=round(rate / TARGET, 2),
        microseconds_per_message=round(1e6 / rate, 1),
        spelling_cache=fix_word.cache_info().currsize,
    )
    for lang in ("en", "es"):
        subset = [r for r in rows if r[2] == lang]
        if subset:
            n, c, _ = _run(subset, seconds / 4)
            figures[f"messages_per_second_{lang}"] = round(n / c)
    lex_count, lex_cpu, _ = _run(rows, seconds, classify_rules)
    lexicon_rate = lex_count / lex_cpu
    figures.update(
        lexicon_only_messages_per_second=round(lexicon_rate),
        model_cost_microseconds=round(1e6 / rate - 1e6 / lexicon_rate, 1),
    )
    print(f"classifier benchmark on {path.name}: {len(rows)} messages, first pass {warm_ms:.0f} ms")
    print(f"  model loaded in {load_ms:.0f} ms" if model is not None else "  NO MODEL ARTIFACT: rules only")
    print(f"  {count} classifications in {cpu:.2f} s CPU ({wall:.2f} s wall)")
    print(f"  with the model: {rate:,.0f} messages/s on one core ({1e6 / rate:.0f} µs each); wall {wall_rate:,.0f}/s")
    print(f"  lexicon only:   {lexicon_rate:,.0f} messages/s on one core ({1e6 / lexicon_rate:.0f} µs each)")
    for lang in ("en", "es"):
        if f"messages_per_second_{lang}" in figures:
            print(f"  {lang}: {figures[f'messages_per_second_{lang}']:,} messages/s")
    verdict = "meets" if rate >= TARGET else "MISSES"
    print(f"  target {TARGET:,.0f} messages/s: ratio {rate / TARGET:.2f} ({verdict} the target)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
