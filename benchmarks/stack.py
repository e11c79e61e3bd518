"""Slice-by-slice denoising of a volume with adareg.stacks: in this process and on 1 and 2 Dask workers.

    python benchmarks/stack.py [--slices 32] [--size 256] [--sigma 25] [--chunk 8] [--repeats 3]
                               [--model sa-cnn] [--workers 1 2] [--dask-malloc-trim] [--no-single-thread]

The volume: ``--slices`` slices of ``size x size``, the built-in images
(``adareg.data.IMAGES``, resized) in turn, flipped and shifted so that no two slices
are equal, plus white Gaussian noise of standard deviation sigma/255 (seed 0), float32.
Every slice is denoised with ``adareg.stacks.map_slices(Denoise(model, sigma/255),
stack, chunk=chunk)`` (TV with lam = 0.8 sigma/255), the same chunk in every mode:

* ``in-process``: this process, with its default threads (FFTs and BLAS on every core);
* ``in-process`` on 1 thread (``threadpoolctl`` for BLAS, ``set_fft_workers(1)``), as a
  Dask worker computes: the baseline the speed-up of 1 worker is to be read against
  (``--no-single-thread`` leaves it out);
* ``dask``: a ``distributed.LocalCluster`` of N single-threaded worker processes
  (``processes=True``, the dashboard on a free port), passed as ``scheduler=client``;
  each N of ``--workers``.  The workers start as ``map_slices(workers=N)`` starts them:
  BLAS on one thread (Dask's default) and without Dask's ``MALLOC_TRIM_THRESHOLD_=65536``,
  which makes glibc give freed memory back at once but, being set, turns off its adaptive
  mmap threshold, so that every large temporary array is a fresh mmap (twice the solve
  time); ``--dask-malloc-trim`` keeps it, to show that cost.

Each mode (each cluster started once) is warmed up on one chunk (models loaded, filter
norms estimated, FFT plans made), then run ``--repeats`` times; medians are reported.

Columns:

* ``s/slice``: median wall time of ``map_slices`` / slices;
* ``speed-up``: in-process (default threads) s/slice / this mode's s/slice;
* ``solve s/slice``: the time spent in the slice task, per slice: in-process, the task's
  calls timed with ``time.perf_counter``; on Dask, the sum of the tasks' ``compute``
  intervals on the workers (``distributed.get_task_stream``: ``run_chunk``, i.e. the
  solve, excluding (de)serialisation, transfers and scheduling);
* ``overhead``: ``(wall x processes - solve time) / slices``, the process time per slice
  not spent solving (scheduling, serialisation, transfers, gathering, and workers idle
  at the end when the chunks do not divide evenly among them or take unequal times), as a percentage of
  ``solve s/slice`` of that mode (the target for Dask: under 5 %);
* ``max |diff|``: largest difference from the in-process result (the same solves);
* ``peak RSS``: each process's peak resident memory over the warm-up and the timed runs
  (``VmHWM`` of ``/proc/self/status``, reset through ``/proc/self/clear_refs`` before the
  warm-up) and, in brackets, its increase over the process's resident memory just before
  (adareg imported, nothing solved); the in-process value includes the stack and the
  result (2 x slices x size^2 x 4 bytes), a worker's only its chunks.  Without ``/proc``
  (not Linux): ``ru_maxrss``, the peak since the process started.  The second in-process
  row reuses the memory that the first left with the allocator, so its increase reads low.

A full run (32 slices of 256 x 256, sa-cnn) on 2 cores takes about 25 min (``--repeats 1``: 9 min).
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import adareg
from adareg import stacks, threads

MiB = 2**20


# ------------------------------------------------------------------------------------------------ volume
def volume(slices: int, size: int, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(clean, noisy)`` float32 stacks: the built-in images in turn, flipped and shifted, and noise of ``sigma``."""
    images = [adareg.data.image(name, shape=(size, size), dtype=np.float32) for name in adareg.data.IMAGES]
    stack = np.empty((slices, size, size), dtype=np.float32)
    for i in range(slices):
        picture = images[i % len(images)]
        turn = (i // len(images)) % 4  # as is, flipped left-right, up-down, both
        picture = picture[:, ::-1] if turn & 1 else picture
        picture = picture[::-1] if turn & 2 else picture
        shift = 37 * (i // (4 * len(images)))  # beyond 32 slices: shifted copies too
        stack[i] = np.roll(picture, (shift, shift), axis=(0, 1))
    noise = np.random.default_rng(seed).standard_normal(stack.shape, dtype=np.float32) * np.float32(sigma)
    return stack, stack + noise


# ------------------------------------------------------------------------------------------------ memory
def process_memory(reset: bool = False) -> tuple[int, int, bool]:
    """This process's ``(resident, peak resident)`` bytes, and whether the peak can be reset (Linux).

    ``reset``: first set the peak to the current resident memory (``/proc/self/clear_refs``).
    """
    try:
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
        return fields["VmRSS"], fields["VmHWM"], True
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak *= 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        return 0, peak, False


def import_adareg() -> None:
    """Run on a worker: import what a task needs, so that the idle memory counts the imports."""
    importlib.import_module("adareg.stacks")


# ------------------------------------------------------------------------------------------------ modes
@dataclass
class Row:
    """One mode's measurements."""

    mode: str
    workers: int
    threads: str
    walls: list[float] = field(default_factory=list)
    solves: list[float] = field(default_factory=list)
    memory: list[tuple[int, int]] = field(default_factory=list)  # (idle, peak) bytes per process
    difference: float = 0.0
    result: np.ndarray | None = None


class Timed:
    """The slice task with its calls' seconds summed (in-process only: the sum stays in this process)."""

    def __init__(self, task: stacks.SliceTask):
        self.task = task
        self.seconds = 0.0

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.task(slices)
        finally:
            self.seconds += time.perf_counter() - start


def measure(row: Row, run: Callable[[np.ndarray], tuple[np.ndarray, float, float]], stack: np.ndarray, chunk: int,
            repeats: int) -> None:
    """``run(stack[:chunk])`` to warm up, then ``repeats`` timed ``run(stack) -> (result, wall s, solve s)``."""
    run(stack[:chunk])
    for _ in range(repeats):
        row.result, wall, solve = run(stack)
        row.walls.append(wall)
        row.solves.append(solve)


def in_process(task: stacks.SliceTask, stack: np.ndarray, chunk: int, repeats: int, threads: str) -> Row:
    """``map_slices`` in this process, with the threads currently set."""
    row = Row("in-process", 1, threads)

    def run(part: np.ndarray) -> tuple[np.ndarray, float, float]:
        timed = Timed(task)
        start = time.perf_counter()
        result = stacks.map_slices(timed, part, chunk=chunk, progress=False)
        return result, time.perf_counter() - start, timed.seconds

    idle, _, _ = process_memory(reset=True)
    measure(row, run, stack, chunk, repeats)
    row.memory = [(idle, process_memory()[1])]
    return row


def on_dask(task: stacks.SliceTask, stack: np.ndarray, chunk: int, repeats: int, workers: int, malloc_trim: bool
            ) -> tuple[Row, str]:
    """``map_slices`` on a new local cluster of ``workers`` single-threaded processes; and a note on the cluster.

    ``malloc_trim=False`` starts the workers without the ``MALLOC_TRIM_THRESHOLD_`` that Dask
    sets by default (``distributed.nanny.pre-spawn-environ``), as ``map_slices(workers=N)`` does.
    """
    import dask
    import distributed

    row = Row("dask", workers, "1 each")
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if not malloc_trim:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    start = time.perf_counter()
    # the dashboard on a free port, as map_slices has it (None would still serve on 8787)
    with (dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
          distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0") as cluster,
          distributed.Client(cluster) as client):
        client.wait_for_workers(workers)
        started = time.perf_counter() - start
        client.run(import_adareg)
        client.run(task, stack[:chunk])  # every worker warmed (measure's warm-up chunk runs on one of them)
        trim = sorted({str(value) for value in client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()})
        note = (f"the cluster of {workers} worker(s) started in {started:.1f} s (not in the times); the workers' "
                f"MALLOC_TRIM_THRESHOLD_: {', '.join(trim)}")

        def run(part: np.ndarray) -> tuple[np.ndarray, float, float]:
            with distributed.get_task_stream(client) as stream:
                begin = time.perf_counter()
                result = stacks.map_slices(task, part, chunk=chunk, scheduler=client, progress=False)
                wall = time.perf_counter() - begin
            compute = sum(part["stop"] - part["start"] for record in stream.data
                          for part in record["startstops"] if part["action"] == "compute")
            return result, wall, compute

        idle = client.run(process_memory, True)
        measure(row, run, stack, chunk, repeats)
        peak = client.run(process_memory)
        row.memory = [(idle[worker][0], peak[worker][1]) for worker in sorted(idle)]
    return row, note


# ------------------------------------------------------------------------------------------------ report
def report(rows: list[Row], slices: int, resettable: bool) -> None:
    reference = statistics.median(rows[0].walls) / slices
    header = (f"{'mode':11} {'workers':>7} {'threads':>8} {'s/slice':>8} {'speed-up':>8} {'solve s/slice':>13} "
              f"{'overhead':>8} {'max |diff|':>10}  peak RSS MiB (+ over idle)")
    print(header)
    for row in rows:
        wall = statistics.median(row.walls) / slices
        solve = statistics.median(row.solves) / slices
        overhead = statistics.median((w * row.workers - s) / slices for w, s in zip(row.walls, row.solves))
        memory = " / ".join(f"{peak / MiB:.0f} (+{(peak - idle) / MiB:.0f})" if resettable else f"{peak / MiB:.0f}"
                            for idle, peak in row.memory)
        print(f"{row.mode:11} {row.workers:7d} {row.threads:>8} {wall:8.3f} {reference / wall:8.2f} {solve:13.3f} "
              f"{100 * overhead / solve:7.1f}% {row.difference:10.1e}  {memory}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=32, help="slices of the volume")
    parser.add_argument("--size", type=int, default=256, help="slice size (pixels per side)")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise level on the 0-255 scale")
    parser.add_argument("--chunk", type=int, default=8, help="slices per solve (every mode)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode, after a warm-up chunk")
    parser.add_argument("--model", default="sa-cnn", help="'tv' or a shipped model's name")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask cluster sizes to run")
    parser.add_argument("--no-single-thread", action="store_true", help="leave out the in-process run on 1 thread")
    parser.add_argument("--dask-malloc-trim", action="store_true", help="start the Dask workers with the "
                        "MALLOC_TRIM_THRESHOLD_=65536 that Dask sets by default (map_slices(workers=N) unsets it)")
    return parser.parse_args()


def main(args: argparse.Namespace) -> None:
    sigma = args.sigma / 255
    _, noisy = volume(args.slices, args.size, sigma)
    task = stacks.Denoise(args.model, sigma, lam=0.8 * sigma if args.model == "tv" else None)
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    blas = "?" if threadpoolctl is None else str(max(
        (pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"), default=0))
    print(f"python {' '.join(sys.argv)}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.model} denoising of {args.slices} slices of {args.size}x{args.size} (built-in images, sigma = "
          f"{args.sigma:g}/255), {args.chunk} slices per solve; {cores} cores; medians of {args.repeats} runs after "
          f"a warm-up chunk")

    rows = [in_process(task, noisy, args.chunk, args.repeats, f"{threads.fft_workers()}/{blas}")]
    _, _, resettable = process_memory()
    notes = ["threads: in-process FFT/BLAS; a Dask worker runs FFTs and BLAS on 1 thread"]
    if threadpoolctl is None and not args.no_single_thread:
        notes.append("in-process on 1 thread left out: pip install threadpoolctl")
    elif not args.no_single_thread:
        threads.set_fft_workers(1)
        try:
            with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
                rows.append(in_process(task, noisy, args.chunk, args.repeats, "1/1"))
        finally:
            threads.set_fft_workers(None)
    for workers in args.workers:
        row, note = on_dask(task, noisy, args.chunk, args.repeats, workers, args.dask_malloc_trim)
        rows.append(row)
        notes.append(note)
        chunks = -(-args.slices // args.chunk)
        if chunks % workers:
            notes.append(f"{chunks} chunk(s) on {workers} workers: {workers - chunks % workers} worker(s) idle in the "
                         "last round, which counts in the overhead")
    for row in rows[1:]:
        row.difference = float(np.max(np.abs(row.result - rows[0].result)))
    print()
    report(rows, args.slices, resettable)
    print("\n".join(notes))


if __name__ == "__main__":  # Dask starts its workers as new Python processes, which import this file
    main(parse_args())
