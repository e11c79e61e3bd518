"""The caches: reused host arrays within a solve, per thread."""

from __future__ import annotations

import threading

import numpy as np

import pytest

from adareg import caches
from adareg.regularizers import TV


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


def test_cached_copies_in_another_dtype_are_read_only_as_the_host_is():
    # a cast to float32 (the learned models' working precision) was a writable array, cached and handed out on
    # every later call: TV's dual ball, scaled in place by a caller, set its value to 0 for float32 images
    rng = np.random.default_rng(0)
    weights, x = rng.random((16, 16)), rng.random((16, 16))
    reg = TV((16, 16), weights=weights)
    for dtype in (np.float64, np.float32):
        image = x.astype(dtype)
        before = reg.value(image)
        ball = reg.dual_ball(image)
        assert ball.weights.dtype == dtype
        with pytest.raises(ValueError, match="read-only"):
            ball.weights[...] = 0
        with pytest.raises(ValueError):
            ball.weights.flags.writeable = True
        assert reg.value(image) == before
    cache = caches.DeviceCache(np.arange(4.0))
    assert not cache.like(np.zeros(1), np.float32).flags.writeable
    assert cache.like(np.zeros(1), np.float32) is cache.like(np.zeros(1), np.float32)  # made once
