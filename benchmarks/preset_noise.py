"""How a preset's ``lam`` fares on data of another noise level than it was tuned at, and what
:func:`adareg.presets.preset`'s scaling recovers.

    python benchmarks/preset_noise.py [--size 64] [--photons 1e6] [--noise 0.03]

TV, ``x >= 0``, on a ``--size`` square slice: CT of ``ct-head``, 60 parallel-beam angles,
:func:`adareg.ct.poisson_transmission` at ``--photons`` (seed 0) with its weights; MRI
of ``mr-abdomen``, 8 birdcage coils, x4 with 0.08 of the columns in the centre (seed 0),
complex noise of ``--noise`` (seed 1).  Prints the PSNR at the preset's ``lam`` (tuned at
1e4 photons, and at noise 0.01) times a few factors, the scaling's among them: the
photons' ratio 1e4 / ``--photons`` for CT, the noise's ratio squared for MRI.
"""

from __future__ import annotations

import argparse

import numpy as np

import adareg
from adareg.ct import poisson_transmission
from adareg.operators import CartesianMRI, RayTransform
from adareg.regularizers import TV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--photons", type=float, default=1e6)
    parser.add_argument("--noise", type=float, default=0.03)
    args = parser.parse_args()
    n = args.size

    truth = adareg.data.medical_slice("ct-head", shape=(n, n), dtype=np.float32)
    H = RayTransform((n, n), 60, pixel_size=1 / n)
    y, w = poisson_transmission(H(truth), args.photons, seed=0)
    acquisition = adareg.presets.nearest("ct-parallel-60-", "tv", n)
    rule = adareg.presets.noise_level(acquisition) / args.photons
    report(f"CT, {args.photons:g} photons, preset {acquisition}", rule, lambda lam: adareg.solve(
        H, y, TV((n, n)), lam=lam, weights=w, bounds=(0, None)).x, adareg.presets.preset(acquisition, "tv")["lam"],
        truth)

    truth = adareg.data.medical_slice("mr-abdomen", shape=(n, n), dtype=np.float32)
    mask = adareg.mri.cartesian_mask(truth.shape, 4, 0.08, seed=0)
    H = CartesianMRI(mask, adareg.mri.birdcage_maps(truth.shape, 8), real=True)
    rng = np.random.default_rng(1)
    noise = mask * args.noise * (rng.standard_normal(H.shape_out) + 1j * rng.standard_normal(H.shape_out))
    y = (H(truth) + noise).astype(np.complex64)
    acquisition = adareg.presets.nearest("mri-cartesian-", "tv", n, acceleration=4)
    rule = (args.noise / adareg.presets.noise_level(acquisition)) ** 2
    report(f"MRI, noise {args.noise:g}, preset {acquisition}", rule, lambda lam: adareg.solve(
        H, y, TV((n, n)), lam=lam, bounds=(0, None)).x, adareg.presets.preset(acquisition, "tv")["lam"], truth)


def report(title: str, rule: float, solve, lam: float, truth: np.ndarray) -> None:
    """The PSNR at ``lam`` times 1, the ``rule``'s factor and the factors around it (by 3 and 10)."""
    print(title)
    for factor in sorted({1.0, rule / 10, rule / 3, rule, 3 * rule, 10 * rule}):
        note = "  the scaling" if factor == rule else ("  the preset as it is" if factor == 1 else "")
        print(f"  lam x {factor:<8.3g} {adareg.psnr(solve(factor * lam), truth):6.2f} dB{note}")


if __name__ == "__main__":
    main()
