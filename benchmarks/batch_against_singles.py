"""A batch of CT or MRI slices in one call against one call per slice.

    python benchmarks/batch_against_singles.py [--case ct128 | mriN] [--slices 8] [--model sa-cnn] [--repeats 3]

The slices are pydicom's real test slices (``ct-head``, ``ct-head-2``, ``ct-spine``,
``mr-abdomen``, in turn) at N x N, through the acquisitions of
``benchmarks/reconstruct.py`` (CT: 60 parallel-beam angles, 1e4 photons per ray,
Poisson weights; MRI: 8 birdcage coils, Cartesian x4, noise 0.01), at the model's
preset for the size (or the nearest) and the examples' stopping rule.  Printed: the
median seconds of ``--repeats`` rounds (each round the single calls, then the batch,
after a warm-up of both), the iterations (an adaptive model's reweighting steps) of
each single call and of the batch, the ratio of the batch's seconds to the single
calls', and the largest difference between the batch's images and the single calls'.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import adareg
from adareg.ct import poisson_transmission
from adareg.examples.comparison import regularizer, stopping

from reconstruct import case, noisy_kspace, preset_weights  # benchmarks/reconstruct.py, beside this script

SLICES = ("ct-head", "ct-head-2", "ct-spine", "mr-abdomen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="mri128", help="ctN or mriN (default mri128)")
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--model", default="sa-cnn", choices=("tv", "crr", "wcrr", "sa-cnn", "sa-b"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    H, _, _, extra = case(args.case, "cpu")
    size = H.shape_in[-1]
    truths = np.stack([adareg.data.medical_slice(SLICES[i % len(SLICES)], shape=(size, size), dtype=np.float32)
                       for i in range(args.slices)])
    if "weights" in extra:  # CT: Poisson data of each slice
        y, weights = poisson_transmission(H(truths), 1e4, seed=0)
        extra = {"weights": weights}
    else:  # MRI: noise on the sampled k-space positions, as in reconstruct.case
        y = noisy_kspace(H, truths, np.random.default_rng(0))
    reg = regularizer(args.model, size)
    options = {**stopping(args.model, 500), **preset_weights(args.case, args.model)[0]}

    def singles() -> list[adareg.Result]:
        return [adareg.solve(H, y[i], reg, **options, **{k: v[i] for k, v in extra.items()})
                for i in range(args.slices)]

    def batch() -> adareg.Result:
        return adareg.solve(H, y, reg, **options, **extra)

    singles(), batch()
    one_by_one, together = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        alone = singles()
        one_by_one.append(time.perf_counter() - start)
        start = time.perf_counter()
        batched = batch()
        together.append(time.perf_counter() - start)
    difference = float(np.max(np.abs(np.stack([result.x for result in alone]) - batched.x)))
    print(f"{args.case}, {args.slices} slices, {args.model}: one call per slice "
          f"{statistics.median(one_by_one):.2f} s (iterations {[result.iterations for result in alone]}), one call "
          f"{statistics.median(together):.2f} s ({batched.iterations} iterations), ratio "
          f"{statistics.median(together) / statistics.median(one_by_one):.2f}, largest difference {difference:.3g}")


if __name__ == "__main__":
    main()
