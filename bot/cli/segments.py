"""`midbot segments`: SMS encoding and segment count of JSON-string bodies read from stdin."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from typing import IO

from integrations.twilio.segments import segment_info

ORDER = 80
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `segments`."""
    parser = sub.add_parser(
        "segments",
        help="count SMS segments as Twilio bills them",
        description='Reads one JSON string per line on stdin (e.g. "Hello ☺") and writes '
        '{"encoding": "GSM-7"|"UCS-2", "segments": N} per line. Blank lines are skipped; a line that '
        "is not a JSON string is reported on stderr with its line number (exit 1).",
    )
    parser.set_defaults(func=cmd_segments)


def segment_lines(lines: Iterable[bytes], out: IO[str], err: IO[str]) -> int:
    """Process input lines; returns how many were bad."""
    bad = 0
    for number, raw in enumerate(lines, start=1):
        problem = None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            problem = "not UTF-8"
        else:
            if not text.strip():
                continue
            try:
                body = json.loads(text)
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON ({exc.msg})"
            except RecursionError:
                problem = "not valid JSON (nested too deeply)"
            else:
                if not isinstance(body, str):
                    problem = f"expected a JSON string, got {type(body).__name__}"
        if problem is not None:
            bad += 1
            print(f"midbot segments: line {number}: {problem}", file=err)
            continue
        info = segment_info(body)
        out.write(json.dumps({"encoding": info.encoding, "segments": info.segments}) + "\n")
    out.flush()
    return bad


def cmd_segments(_args: argparse.Namespace) -> int:
    """Read stdin, write one JSON object per good line; exit 1 if any line was bad."""
    return 1 if segment_lines(sys.stdin.buffer, sys.stdout, sys.stderr) else 0
