"""adareg.thread_warnings: each thread records its own warnings while others run, and nothing else is lost."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from adareg import stacks, threads
from adareg.thread_warnings import recording


class Warns:
    """A chunk's task that warns ``name: k`` for each of ``steps`` steps, each after a barrier shared with the
    other thread's task (their recordings start, warn and end interleaved), then ``name: late`` once ``after``
    is set, where given."""

    def __init__(self, name: str, barrier: threading.Barrier, steps: int, after: threading.Event | None = None):
        self.name, self.barrier, self.steps, self.after = name, barrier, steps, after

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        for k in range(self.steps):
            self.barrier.wait(timeout=10)
            warnings.warn(f"{self.name}: {k}", UserWarning, stacklevel=1)
        if self.after is not None:
            assert self.after.wait(timeout=10)
            warnings.warn(f"{self.name}: late", UserWarning, stacklevel=1)
        return np.asarray(slices)


def test_concurrent_chunks_record_their_own_warnings_and_later_ones_are_shown():
    """Threads a and b record at once and both warn; a leaves while b warns on; then the main thread warns.

    With one process-wide ``catch_warnings`` per chunk, the thread that entered last took both threads'
    warnings, b's late one went to the handler a restored, and b's exit left a's record as the process's."""
    barrier, a_left = threading.Barrier(2), threading.Event()
    notes: dict[str, list] = {}

    def chunk(task: Warns) -> None:
        notes[task.name] = stacks.run_chunk(task, np.zeros((1, 2, 2)), [0])[1]
        if task.name == "a":
            a_left.set()

    runs = [threading.Thread(target=chunk, args=(Warns("a", barrier, 2),)),
            threading.Thread(target=chunk, args=(Warns("b", barrier, 2, after=a_left),))]
    with pytest.warns(UserWarning) as shown:
        for run in runs:
            run.start()
        for run in runs:
            run.join(timeout=30)
        warnings.warn("main: after both", UserWarning, stacklevel=1)
    assert notes["a"] == [(UserWarning, "a: 0"), (UserWarning, "a: 1")]
    assert notes["b"] == [(UserWarning, "b: 0"), (UserWarning, "b: 1"), (UserWarning, "b: late")]
    assert [str(w.message) for w in shown] == ["main: after both"]


def test_a_warning_raised_in_a_blockwise_pool_thread_is_recorded_with_the_caller_s():
    def block(rows: slice) -> None:
        warnings.warn(f"rows {rows.start}:{rows.stop}", UserWarning, stacklevel=1)

    with threads.fft_workers_here(2), recording() as notes:
        threads.blockwise(block, 4, 4 * threads.BLOCK_BYTES, like=np.zeros(1))
        owners = set(threads.blockwise(lambda rows: threading.get_ident(), 4, 4 * threads.BLOCK_BYTES,
                                       like=np.zeros(1)))
    assert threading.get_ident() not in owners  # the blocks ran in the pool
    assert sorted(notes, key=lambda note: note[1]) == [(UserWarning, f"rows {i}:{i + 1}") for i in range(4)]


def test_a_warning_is_recorded_at_every_raise_though_the_filters_show_it_once():
    def warn() -> None:
        warnings.warn("the same place", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")  # once per place: the second raise below is not shown
        warn()
        warn()
        with recording() as first:
            warn()
            warn()
        with recording() as second:
            warn()
    assert len(shown) == 1
    assert first == [(UserWarning, "the same place")] * 2 and second == [(UserWarning, "the same place")]


def test_a_recording_within_a_recording_takes_its_block_s_warnings():
    with recording() as outer:
        warnings.warn("outer 1", UserWarning, stacklevel=1)
        with recording() as inner:
            warnings.warn("inner", RuntimeWarning, stacklevel=1)
        warnings.warn("outer 2", UserWarning, stacklevel=1)
    assert inner == [(RuntimeWarning, "inner")]
    assert outer == [(UserWarning, "outer 1"), (UserWarning, "outer 2")]


def test_other_threads_warnings_are_shown_not_recorded_while_one_records():
    entered, done = threading.Event(), threading.Event()

    def record() -> None:
        with recording() as notes:
            entered.set()
            done.wait(timeout=10)
        results.append(notes)

    results: list = []
    thread = threading.Thread(target=record)
    with pytest.warns(UserWarning, match="^from the main thread$"):
        thread.start()
        entered.wait(timeout=10)
        warnings.warn("from the main thread", UserWarning, stacklevel=1)
        done.set()
        thread.join(timeout=10)
    assert results == [[]]


@pytest.mark.parametrize("before, inside", [(False, False), (True, False), (False, True), (True, True)])
def test_the_process_s_handler_keeps_its_warnings_after_a_recording_inside_catch_warnings(before, inside):
    """A recording before and one inside ``catch_warnings(record=True)`` (as ``pytest.warns`` runs code): once
    that block has left, a plain warning still goes to the handler the process had set.

    With one process-wide predecessor, the recording inside the block took the block's recorder as it, and the
    handler the block restored delegated there for good."""
    shown: list[str] = []

    def handler(message, category, filename, lineno, file=None, line=None) -> None:
        shown.append(str(message))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = handler
        if before:
            with recording() as first:
                warnings.warn("recorded before", UserWarning, stacklevel=1)
            assert first == [(UserWarning, "recorded before")]
        with warnings.catch_warnings(record=True) as caught:
            if inside:
                with recording() as second:
                    warnings.warn("recorded inside", UserWarning, stacklevel=1)
                assert second == [(UserWarning, "recorded inside")]
            warnings.warn("caught", UserWarning, stacklevel=1)
        assert [str(w.message) for w in caught] == ["caught"]
        warnings.warn("plain, after", UserWarning, stacklevel=1)
    assert shown == ["plain, after"]
