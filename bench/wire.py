"""The harness talks to each measured process over its stdin/stdout, one JSON object
per line: {"type": "offer"|"answer"|"event"|"result"|"error", ...}. Logs go to stderr."""

from __future__ import annotations

import json
import sys


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def read_line(stream=None) -> dict | None:
    line = (stream or sys.stdin).readline()
    return json.loads(line) if line.strip() else None
