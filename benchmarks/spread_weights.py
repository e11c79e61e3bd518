"""Where the reweighting's default stop lies on a general ``H`` with widely spread data weights.

    python benchmarks/spread_weights.py [--seeds 0 1 2 3] [--weights spread none] [--spread 100]
                                        [--reference-tol 1e-6]

A 16 x 16 image (scikit-image's camera, moon, coins, brick, one per seed) seen through a
dense Gaussian ``H`` of 150 rows (``N(0, 1) / 16``, seed 3), noise of 0.01, ``sa-cnn`` at
``lam=0.02``, ``sigma=0.05``, in float64; the data weights alternate 1 and ``--spread``
(and, as the control, none: ``--weights none``).  One run without a tolerance records every step's
residual and iterate; a solve at ``--reference-tol`` (at most 1500 steps) is the
reference fixed point.  Prints, per case, the step and the relative distance to the
reference at which two rules stop at the default tolerance (3e-3):

* ``first``: the first residual below the tolerance (the rule before 2026-12-04);
* ``confirmed``: :func:`adareg.solvers.reweighting`'s rule, a residual below the
  tolerance after one below ``GENERAL_CONFIRMATION`` times it.
"""

from __future__ import annotations

import argparse

import numpy as np

import adareg
from adareg.operators import LinearOperator
from adareg.solvers.reweighting import DEFAULTS, GENERAL_CONFIRMATION

IMAGES = ("camera", "moon", "coins", "brick")


class DenseOperator(LinearOperator):
    """``x -> A vec(x)`` for a dense matrix ``A`` acting on images."""

    def __init__(self, matrix: np.ndarray, shape_in: tuple[int, int]):
        super().__init__(shape_in, matrix.shape[:1])
        self.matrix = matrix

    def _apply(self, x):
        return x.reshape(*x.shape[:-2], -1) @ self.matrix.T

    def _adjoint(self, y):
        return (y @ self.matrix).reshape(*y.shape[:-1], *self.shape_in)


def stops(residuals: list[float], tol: float) -> dict[str, int]:
    """The 0-based step at which each rule stops (the last step where none does)."""
    first = next((k for k, r in enumerate(residuals) if r <= tol), len(residuals) - 1)
    # as the library's: nothing confirms the first step (whose residual is the move from x0)
    confirmed = next((k for k, r in enumerate(residuals)
                      if r <= tol and k > 0 and residuals[k - 1] <= GENERAL_CONFIRMATION * tol), len(residuals) - 1)
    return {"first": first, "confirmed": confirmed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], choices=range(len(IMAGES)))
    parser.add_argument("--weights", nargs="+", choices=("spread", "none"), default=["spread", "none"])
    parser.add_argument("--spread", type=float, default=100.0)
    parser.add_argument("--reference-tol", type=float, default=1e-6)
    args = parser.parse_args()
    H = DenseOperator(np.random.default_rng(3).standard_normal((150, 256)) / 16, (16, 16))
    spread = np.where(np.arange(150) % 2, args.spread, 1.0)
    model = adareg.load("sa-cnn")
    print(f"{'case':14} {'rule':10} {'step':>5} {'residual':>9} {'distance':>9}")
    for seed in args.seeds:
        clean = adareg.data.image(IMAGES[seed], shape=(16, 16))
        y = H(clean) + 0.01 * np.random.default_rng(seed).standard_normal(150)
        cases = {"spread": (f"spread{seed}", spread), "none": (f"unweighted{seed}", None)}
        for label, weights in (cases[name] for name in args.weights):
            options = dict(lam=0.02, sigma=0.05, weights=weights, precision="float64")
            reference = adareg.solve(H, y, model, tol=args.reference_tol, max_iter=1500, **options)
            iterates: list[np.ndarray] = []
            run = adareg.solve(H, y, model, tol=0.0, max_iter=120, **options,
                               callback=lambda k, x: iterates.append(np.array(x)))
            residuals = list(run.history["residual"])
            for rule, k in stops(residuals, DEFAULTS.tol).items():
                distance = np.linalg.norm(iterates[k] - reference.x) / np.linalg.norm(reference.x)
                print(f"{label:14} {rule:10} {k + 1:5d} {residuals[k]:9.1e} {distance:9.1e}"
                      + ("" if reference.converged else " (reference unconverged)"), flush=True)


if __name__ == "__main__":
    main()
