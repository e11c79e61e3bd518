"""Timing shared by the benchmark scripts: the median of several runs after a warm-up."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(run: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``run()`` over ``repeats`` runs, after one warm-up run
    (projector creation, FFT plans, cached spectra, device copies); ``sync`` waits for the device."""
    run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
