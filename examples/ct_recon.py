"""Sparse-view CT of a real head slice: FBP, TV, wcrr and the paper's spatially adaptive sa-cnn.

    python examples/ct_recon.py [--image ct-head|phantom] [--size 128] [--angles 60] [--photons 1e4]
                                [--models tv sa-cnn] [--tune] [--device cpu|gpu] [--output ct_recon.png]

Simulates a 2D parallel-beam scan (a field of view of one unit, so line integrals
stay below about 1) with Poisson counting noise (``photons`` per ray) of a real CT
slice from pydicom's test files (``adareg.data.medical_slice("ct-head")``, [-1000,
1000] HU mapped onto [0, 1]; ``--image phantom`` for the Shepp-Logan phantom), then
reconstructs it

* by filtered back-projection (Hann window), and
* by ``argmin_{x >= 0} 1/2 ||A x - y||_w^2 + lam R(x)`` with the Poisson
  inverse-variance weights ``w`` through ``adareg.solve``, for R = TV, the learned
  ``wcrr`` (FISTA) and the learned ``sa-cnn`` (reweighting with PD3O steps);

and prints PSNR, SSIM and seconds (best first), and writes a figure with the error
maps and the masks that sa-cnn put on its reconstruction.  Every weight (``lam``,
and the model's ``sigma``) comes from ``adareg.presets``, chosen by ``adareg.tune`` on
another patient's slice (``ct-head-2``) with the same scan, never on the slice
reported here; ``--tune`` repeats that search and prints the presets it finds.
"""

from __future__ import annotations

import argparse
import json
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

#: The calibration slice of ``--tune`` and of the shipped presets.
CALIBRATION = "ct-head-2"


def ground_truth(name: str, size: int) -> np.ndarray:
    """The test image: a real slice, or the phantom."""
    if name == "phantom":
        return adareg.data.shepp_logan((size, size)).astype(np.float32)
    return adareg.data.medical_slice(name, shape=(size, size), dtype=np.float32)


def scan(image: np.ndarray, args: argparse.Namespace, seed: int) -> tuple[RayTransform, Array, Array]:
    """The ray transform, noisy log sinogram and inverse-variance weights of one simulated scan."""
    n = image.shape[0]
    H = RayTransform((n, n), args.angles, pixel_size=1.0 / n)
    sinogram, weights = poisson_transmission(H(adareg.to_device(image, args.device)), args.photons, seed=seed)
    return H, sinogram, weights


def regularizer(name: str, size: int):
    return TV((size, size)) if name == "tv" else adareg.load(name)


def options(args: argparse.Namespace, name: str, weights: Array) -> dict:
    """``adareg.solve``'s stopping rules: the reweighting's fixed-point residual, FISTA's relative change."""
    if name in ("sa-cnn", "sa-b"):  # reweighting steps, at most solve's 100
        return {"bounds": (0.0, None), "weights": weights, "tol": 1e-3}
    return {"bounds": (0.0, None), "weights": weights, "tol": 1e-4, "max_iter": args.iterations}


def tune(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Choose each model's weights on the calibration slice with ``adareg.tune``."""
    truth = ground_truth(CALIBRATION, args.size)
    H, y, w = scan(truth, args, args.seed + 1)
    found = {}
    for name in args.models:
        start = time.perf_counter()
        t = adareg.tune(H, [y], [adareg.to_device(truth, args.device)], regularizer(name, args.size),
                        levels=2, points=5, solve_options=options(args, name, w), progress=not args.quiet)
        found[name] = {"lam": t.lam} if t.sigma is None else {"lam": t.lam, "sigma": t.sigma}
        print(f"tuned {name} on {CALIBRATION}: {found[name]}, {t.psnr:.2f} dB, {len(t.table)} evaluations, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="ct-head", choices=("phantom", *adareg.data.SLICES), help="test image")
    parser.add_argument("--size", type=int, default=128, help="image size (pixels per side)")
    parser.add_argument("--angles", type=int, default=60, help="number of projection angles over [0, pi)")
    parser.add_argument("--photons", type=float, default=1e4, help="incident photons per detector cell")
    parser.add_argument("--models", nargs="+", default=["tv", "sa-cnn"],
                        help="regularizers: tv and shipped model names (wcrr has no CT preset yet: add --tune)")
    parser.add_argument("--tune", action="store_true", help=f"choose every weight on {CALIBRATION!r} first")
    parser.add_argument("--iterations", type=int, default=500,
                        help="maximal FISTA iterations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="NumPy or CuPy arrays")
    parser.add_argument("--output", default="ct_recon.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()

    n = args.size
    acquisition = f"ct-parallel-{args.angles}-{args.photons:.0e}-{n}"
    if args.tune:
        weights_of = tune(args)
        print(json.dumps({acquisition: {"models": weights_of}}, indent=1))
    else:
        try:
            weights_of = {name: adareg.presets.preset(acquisition, name) for name in args.models}
        except ValueError as error:
            parser.error(f"{error}; run with --tune to choose the weights for this scan")
    truth = ground_truth(args.image, n)
    H, sinogram, weights = scan(truth, args, args.seed)

    rows = []
    start = time.perf_counter()
    x_fbp = fbp(H, sinogram, window="hann")
    rows.append(("FBP (Hann)", x_fbp, time.perf_counter() - start, ""))
    for name in args.models:
        chosen = weights_of[name]
        start = time.perf_counter()
        result = adareg.solve(H, sinogram, regularizer(name, n), **chosen, **options(args, name, weights),
                              progress=not args.quiet)
        unit = "steps" if "residual" in result.history.columns else "iterations"
        note = f"{result.iterations} {unit}, " + ", ".join(f"{k} {v:.3g}" for k, v in chosen.items())
        rows.append((name, result.x, time.perf_counter() - start, note))

    print(f"{args.image} {n}x{n}, {args.angles} parallel-beam angles, {args.photons:g} photons per ray, "
          f"{args.device.upper()}; weights from {'--tune' if args.tune else 'adareg.presets'} ({CALIBRATION})")
    print(f"{'method':12} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    images = [(name, adareg.to_numpy(x), seconds, note) for name, x, seconds, note in rows]
    images.sort(key=lambda row: -adareg.psnr(row[1], truth))
    for name, x, seconds, note in images:
        print(f"{name:12} {adareg.psnr(x, truth):10.2f} {adareg.ssim(x, truth):7.4f} {seconds:8.2f}  {note}")

    masks = None
    if "sa-cnn" in args.models:
        x = next(x for name, x, *_ in images if name == "sa-cnn")
        masks = adareg.load("sa-cnn").weights(x, weights_of["sa-cnn"]["sigma"])
    columns = len(images) + 1
    fig, axes = plt.subplots(3 if masks is not None else 2, columns, figsize=(3.6 * columns, 10.8 if masks is not None
                                                                                    else 7.2))
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("ground truth")
    axes[1, 0].imshow(adareg.to_numpy(sinogram), cmap="gray", aspect="auto")
    axes[1, 0].set_title("sinogram (log data)")
    for column, (name, x, _, _) in enumerate(images, start=1):
        axes[0, column].imshow(x, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"{name}, {adareg.psnr(x, truth):.2f} dB")
        axes[1, column].imshow(np.abs(x - truth), cmap="magma", vmin=0, vmax=0.15)
        axes[1, column].set_title(f"|error| of {name}")
    if masks is not None:
        # the channels whose masks vary most over the image: where sa-cnn regularises less (dark) or more
        order = np.argsort(masks.reshape(len(masks), -1).std(axis=1))[::-1]
        axes[2, 0].imshow(masks.mean(axis=0), cmap="viridis", vmin=0, vmax=1)
        axes[2, 0].set_title("sa-cnn: mean mask")
        for column, channel in enumerate(order[: columns - 1], start=1):
            axes[2, column].imshow(masks[channel], cmap="viridis", vmin=0, vmax=1)
            axes[2, column].set_title(f"sa-cnn: mask {channel}")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
