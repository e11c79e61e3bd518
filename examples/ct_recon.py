"""Sparse-view CT of a real head slice: FBP, TV, wcrr and the paper's adaptive sa-cnn and sa-b.

    python examples/ct_recon.py [--image ct-head|phantom] [--size 128] [--angles 60] [--photons 1e4]
                                [--models tv wcrr sa-cnn sa-b] [--tune | --from-preset [SIZE]] [--patience 1.5|off]
                                [--device cpu|gpu] [--output ct_recon.png]

Simulates a 2D parallel-beam scan (a field of view of one unit, so line integrals
stay below about 1) with Poisson counting noise (``photons`` per ray) of a real CT
slice from pydicom's test files (``adareg.data.medical_slice("ct-head")``, [-1000,
1000] HU mapped onto [0, 1]; ``--image phantom`` for the Shepp-Logan phantom), then
reconstructs it

* by filtered back-projection (Hann window), and
* by ``argmin_{x >= 0} 1/2 ||A x - y||_w^2 + lam R(x)`` with the Poisson
  inverse-variance weights ``w`` through ``adareg.solve``, for R = TV, the learned
  ``wcrr`` (L-BFGS) and the learned ``sa-cnn`` and ``sa-b`` (the paper's eq. (6) and
  eq. (3) models: reweighting with accelerated steps);

and prints PSNR, SSIM and seconds (best first), and writes a figure with the error
maps and the masks that sa-cnn put on its reconstruction.  Every weight (``lam``,
and the model's ``sigma``) comes from ``adareg.presets``, chosen by ``adareg.tune`` on
another patient's slice (``ct-head-2``) with the same scan, never on the slice
reported here; ``--tune`` repeats that search and prints the presets it finds (with
``adareg.tune``'s ``patience``: candidates far from the best are cut at 1.5 times its
time; ``--patience off`` for the exact search).  ``--from-preset`` tunes likewise,
each search starting from the model's preset for this scan at the nearest size (or at
the size nearest to ``SIZE``) instead of the ranges' centres: a shorter search for a
new size where candidates are slow, but a more local one, which may end at a lower
maximum than the search from the centre (``docs/results.md``).
"""

from __future__ import annotations

import argparse
import time

import adareg
from adareg.backend import Array
from adareg.ct import fbp, poisson_transmission
from adareg.examples.comparison import (CALIBRATION, add_tuning_arguments, chosen_weights, ground_truth,
                                      parse_arguments, positive, preset_starts, report, scientific, solve_each,
                                      stopping, tune, whole)
from adareg.operators import RayTransform


def scan(image, args: argparse.Namespace, seed: int) -> tuple[RayTransform, Array, Array]:
    """The ray transform, noisy log sinogram and inverse-variance weights of one simulated scan."""
    n = image.shape[0]
    H = RayTransform((n, n), args.angles, pixel_size=1.0 / n)
    sinogram, weights = poisson_transmission(H(adareg.to_device(image, args.device)), args.photons, seed=seed)
    return H, sinogram, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tests = ("phantom", *(name for name in adareg.data.SLICES if name != CALIBRATION))
    parser.add_argument("--image", default="ct-head", choices=tests,
                        help=f"test image (not {CALIBRATION}, on which the weights are tuned)")
    parser.add_argument("--size", type=whole(1), default=128, help="image size (pixels per side)")
    parser.add_argument("--angles", type=whole(1), default=60, help="number of projection angles over [0, pi)")
    parser.add_argument("--photons", type=positive, default=1e4, help="incident photons per detector cell")
    parser.add_argument("--models", nargs="+", default=["tv", "wcrr", "sa-cnn", "sa-b"],
                        help="regularizers: tv and shipped model names")
    add_tuning_arguments(parser)
    parser.add_argument("--iterations", type=whole(1), default=500, help="maximal iterations of TV (FISTA) and the ridge "
                        "models (L-BFGS); the adaptive models stop on adareg.solve's defaults")
    parser.add_argument("--seed", type=whole(0), default=0, help="seed of the noise")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="NumPy or CuPy arrays")
    parser.add_argument("--output", default="ct_recon.png", help="figure to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parse_arguments(parser)
    args.tune = args.tune or args.from_preset is not None

    def calibrate() -> dict[str, dict[str, float]]:
        truth = ground_truth(CALIBRATION, args.size)
        H, y, w = scan(truth, args, args.seed + 1)
        return tune(H, y, adareg.to_device(truth, args.device), args.models,
                    lambda name: {**stopping(name, args.iterations), "weights": w}, args.quiet, args.patience,
                    preset_starts(args, f"ct-parallel-{args.angles}-{scientific(args.photons)}-"))

    acquisition = f"ct-parallel-{args.angles}-{scientific(args.photons)}-{args.size}"
    weights_of = chosen_weights(acquisition, args.models, calibrate if args.tune else None, parser.error)
    truth = ground_truth(args.image, args.size)
    H, sinogram, weights = scan(truth, args, args.seed)
    start = time.perf_counter()
    rows = [("FBP (Hann)", adareg.to_numpy(fbp(H, sinogram, window="hann")), time.perf_counter() - start, "")]
    rows += solve_each(H, sinogram, args.models, weights_of,
                       lambda name: {**stopping(name, args.iterations), "weights": weights}, args.quiet)
    print(f"{args.image} {args.size}x{args.size}, {args.angles} parallel-beam angles, {args.photons:g} photons per "
          f"ray, {args.device.upper()}; weights from {'--tune' if args.tune else 'adareg.presets'} ({CALIBRATION})")
    report(rows, truth, weights_of, ("sinogram (log data)", adareg.to_numpy(sinogram)), args.output)


if __name__ == "__main__":
    main()
