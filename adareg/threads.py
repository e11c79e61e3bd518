"""Host threads: how many the FFTs and the parallel work on NumPy arrays use, and the pool that runs that work.

A process gives FFTs of NumPy arrays (:func:`adareg.backend.fft`), :func:`blockwise` work and
the pieces of :func:`in_parallel` :func:`fft_workers` threads: every core it may run on, or
what :func:`set_fft_workers` sets for the process or :func:`fft_workers_here` for one thread
(e.g. a Dask worker's, which computes a task in each of its threads).  :func:`blockwise` cuts
``range(length)`` into consecutive blocks (:func:`even_slices`) and runs a function on each,
and :func:`in_parallel` runs a function on each of a few items (e.g. the angle groups of a CT
projector), on one shared pool of that many threads; CuPy arrays, whose work runs on the GPU,
are not concerned.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import array_api_compat

from . import checks

A = TypeVar("A")
T = TypeVar("T")


#: Threads for FFTs of NumPy arrays; ``None``: every core this process may run on.
_fft_workers: int | None = None


def set_fft_workers(workers: int | None) -> int | None:
    """Set the number of threads used for FFTs (of at least :data:`adareg.backend.THREADED_FFT_BYTES`) and
    the parallel work (:func:`blockwise`, :func:`in_parallel`) on NumPy arrays (``None``: all usable cores);
    returns the old setting."""
    if workers is not None:  # True is not a count of threads
        workers = checks.count(workers, "set_fft_workers: workers")
    global _fft_workers
    previous, _fft_workers = _fft_workers, workers
    return previous


#: The setting of a thread (of a context) alone, over the process's: see :func:`fft_workers_here`.
_fft_workers_here: contextvars.ContextVar[int | None] = contextvars.ContextVar("adareg_fft_workers", default=None)


@contextlib.contextmanager
def fft_workers_here(workers: int) -> Iterator[None]:
    """Use ``workers`` threads for FFTs and parallel work in this thread only, while the ``with`` block runs.

    Unlike :func:`set_fft_workers`, which is process-wide, the other threads keep their setting, e.g. on a Dask
    worker that computes a task in each of its threads.
    """
    token = _fft_workers_here.set(checks.count(workers, "fft_workers_here: workers"))
    try:
        yield
    finally:
        _fft_workers_here.reset(token)


def fft_workers() -> int:
    """The number of threads used for FFTs and parallel work on NumPy arrays in this thread (see
    :func:`fft_workers_here` and :func:`set_fft_workers`)."""
    here = _fft_workers_here.get()
    if here is not None:
        return here
    if _fft_workers is not None:
        return _fft_workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Bytes of an array that one block of :func:`blockwise` covers (a few blocks per thread on large
#: arrays, each small enough to stay in cache through the several passes a block makes).
BLOCK_BYTES = 1 << 21


class _Worker(threading.local):
    """Whether this thread is a worker of the shared pool (whose work then runs its pieces in turn)."""

    active = False


_worker = _Worker()
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def blockwise(function: Callable[[slice], T], length: int, nbytes: int, like: Any) -> list[T]:
    """``[function(block) for block in blocks]`` over consecutive blocks of ``range(length)``, on host threads.

    Elementwise NumPy work runs on one core and streams its arrays through memory once
    per operation; a function that does several operations on one block of its arrays
    (e.g. rows ``block`` of every array of an iteration) keeps that block in cache
    between them, and the blocks run on :func:`fft_workers` threads (NumPy releases
    the GIL in its loops).  ``nbytes``, the size of the largest array the function
    touches, sets the number of blocks (about one per :data:`BLOCK_BYTES`).  The
    results come back in block order.

    For CuPy arrays (``like``), small arrays, one thread, or a call from within a
    block, the function runs on the calling thread, once per block (CuPy: once,
    on all of ``range(length)``).  Blocks must write disjoint data.  The blocks run
    as :func:`in_parallel`'s items (in copies of the caller's context).
    """
    count = 1 if array_api_compat.is_cupy_array(like) else max(1, min(length, nbytes // BLOCK_BYTES))
    return in_parallel(function, even_slices(length, count))


def in_parallel(function: Callable[[A], T], items: Sequence[A]) -> list[T]:
    """``[function(item) for item in items]``, the items on :func:`fft_workers` threads of one shared pool.

    The results come back in the items' order.  Each item runs in a copy of the
    caller's context (``contextvars``), so that what that context sets (e.g. where
    its warnings are recorded, :mod:`adareg.thread_warnings`) holds in the pool's
    threads too.  One item, one thread, or a call from within the pool's work runs
    on the calling thread, item by item.
    """
    if min(fft_workers(), len(items)) == 1 or _worker.active:
        return [function(item) for item in items]
    # one pool of fft_workers() threads for every count of items (a pool per count left up to C(C+1)/2 idle
    # threads on C cores); fewer items than threads use as many threads as items
    contexts = [contextvars.copy_context() for _ in items]  # one each: a context runs in one thread at a time
    return list(_pool(fft_workers()).map(lambda context, item: context.run(function, item), contexts, items))


def _pool(threads: int) -> ThreadPoolExecutor:
    """The shared pool of ``threads`` workers (created once per :func:`fft_workers` setting)."""
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="adareg-host",
                                                 initializer=_mark_worker)
        return _pools[threads]


def _mark_worker() -> None:
    _worker.active = True


def _forget_pools() -> None:
    """In a forked child, which has none of its parent's threads: new pools (and lock) when needed."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def even_slices(length: int, count: int) -> list[slice]:
    """``range(length)`` cut into ``count`` consecutive slices whose lengths differ by one at most."""
    edges = [length * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
