"""Host threads: the FFT worker settings and the parallel work (blockwise, in_parallel) on the shared pool."""

from __future__ import annotations

import contextvars
import threading

import numpy as np
import pytest

from adareg import backend, threads


def test_fft_workers_setting():
    try:
        assert threads.fft_workers() >= 1
        threads.set_fft_workers(1)
        assert threads.fft_workers() == 1
        x = np.random.default_rng(2).standard_normal((4, 8))
        np.testing.assert_allclose(backend.fft(x).rfftn(x), np.fft.rfftn(x), atol=1e-12)
        with pytest.raises(ValueError, match="set_fft_workers: workers must be at least 1, got 0"):
            threads.set_fft_workers(0)
        with pytest.raises(TypeError, match="set_fft_workers: workers must be an int, got True"):
            threads.set_fft_workers(True)  # once taken as one thread
        assert threads.fft_workers() == 1
        with threads.fft_workers_here(2):
            assert threads.fft_workers() == 2
        assert threads.fft_workers() == 1
        with pytest.raises(ValueError, match="fft_workers_here: workers must be at least 1, got 0"), \
                threads.fft_workers_here(0):
            pass
    finally:
        threads.set_fft_workers(None)
    assert threads.fft_workers() >= 1


def test_blockwise_covers_the_range_in_order_on_the_pool(monkeypatch):
    monkeypatch.setattr(threads, "BLOCK_BYTES", 10)
    like, caller = np.zeros(1), threading.get_ident()
    ran_on = set()

    def block_bounds(block):
        ran_on.add(threading.get_ident())
        return block.start, block.stop

    try:
        threads.set_fft_workers(2)
        # 100 bytes ask for ten blocks, seven rows allow seven
        assert threads.blockwise(block_bounds, 7, 100, like=like) == [(i, i + 1) for i in range(7)]
        assert caller not in ran_on
        assert threads.blockwise(block_bounds, 10, 35, like=like) == [(0, 3), (3, 6), (6, 10)]
        ran_on.clear()  # below one block's bytes, or on one thread: one block, on the calling thread
        assert threads.blockwise(block_bounds, 10, 9, like=like) == [(0, 10)]
        threads.set_fft_workers(1)
        assert threads.blockwise(block_bounds, 4, 100, like=like) == [(0, 1), (1, 2), (2, 3), (3, 4)]
        assert ran_on == {caller}
    finally:
        threads.set_fft_workers(None)


def test_blockwise_keeps_one_pool_whatever_the_count_of_blocks(monkeypatch):
    """A pool was made for every count of blocks below the thread setting, and none was ever shut down: on 16
    cores, images of varied sizes left 44 idle threads (an audit, 2026-12-06)."""
    monkeypatch.setattr(threads, "BLOCK_BYTES", 1)
    like = np.zeros(1)
    before = set(threading.enumerate())
    try:
        threads.set_fft_workers(5)
        for count in (2, 3, 4, 5, 3, 2):
            assert threads.blockwise(lambda block: block.start, count, count, like=like) == list(range(count))
        started = [t.name for t in set(threading.enumerate()) - before]
        assert len(started) <= 5, started
    finally:
        threads.set_fft_workers(None)


def test_blockwise_nested_calls_and_errors(monkeypatch):
    monkeypatch.setattr(threads, "BLOCK_BYTES", 1)
    like = np.zeros(1)

    def outer(block):  # a block's own blockwise call runs its blocks in turn on the worker (no deadlock)
        return threads.blockwise(lambda inner: (block.start, inner.start), 3, 3, like=like)

    def failing(block):
        if block.start == 2:
            raise ArithmeticError(f"block {block.start}")

    try:
        threads.set_fft_workers(2)
        assert threads.blockwise(outer, 4, 4, like=like) == [[(i, 0), (i, 1), (i, 2)] for i in range(4)]
        with pytest.raises(ArithmeticError, match="block 2"):
            threads.blockwise(failing, 4, 4, like=like)
    finally:
        threads.set_fft_workers(None)


def test_in_parallel_runs_the_items_in_order_on_the_pool_in_the_caller_s_context():
    setting = contextvars.ContextVar("setting", default="unset")
    caller = threading.get_ident()
    token = setting.set("the caller's")
    try:
        with threads.fft_workers_here(3):
            ran = threads.in_parallel(lambda item: (item, setting.get(), threading.get_ident()), ["a", "b", "c"])
            assert threads.in_parallel(lambda item: threading.get_ident(), [1]) == [caller]  # one item: here
    finally:
        setting.reset(token)
    assert [run[:2] for run in ran] == [("a", "the caller's"), ("b", "the caller's"), ("c", "the caller's")]
    assert caller not in {run[2] for run in ran}
