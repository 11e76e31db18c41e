"""Summary statistics of timed passes (the paper reports the average of ten passes)."""

from __future__ import annotations

import statistics


def summarize(times_ms: list[float]) -> dict[str, float]:
    """mean (the reported latency), sample std (None for one pass, which has no spread), median, min, max."""
    return {
        "mean_ms": statistics.fmean(times_ms),
        "std_ms": statistics.stdev(times_ms) if len(times_ms) > 1 else None,
        "median_ms": statistics.median(times_ms),
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
    }
