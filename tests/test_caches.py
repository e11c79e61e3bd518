"""The caches: reused host arrays within a solve, per thread."""

from __future__ import annotations

import threading

import numpy as np

from adareg import caches


def test_scratch_arrays_are_reused_inside_the_block_and_per_thread():
    like = np.zeros(1)

    def take(role="r", shape=(4,), dtype=np.float32):
        return caches.scratch(role, shape, dtype, like=like)

    first = take()
    first[:] = 1
    second = take()
    assert second is not first and not second.any()  # outside a block: a new zero array
    with caches.reused_buffers():
        kept = take()
        kept[:] = 2
        assert take() is kept and np.all(take() == 2)  # the same array, as it was left
        assert all(other is not kept for other in (take("s"), take(shape=(5,)), take(dtype=np.float64)))
        with caches.reused_buffers():
            assert take() is kept
        assert take() is kept  # an inner block's end releases nothing
        elsewhere = []
        thread = threading.Thread(target=lambda: elsewhere.append(take()))
        thread.start()
        thread.join()
        assert elsewhere[0] is not kept and not elsewhere[0].any()
    after = take()
    assert after is not kept and not after.any()
