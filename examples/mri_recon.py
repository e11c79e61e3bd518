"""Multi-coil Cartesian MRI of a real abdominal slice: zero-filled, SENSE, TV, wcrr and sa-cnn.

    python examples/mri_recon.py [--image mr-abdomen] [--size 128] [--coils 8] [--acceleration 4]
                                 [--center-fraction 0.08] [--sigma 0.01] [--models tv wcrr sa-cnn]
                                 [--tune] [--output mri_recon.png]

Simulates an 8-coil acquisition y_c = M F(S_c x) + n_c of a real MR magnitude slice
from pydicom's test files (``adareg.data.medical_slice("mr-abdomen")``, scaled to
[0, 1]; ``--image phantom`` for the Shepp-Logan phantom): birdcage coil maps S_c
(sum_c |S_c|^2 = 1), the centred orthonormal FFT F, a random fastMRI-style column
mask M (x4, 8% of the columns fully sampled at the centre) and complex Gaussian
noise of standard deviation sigma in the real and the imaginary part of each sampled
k-space entry.  On the real image space it reconstructs

    zero-filled   H^H y
    SENSE         (H^H H + mu I) x = H^H y by conjugate gradients, mu = 0.01
    TV, wcrr,     argmin_{x >= 0} 1/2 ||H x - y||^2 + lam R(x)   (adareg.solve)
    sa-cnn

and prints PSNR, SSIM and seconds (best first), then writes a figure with the error
maps and sa-cnn's masks.  Every ``lam`` (and model ``sigma``) comes from
``adareg.presets``, chosen by ``adareg.tune`` on a different image (the CT slice
``ct-head-2``) with the same acquisition; ``--tune`` repeats that search.
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
from adareg import mri
from adareg.operators import CartesianMRI
from adareg.regularizers import TV

#: The calibration image of ``--tune`` and of the shipped presets.
CALIBRATION = "ct-head-2"


def ground_truth(name: str, size: int) -> np.ndarray:
    """The test image: a real slice, or the phantom."""
    if name == "phantom":
        return adareg.data.shepp_logan((size, size)).astype(np.float32)
    return adareg.data.medical_slice(name, shape=(size, size), dtype=np.float32)


def acquire(image: np.ndarray, args: argparse.Namespace, seed: int) -> tuple[CartesianMRI, np.ndarray, np.ndarray]:
    """The operator, the noisy k-space data and the mask of one simulated acquisition of ``image``."""
    maps = mri.birdcage_maps(image.shape, args.coils)
    mask = mri.cartesian_mask(image.shape, args.acceleration, args.center_fraction, seed=seed)
    H = CartesianMRI(mask, maps, real=True)
    rng = np.random.default_rng(seed + 1)
    y = H(image)
    noise = args.sigma * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    return H, y + (mask * noise).astype(y.dtype), mask  # noise on the sampled entries only


def regularizer(name: str, size: int):
    return TV((size, size)) if name == "tv" else adareg.load(name)


def options(args: argparse.Namespace, name: str) -> dict:
    """``adareg.solve``'s stopping rules: the reweighting's fixed-point residual, FISTA's relative change."""
    if name in ("sa-cnn", "sa-b"):  # reweighting steps, at most solve's 100
        return {"bounds": (0.0, None), "tol": 1e-3}
    return {"bounds": (0.0, None), "tol": 1e-4, "max_iter": args.iterations}


def tune(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Choose each model's weights on the calibration image with ``adareg.tune``."""
    truth = ground_truth(CALIBRATION, args.size)
    H, y, _ = acquire(truth, args, args.seed + 2)
    found = {}
    for name in args.models:
        start = time.perf_counter()
        t = adareg.tune(H, [y], [truth], regularizer(name, args.size), levels=2, points=5,
                        solve_options=options(args, name), progress=not args.quiet)
        found[name] = {"lam": t.lam} if t.sigma is None else {"lam": t.lam, "sigma": t.sigma}
        print(f"tuned {name} on {CALIBRATION}: {found[name]}, {t.psnr:.2f} dB, {len(t.table)} evaluations, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="mr-abdomen", choices=("phantom", *adareg.data.SLICES), help="test image")
    parser.add_argument("--size", type=int, default=128, help="resize the image to size x size")
    parser.add_argument("--coils", type=int, default=8, help="number of birdcage coils")
    parser.add_argument("--acceleration", type=float, default=4.0, help="undersampling factor")
    parser.add_argument("--center-fraction", type=float, default=0.08, help="fully sampled central columns")
    parser.add_argument("--sigma", type=float, default=0.01, help="k-space noise level (real and imaginary parts)")
    parser.add_argument("--mu", type=float, default=0.01, help="Tikhonov weight of SENSE")
    parser.add_argument("--models", nargs="+", default=["tv", "wcrr", "sa-cnn"],
                        help="regularizers: tv and shipped model names")
    parser.add_argument("--tune", action="store_true", help=f"choose every weight on {CALIBRATION!r} first")
    parser.add_argument("--iterations", type=int, default=500, help="maximal FISTA iterations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask and the noise")
    parser.add_argument("--output", default="mri_recon.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()

    n = args.size
    acquisition = f"mri-cartesian-{args.coils}-x{args.acceleration:g}-{args.sigma:g}-{n}"
    if args.tune:
        weights_of = tune(args)
        print(json.dumps({acquisition: {"models": weights_of}}, indent=1))
    else:
        try:
            weights_of = {name: adareg.presets.preset(acquisition, name) for name in args.models}
        except ValueError as error:
            parser.error(f"{error}; run with --tune to choose the weights for this acquisition")
    truth = ground_truth(args.image, n)
    H, y, mask = acquire(truth, args, args.seed)

    rows = []
    start = time.perf_counter()
    rows.append(("zero-filled", mri.zero_filled(H, y), time.perf_counter() - start, ""))
    start = time.perf_counter()
    rows.append(("SENSE", mri.sense(H, y, lam=args.mu).x, time.perf_counter() - start, f"mu {args.mu:g}"))
    for name in args.models:
        chosen = weights_of[name]
        start = time.perf_counter()
        result = adareg.solve(H, y, regularizer(name, n), **chosen, **options(args, name), progress=not args.quiet)
        unit = "steps" if "residual" in result.history.columns else "iterations"
        note = f"{result.iterations} {unit}, " + ", ".join(f"{k} {v:.3g}" for k, v in chosen.items())
        rows.append((name, result.x, time.perf_counter() - start, note))

    print(f"{args.image} {n}x{n}, {args.coils} coils, x{args.acceleration:g} ({mask[0].mean():.3f} of the columns), "
          f"sigma = {args.sigma:g}; weights from {'--tune' if args.tune else 'adareg.presets'} ({CALIBRATION})")
    print(f"{'method':12} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    images = [(name, np.asarray(x), seconds, note) for name, x, seconds, note in rows]
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
    axes[1, 0].imshow(mask, cmap="gray")
    axes[1, 0].set_title(f"mask, x{args.acceleration:g}")
    for column, (name, x, _, _) in enumerate(images, start=1):
        axes[0, column].imshow(x, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"{name}, {adareg.psnr(x, truth):.2f} dB")
        axes[1, column].imshow(np.abs(x - truth), cmap="inferno", vmin=0, vmax=0.15)
        axes[1, column].set_title(f"|error| ({name})")
    if masks is not None:
        order = np.argsort(masks.reshape(len(masks), -1).std(axis=1))[::-1]
        axes[2, 0].imshow(masks.mean(axis=0), cmap="viridis", vmin=0, vmax=1)
        axes[2, 0].set_title("sa-cnn: mean mask")
        for column, channel in enumerate(order[: columns - 1], start=1):
            axes[2, column].imshow(masks[channel], cmap="viridis", vmin=0, vmax=1)
            axes[2, column].set_title(f"sa-cnn: mask {channel}")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
