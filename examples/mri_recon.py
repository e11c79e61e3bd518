"""Multi-coil Cartesian MRI of a built-in image: zero-filled, SENSE, TV and learned (crr) reconstructions.

    python examples/mri_recon.py [--image camera] [--size 256] [--coils 8] [--acceleration 4]
                                 [--center-fraction 0.08] [--sigma 0.01] [--lam LAM] [--model crr]
                                 [--model-lam LAM] [--model-sigma S] [--tune] [--output mri_recon.png]

Simulates an 8-coil acquisition y_c = M F(S_c x) + n_c of a real image x in [0, 1]:
birdcage coil maps S_c (sum_c |S_c|^2 = 1), the centred orthonormal FFT F, a random
fastMRI-style column mask M (x4, 8% of the columns fully sampled at the centre) and
complex Gaussian noise of standard deviation sigma in the real and the imaginary part
of each sampled k-space entry (F is orthonormal, so sigma is also the noise level per
pixel of a fully sampled single-coil image).  On the real image space it reconstructs

    zero-filled   H^H y
    SENSE         (H^H H + mu I) x = H^H y by conjugate gradients, mu = 0.01
    TV            argmin_{x >= 0} 1/2 ||H x - y||^2 + lam TV(x)   (adareg.solve, FISTA)
    crr           the same with the shipped learned model R = adareg.load("crr") at its
                  noise level model-sigma, weight model-lam (FISTA on the smooth objective)

and prints PSNR, SSIM and seconds, then writes a figure (reconstructions and error
maps).  The defaults lam = 0.1 sigma and mu = 0.01 gave the best PSNR on the image
"coins" (256 x 256, same acquisition) over the grids lam / sigma in {0.03, 0.06, 0.1,
0.2, 0.3, 0.5} and mu in {0.001, 0.003, 0.01, 0.03, 0.1}; they were not tuned on the
default test image "camera".  For crr, model-lam and model-sigma are those that
``adareg.tune`` chose on "coins" with the same acquisition (``--tune`` repeats the search
and prints its result); for another model (``--model wcrr``, a parameter file) they need
a search of their own.
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import adareg
from adareg import mri
from adareg.operators import CartesianMRI
from adareg.regularizers import TV

#: crr's weight and noise level for this acquisition, chosen on "coins" by ``--tune`` (see the module docstring).
MODEL_LAM, MODEL_SIGMA = 0.142, 3.11


def acquire(image: np.ndarray, args: argparse.Namespace) -> tuple[CartesianMRI, np.ndarray, np.ndarray]:
    """The operator, the noisy k-space data and the mask of one simulated acquisition of ``image``."""
    maps = mri.birdcage_maps(image.shape, args.coils)
    mask = mri.cartesian_mask(image.shape, args.acceleration, args.center_fraction, seed=args.seed)
    H = CartesianMRI(mask, maps, real=True)
    rng = np.random.default_rng(args.seed + 1)
    y = H(image)
    noise = args.sigma * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    return H, y + (mask * noise).astype(y.dtype), mask  # noise on the sampled entries only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="camera", choices=adareg.data.IMAGES, help="built-in image")
    parser.add_argument("--size", type=int, default=256, help="resize the image to size x size")
    parser.add_argument("--coils", type=int, default=8, help="number of birdcage coils")
    parser.add_argument("--acceleration", type=float, default=4.0, help="undersampling factor")
    parser.add_argument("--center-fraction", type=float, default=0.08, help="fully sampled central columns")
    parser.add_argument("--sigma", type=float, default=0.01, help="k-space noise level (real and imaginary parts)")
    parser.add_argument("--lam", type=float, default=None, help="TV weight (default: 0.1 sigma)")
    parser.add_argument("--mu", type=float, default=0.01, help="Tikhonov weight of SENSE")
    parser.add_argument("--model", default="crr", help="learned model: a shipped name or a parameter file")
    parser.add_argument("--model-lam", type=float, default=MODEL_LAM, help="weight of the learned regularizer")
    parser.add_argument("--model-sigma", type=float, default=MODEL_SIGMA, help="noise level given to the model (/255)")
    parser.add_argument("--tune", action="store_true",
                        help="first choose model-lam and model-sigma on 'coins' with adareg.tune, and use them")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask and the noise")
    parser.add_argument("--output", default="mri_recon.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()

    shape = (args.size, args.size)
    truth = adareg.data.image(args.image, shape=shape, dtype=np.float32)
    H, y, mask = acquire(truth, args)
    lam = 0.1 * args.sigma if args.lam is None else args.lam
    model = adareg.load(args.model)
    if args.tune:
        coins = adareg.data.image("coins", shape=shape, dtype=np.float32)
        H_coins, y_coins, _ = acquire(coins, args)
        tuning = adareg.tune(H_coins, [y_coins], [coins], model, solve_options={"bounds": (0.0, None)},
                             progress=not args.quiet)
        args.model_lam, args.model_sigma = tuning.lam, tuning.sigma * 255
        print(f"tuned on coins: model-lam {tuning.lam:.3g}, model-sigma {tuning.sigma * 255:.3g}/255, "
              f"{tuning.psnr:.2f} dB ({len(tuning.table)} evaluations)")

    rows = []
    start = time.perf_counter()
    zero_filled = mri.zero_filled(H, y)
    rows.append(("zero-filled", zero_filled, time.perf_counter() - start))
    start = time.perf_counter()
    sense = mri.sense(H, y, lam=args.mu)
    rows.append(("SENSE", sense.x, time.perf_counter() - start))
    start = time.perf_counter()
    tv = adareg.solve(H, y, TV(shape), lam=lam, bounds=(0.0, None), progress=not args.quiet)
    rows.append(("TV", tv.x, time.perf_counter() - start))
    start = time.perf_counter()
    learned = adareg.solve(H, y, model, lam=args.model_lam, sigma=args.model_sigma / 255,
                           bounds=(0.0, None), progress=not args.quiet)
    rows.append((args.model, learned.x, time.perf_counter() - start))

    print(f"image {args.image} {shape}, {args.coils} coils, x{args.acceleration:g} "
          f"({mask[0].mean():.3f} of the columns), sigma = {args.sigma:g}, lam = {lam:.4g}, mu = {args.mu:g}")
    print(f"{'':12} {'PSNR (dB)':>10} {'SSIM':>7} {'seconds':>8}")
    for name, x, seconds in rows:
        print(f"{name:12} {adareg.psnr(x, truth):10.2f} {adareg.ssim(x, truth):7.4f} {seconds:8.2f}")
    print(f"SENSE: {sense.message}; TV: {tv.message}; {args.model}: {learned.message}")

    fig, axes = plt.subplots(2, 5, figsize=(17.5, 7.4))
    axes[0, 0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("ground truth")
    axes[1, 0].imshow(mask, cmap="gray")
    axes[1, 0].set_title(f"mask, x{args.acceleration:g}")
    for column, (name, x, _) in enumerate(rows, start=1):
        axes[0, column].imshow(x, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"{name}, {adareg.psnr(x, truth):.2f} dB")
        axes[1, column].imshow(np.abs(x - truth), cmap="inferno", vmin=0, vmax=0.2)
        axes[1, column].set_title(f"|error| ({name})")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"figure written to {args.output}")


if __name__ == "__main__":
    main()
