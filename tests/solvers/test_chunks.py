"""The chunk policy of a batch: how many images a chunk of a solver's run holds."""

from __future__ import annotations

import numpy as np

from adareg.solvers import chunks


def test_batch_chunks_hold_about_chunk_bytes_of_images_on_the_host(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 100)
    like = np.zeros(1)
    bounds = lambda slices: [(s.start, s.stop) for s in slices]  # noqa: E731
    assert bounds(chunks.batch_chunks(16, 50, like)) == [(i, i + 2) for i in range(0, 16, 2)]
    assert bounds(chunks.batch_chunks(7, 40, like)) == [(0, 3), (3, 7)]  # 280 bytes: two chunks, even sizes
    assert bounds(chunks.batch_chunks(3, 1000, like)) == [(0, 1), (1, 2), (2, 3)]  # one image at least
    assert bounds(chunks.batch_chunks(5, 10, like)) == [(0, 5)]  # a small batch in one piece
    assert bounds(chunks.batch_chunks(1, 1000, like)) == [(0, 1)]


def test_image_chunks_hold_one_image_at_128_by_128_and_share_below():
    like = np.zeros(1)
    bounds = lambda slices: [(s.start, s.stop) for s in slices]  # noqa: E731
    assert bounds(chunks.image_chunks(3, 128 * 128, like)) == [(0, 1), (1, 2), (2, 3)]
    assert bounds(chunks.image_chunks(3, 512 * 512, like)) == [(0, 1), (1, 2), (2, 3)]
    assert bounds(chunks.image_chunks(8, 64 * 64, like)) == [(0, 4), (4, 8)]
    assert bounds(chunks.image_chunks(8, 32 * 32, like)) == [(0, 8)]
