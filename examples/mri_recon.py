"""Multi-coil Cartesian MRI of a real abdominal slice: zero-filled, SENSE, TV, wcrr, sa-cnn, sa-b.

    python examples/mri_recon.py [--image mr-abdomen] [--size 128] [--coils 8] [--acceleration 4]
                                 [--center-fraction 0.08] [--sigma 0.01] [--models tv wcrr sa-cnn sa-b]
                                 [--tune | --from-preset [SIZE]] [--patience 1.5|off]
                                 [--output mri_recon.png]

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
    sa-cnn, sa-b

and prints PSNR, SSIM and seconds (best first), then writes a figure with the error
maps and sa-cnn's masks.  Every ``lam`` (and model ``sigma``) comes from
``adareg.presets``, chosen by ``adareg.tune`` on a different image (the CT slice
``ct-head-2``) with the same acquisition; ``--tune`` repeats that search (``--patience``
and ``--from-preset`` as in ``examples/ct_recon.py``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import adareg
from adareg import mri
from adareg.examples.comparison import (CALIBRATION, add_tuning_arguments, chosen_weights, ground_truth,
                                      non_negative, parse_arguments, positive, preset_starts, report, solve_each,
                                      stopping, tune, whole)
from adareg.operators import CartesianMRI


#: The fully sampled central columns of the presets' acquisitions (fastMRI's x4 knee protocol).
CENTER_FRACTION = 0.08


def acquire(image: np.ndarray, args: argparse.Namespace, seed: int) -> tuple[CartesianMRI, np.ndarray, np.ndarray]:
    """The operator, the noisy k-space data and the mask of one simulated acquisition of ``image``."""
    maps = mri.birdcage_maps(image.shape, args.coils)
    mask = mri.cartesian_mask(image.shape, args.acceleration, args.center_fraction, seed=seed)
    H = CartesianMRI(mask, maps, real=True)
    rng = np.random.default_rng(seed + 1)
    y = H(image)
    noise = args.sigma * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    return H, y + (mask * noise).astype(y.dtype), mask  # noise on the sampled entries only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tests = ("phantom", *(name for name in adareg.data.SLICES if name != CALIBRATION))
    parser.add_argument("--image", default="mr-abdomen", choices=tests,
                        help=f"test image (not {CALIBRATION}, on which the weights are tuned)")
    parser.add_argument("--size", type=whole(1), default=128, help="resize the image to size x size")
    parser.add_argument("--coils", type=whole(1), default=8, help="number of birdcage coils")
    parser.add_argument("--acceleration", type=positive, default=4.0, help="undersampling factor")
    parser.add_argument("--center-fraction", type=positive, default=CENTER_FRACTION, help="fully sampled central columns")
    parser.add_argument("--sigma", type=non_negative, default=0.01, help="k-space noise level (real and imaginary parts)")
    parser.add_argument("--mu", type=positive, default=0.01, help="Tikhonov weight of SENSE")
    parser.add_argument("--models", nargs="+", default=["tv", "wcrr", "sa-cnn", "sa-b"],
                        help="regularizers: tv and shipped model names")
    add_tuning_arguments(parser)
    parser.add_argument("--iterations", type=whole(1), default=500, help="maximal iterations of TV (FISTA) and the ridge "
                        "models (L-BFGS); the adaptive models stop on adareg.solve's defaults")
    parser.add_argument("--seed", type=whole(0), default=0, help="seed of the mask and the noise")
    parser.add_argument("--output", default="mri_recon.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parse_arguments(parser)
    args.tune = args.tune or args.from_preset is not None

    # the presets' acquisitions have CENTER_FRACTION; another one is named (and so has none until tuned)
    centre = "" if args.center_fraction == CENTER_FRACTION else f"c{args.center_fraction:g}-"
    prefix = f"mri-cartesian-{args.coils}-x{args.acceleration:g}-{centre}{args.sigma:g}-"
    acquisition = f"{prefix}{args.size}"

    def options(name: str) -> dict:
        return stopping(name, args.iterations)

    def calibrate() -> dict[str, dict[str, float]]:
        truth = ground_truth(CALIBRATION, args.size)
        H, y, _ = acquire(truth, args, args.seed + 2)
        return tune(H, y, truth, args.models, options, args.quiet, args.patience,
                    preset_starts(args, prefix))

    weights_of = chosen_weights(acquisition, args.models, calibrate if args.tune else None, parser.error)
    truth = ground_truth(args.image, args.size)
    H, y, mask = acquire(truth, args, args.seed)
    rows = []
    start = time.perf_counter()
    rows.append(("zero-filled", mri.zero_filled(H, y), time.perf_counter() - start, ""))
    start = time.perf_counter()
    rows.append(("SENSE", mri.sense(H, y, lam=args.mu).x, time.perf_counter() - start, f"mu {args.mu:g}"))
    rows += solve_each(H, y, args.models, weights_of, options, args.quiet)
    print(f"{args.image} {args.size}x{args.size}, {args.coils} coils, x{args.acceleration:g} "
          f"({mask[0].mean():.3f} of the columns), sigma = {args.sigma:g}; weights from "
          f"{'--tune' if args.tune else 'adareg.presets'} ({CALIBRATION})")
    report(rows, truth, weights_of, (f"mask, x{args.acceleration:g}", mask), args.output)


if __name__ == "__main__":
    main()
