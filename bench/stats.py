"""Small statistics helpers (no numpy needed)."""

from __future__ import annotations

import math


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summary_ms(seconds: list[float]) -> dict:
    ms = [v * 1000 for v in seconds]
    r = lambda v: None if v is None else round(v, 2)  # noqa: E731
    return {
        "n": len(ms),
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "min_ms": r(min(ms) if ms else None),
        "max_ms": r(max(ms) if ms else None),
    }
