"""Does the reweighting contract? The bound a training penalty acts on, the exact map's rate, and inference.

    python benchmarks/contraction.py [--files sa-cnn PATH ...] [--sigmas 15 25] [--images 3]
                                     [--set12 ../shared/data/set12]

For each adaptive parameter file (a shipped name or a path), noise level and Set12 image
(the shared noise protocol), printed per image:

- ``bound``: the bound on the Jacobian of the exact reweighting map at its fixed point
  (:meth:`adareg_train.families.Adaptive.contraction`, 20 power iterations; what
  ``--contraction`` penalises), on the 64 x 64 crop ``[96:160, 96:160]``, float64;
- ``rate``: the exact map's observed rate on that crop, ``(r_21 / r_11)^(1/10)`` for the
  relative changes ``r_k`` of 25 reweighting steps, each solved by 500 dual FISTA
  iterations (restarted at every step, warm from the last dual);
- ``PSNR``, ``steps``: ``adareg.solve`` with its defaults on the whole image (float32);
- ``steps 1e-5``, ``residual``: the same with ``tol=1e-5, max_iter=100`` (the budgeted
  dual iterations of inference), the steps taken and the last fixed-point residual.

Needs torch (``adareg_train``) and the Set12 images.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import adareg
from adareg.data import protocol_noisy
from adareg.io import read_folder
from adareg.operators import Identity
from adareg_train.families import Adaptive

from gradients import model_of  # benchmarks/gradients.py, beside this script

CROP = (slice(96, 160), slice(96, 160))


def exact_rate(model: Adaptive, y: torch.Tensor, sigma: torch.Tensor, steps: int = 25, inner: int = 500) -> float:
    """The exact map's rate ``(r_21 / r_11)^(1/10)`` (``r_k`` the k-th step's change): ``steps`` reweighting
    steps of ``inner`` dual iterations.

    Each step restarts the momentum from the last dual (``model.solve`` carries it instead); ``model.inner``
    is left as it was.
    """
    training_inner, model.inner = model.inner, inner
    changes, x = [], y
    with torch.no_grad():
        W = model.bank.operator(y.shape[-2:])
        lam = model.lam(sigma).view(-1, 1, 1, 1)
        p = torch.zeros(1, W.spectrum.shape[0], *y.shape[-2:], dtype=y.dtype)
        for _ in range(steps):
            bound = lam * model.weights(x, sigma, W)
            p, _, _ = model.dual_fista(y, p, p, torch.ones(1, 1, 1, 1, dtype=y.dtype), bound, W)
            x_next = y - W.adjoint(p)
            changes.append((torch.linalg.vector_norm(x_next - x) / torch.linalg.vector_norm(x)).item())
            x = x_next
    model.inner = training_inner
    return (changes[20] / changes[10]) ** 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=["sa-cnn"])
    parser.add_argument("--sigmas", nargs="+", type=int, default=[15, 25])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--set12", default="../shared/data/set12")
    args = parser.parse_args()
    images = list(read_folder(args.set12, args.images).items())
    print(f"{'file':28} {'sigma':>5} {'image':>6} {'bound':>6} {'rate':>6} {'PSNR':>6} {'steps':>6} "
          f"{'steps 1e-5':>10} {'residual':>9}")
    for file in args.files:
        model, reg = model_of(file, torch.float64), adareg.load(file)
        model.outer, model.inner, model.tol = 400, 30, 1e-8  # the training solve, run to the fixed point
        for s in args.sigmas:
            sigma = torch.tensor([s / 255], dtype=torch.float64)
            for i, (name, clean) in enumerate(images):
                y = protocol_noisy(clean, s, i)
                crop = torch.from_numpy(np.ascontiguousarray(y[CROP]))[None, None]
                x, p, W, lam = model.equilibrium(crop, sigma)
                bound = model.contraction(crop, sigma, x, p, W, lam, 20, torch.Generator().manual_seed(0)).item()
                rate = exact_rate(model, crop, sigma)
                image = y.astype(np.float32)
                default = adareg.solve(Identity(image.shape), image, reg, sigma=s / 255)
                tight = adareg.solve(Identity(image.shape), image, reg, sigma=s / 255, tol=1e-5, max_iter=100)
                print(f"{file[-28:]:28} {s:5d} {name:>6} {bound:6.3f} {rate:6.3f} {adareg.psnr(default.x, clean):6.2f} "
                      f"{default.iterations:6d} {tight.iterations:10d} {tight.history['residual'][-1]:9.1e}",
                      flush=True)


if __name__ == "__main__":
    main()
