"""Sparse-view CT: filtered back-projection, TV and a learned regularizer (crr).

    python examples/ct_recon.py [--size 256] [--angles 60] [--photons 1e4] [--lam LAM] [--model crr]
                                [--model-lam LAM] [--model-sigma S] [--tune] [--device cpu|gpu]
                                [--output ct_recon.png]

Simulates a 2D parallel-beam scan of the modified Shepp-Logan phantom (a field of
view of one unit, so line integrals stay below about 1) with Poisson counting noise
(``photons`` per ray), then reconstructs it

* by filtered back-projection (Hann window), and
* by TV: ``argmin_{x >= 0} 1/2 ||A x - y||_w^2 + lam TV(x)`` with the Poisson
  inverse-variance weights ``w``, through ``adareg.solve``;
* by the same problem with the shipped learned regularizer ``adareg.load("crr")`` at
  its noise level ``model-sigma`` and weight ``model-lam`` (FISTA on the smooth
  objective);

and prints PSNR, SSIM and seconds for each, and writes a figure with the error maps.
Every default weight was chosen on a different image (scikit-image's "brick") with the
same scan, not on the phantom reported here: ``lam`` for TV, and ``model-lam`` with
``model-sigma`` for crr by ``adareg.tune`` (``--tune`` repeats that search and prints
its result).  ``--model`` takes any other shipped name or parameter file; its weights
then need a search of their own (``--tune``).
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import adareg
from adareg.backend import Array
from adareg.ct import fbp, poisson_transmission
from adareg.operators import RayTransform
from adareg.regularizers import TV

#: crr's weight and noise level for this scan, chosen on "brick" by ``--tune`` (see the module docstring).
MODEL_LAM, MODEL_SIGMA = 0.0321, 3.0


def scan(image: np.ndarray, args: argparse.Namespace, seed: int) -> tuple[RayTransform, Array, Array]:
    """The ray transform, noisy log sinogram and inverse-variance weights of one simulated scan."""
    n = image.shape[0]
    H = RayTransform((n, n), args.angles, pixel_size=1.0 / n)
    sinogram, weights = poisson_transmission(H(adareg.to_device(image, args.device)), args.photons, seed=seed)
    return H, sinogram, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image size (pixels per side)")
    parser.add_argument("--angles", type=int, default=60, help="number of projection angles over [0, pi)")
    parser.add_argument("--photons", type=float, default=1e4, help="incident photons per detector cell")
    parser.add_argument("--lam", type=float, default=2e-4, help="TV weight")
    parser.add_argument("--model", default="crr", help="learned model: a shipped name or a parameter file")
    parser.add_argument("--model-lam", type=float, default=MODEL_LAM, help="weight of the learned regularizer")
    parser.add_argument("--model-sigma", type=float, default=MODEL_SIGMA, help="noise level given to the model (/255)")
    parser.add_argument("--tune", action="store_true",
                        help="first choose model-lam and model-sigma on 'brick' with adareg.tune, and use them")
    parser.add_argument("--iterations", type=int, default=300, help="maximal FISTA iterations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="NumPy or CuPy arrays")
    parser.add_argument("--output", default="ct_recon.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()

    n = args.size
    phantom = adareg.data.shepp_logan((n, n)).astype(np.float32)
    H, sinogram, weights = scan(phantom, args, args.seed)
    model = adareg.load(args.model)
    options = {"bounds": (0.0, None), "max_iter": args.iterations, "tol": 1e-4}
    if args.tune:
        brick = adareg.data.image("brick", shape=(n, n), dtype=np.float32)
        _, y_brick, w_brick = scan(brick, args, args.seed + 1)
        tuning = adareg.tune(H, [y_brick], [adareg.to_device(brick, args.device)], model,
                             solve_options={**options, "weights": w_brick}, progress=not args.quiet)
        args.model_lam, args.model_sigma = tuning.lam, tuning.sigma * 255
        print(f"tuned on brick: model-lam {tuning.lam:.3g}, model-sigma {tuning.sigma * 255:.3g}/255, "
              f"{tuning.psnr:.2f} dB ({len(tuning.table)} evaluations)")

    rows = []
    start = time.perf_counter()
    x_fbp = fbp(H, sinogram, window="hann")
    rows.append(("FBP (Hann)", x_fbp, time.perf_counter() - start, ""))

    start = time.perf_counter()
    result = adareg.solve(H, sinogram, TV((n, n)), lam=args.lam, weights=weights, **options,
                          progress=not args.quiet)
    rows.append(("TV", result.x, time.perf_counter() - start, f"{result.iterations} iterations"))

    start = time.perf_counter()
    result = adareg.solve(H, sinogram, model, lam=args.model_lam, sigma=args.model_sigma / 255, weights=weights,
                          **options, progress=not args.quiet)
    note = f"{result.iterations} iterations, lam {args.model_lam:.3g}, sigma {args.model_sigma:.3g}/255"
    rows.append((args.model, result.x, time.perf_counter() - start, note))

    print(f"Shepp-Logan {n}x{n}, {args.angles} parallel-beam angles, {args.photons:g} photons per ray, "
          f"{args.device.upper()}")
    print(f"{'method':12} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    images = []
    for name, x, seconds, note in rows:
        x = adareg.to_numpy(x)
        images.append((name, x))
        print(f"{name:12} {adareg.psnr(x, phantom):10.2f} {adareg.ssim(x, phantom):7.4f} {seconds:8.2f}  {note}")

    fig, axes = plt.subplots(2, len(images) + 1, figsize=(4 * (len(images) + 1), 8))
    axes[0, 0].imshow(phantom, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("ground truth")
    axes[1, 0].imshow(adareg.to_numpy(sinogram), cmap="gray", aspect="auto")
    axes[1, 0].set_title("sinogram (log data)")
    for column, (name, x) in enumerate(images, start=1):
        axes[0, column].imshow(x, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"{name}, {adareg.psnr(x, phantom):.2f} dB")
        axes[1, column].imshow(np.abs(x - phantom), cmap="magma", vmin=0, vmax=0.25)
        axes[1, column].set_title(f"|error| of {name}")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=90)
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
