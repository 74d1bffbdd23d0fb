"""Fixed, logarithmic histogram bins: counts per bin can be added across hours, and percentiles
read back from the sum within one bin's width (about 19%)."""

from __future__ import annotations

import math
from collections.abc import Iterable

# Bin i holds values in [EDGES[i], EDGES[i+1]); the last bin is open-ended.
RATIO = 1.2
EDGES = [0.0] + [RATIO**i for i in range(0, 80)]  # 1 ... ~2 million (ms or seconds)
BINS = len(EDGES)


def bin_of(value: float) -> int:
    if value < 1:
        return 0
    return min(BINS - 1, 1 + int(math.log(value, RATIO)))


def histogram(values: Iterable[float]) -> list[int]:
    counts = [0] * BINS
    for value in values:
        counts[bin_of(value)] += 1
    return counts


def merge_all(histograms: Iterable[list[int]]) -> list[int]:
    """The sum of many histograms at once (empty ones, hours without data, left out)."""
    counted = [h for h in histograms if h]
    return [sum(column) for column in zip(*counted, strict=True)] if counted else []


def percentile(counts: list[int], q: float) -> float | None:
    """The q-th percentile (0 < q < 1), interpolated inside its bin; None when there is no data."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if seen + count >= rank and count:
            low = EDGES[i]
            high = EDGES[i + 1] if i + 1 < BINS else EDGES[i] * RATIO
            return low + (high - low) * ((rank - seen) / count)
        seen += count
    return EDGES[-1]
