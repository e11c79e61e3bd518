"""Batched against one-by-one solves: iterations and distances to a tight solve, slice by slice.

    python benchmarks/batched_slices.py

Three real CT slices (pydicom's test files) at 48 x 48, 30 parallel-beam angles,
Gaussian noise, TV at ``lam = 5e-4`` with ``x >= 0`` from the FBP: solved as one batch
and one by one at ``adareg.solve``'s default tolerance, each compared with a solve of
its slice at ``tol = 1e-8`` (up to 4000 iterations).  Each slice of a batch has its own
FISTA momentum and restarts; the batch stops when its slowest slice has converged.
"""

from __future__ import annotations

import warnings

import numpy as np

import adareg
from adareg.ct import fbp
from adareg.operators import RayTransform
from adareg.regularizers import TV

SLICES = ("ct-head", "ct-head-2", "ct-spine")


def main() -> None:
    n = 48
    A = RayTransform((n, n), 30, pixel_size=1 / n)
    images = np.stack([adareg.data.medical_slice(name, shape=(n, n)) for name in SLICES])
    rng = np.random.default_rng(0)
    sinograms = (A(images) + 0.01 * rng.standard_normal((len(SLICES),) + A.shape_out)).astype(np.float32)
    x0 = fbp(A, sinograms, window="hann")
    options = dict(lam=5e-4, bounds=(0, None))
    batch = adareg.solve(A, sinograms, TV((n, n)), x0=x0, **options)
    print(f"batch of {len(SLICES)}: {batch.iterations} iterations ({batch.message})")
    print(f"{'slice':10} {'alone: iterations':>18} {'distance':>9} {'in the batch: distance':>23}")
    for i, name in enumerate(SLICES):
        alone = adareg.solve(A, sinograms[i], TV((n, n)), x0=x0[i], **options)
        with warnings.catch_warnings():  # the tight reference may stop on its cap
            warnings.simplefilter("ignore")
            tight = adareg.solve(A, sinograms[i], TV((n, n)), x0=x0[i], tol=1e-8, max_iter=4000, **options)
        distance = lambda x: np.linalg.norm(x - tight.x) / np.linalg.norm(tight.x)  # noqa: E731
        print(f"{name:10} {alone.iterations:18d} {distance(alone.x):9.1e} {distance(batch.x[i]):23.1e}")


if __name__ == "__main__":
    main()
