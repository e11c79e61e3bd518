"""Timing shared by the benchmark scripts: the median of several runs after a warm-up, alone or in turns."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(run: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``run()`` over ``repeats`` runs, after one warm-up run
    (projector creation, FFT plans, cached spectra, device copies); ``sync`` waits for the device."""
    return statistics.median(seconds_in_turns({"run": run}, repeats, sync)["run"])


def seconds_in_turns(runs: dict[str, Callable[[], object]], repeats: int,
                     sync: Callable[[], None]) -> dict[str, list[float]]:
    """Wall times of each of ``runs`` over ``repeats`` rounds in which they take turns, after one warm-up run
    each: a slow or quick spell of the machine falls on every run of a round, not on one method's block, so
    ratios taken within a round are steadier than ratios of medians timed one method after the other."""
    for run in runs.values():
        run()
        sync()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            sync()
            times[name].append(time.perf_counter() - start)
    return times
