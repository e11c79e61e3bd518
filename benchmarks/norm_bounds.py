"""Do reflect-boundary convolutions' step-size bounds bound their norms? A scan of sharp-spectrum kernels.

    python benchmarks/norm_bounds.py [--sizes 9 11 13 15] [--images 66 70] [--frequencies 16]

``Conv2d(..., boundary="reflect").norm_bound()`` is a Lanczos estimate enlarged by
``NORM_SAFETY``, started from the top vector of the same kernel on a small image
(``Conv2d._norm_start``).  Kernels whose spectrum has a sharp peak,
``k[u, v] = cos(w u) cos(w v)`` on ``K x K`` taps, have top vectors that a small image
cannot hold.  For each size ``K``, image side ``n`` (images ``n x (n + 1)``) and
frequency ``w`` in [0.25, 1] this prints the cases whose bound falls below the norm
(ARPACK's largest eigenvalue of ``W^T W`` to 1e-10), then the number of such cases and
the smallest ratio of bound to norm.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.sparse import linalg

from adareg.operators import Conv2d


def arpack_norm(W: Conv2d) -> float:
    """``||W||`` from ARPACK's largest eigenvalue of ``W^T W``."""
    n = int(np.prod(W.shape_in))
    gram = linalg.LinearOperator((n, n), matvec=lambda v: W.H(W(v.reshape(W.shape_in))).ravel(), dtype=np.float64)
    return float(np.sqrt(linalg.eigsh(gram, k=1, which="LA", tol=1e-10, ncv=40, return_eigenvectors=False)[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[9, 11, 13, 15], help="kernel sizes K (odd)")
    parser.add_argument("--images", type=int, nargs="+", default=[66, 70], help="image sides n")
    parser.add_argument("--frequencies", type=int, default=16, help="frequencies w in [0.25, 1]")
    args = parser.parse_args()
    below, worst, cases = 0, np.inf, 0
    for size in args.sizes:
        taps = np.arange(size) - (size - 1) / 2
        for side in args.images:
            for w in np.linspace(0.25, 1.0, args.frequencies):
                profile = np.cos(w * taps)
                W = Conv2d(np.outer(profile, profile), (side, side + 1), boundary="reflect")
                ratio = W.norm_bound() / arpack_norm(W)
                cases, worst = cases + 1, min(worst, ratio)
                if ratio < 1:
                    below += 1
                    print(f"K {size:2d}  image {side} x {side + 1}  w {w:.4f}  bound / norm {ratio:.5f}", flush=True)
    print(f"{below} of {cases} bounds below the norm; smallest bound / norm {worst:.5f}")


if __name__ == "__main__":
    main()
