"""Cost and accuracy of the reflect-boundary bank norm that every ridge training step computes.

    python benchmarks/bank_norm.py [--file adareg/weights/wcrr.npz] [--tols 0 1e-8 1e-6]
                                   [--steps 12] [--drift 1e-3] [--device cpu|cuda] [--threads 2]

``Ridge.bank_norm`` finds ``||W||`` on a 32 x 32 image by Lanczos on ``W^T W``
(:func:`adareg_train.blocks.top_singular_vector`), warm-started from the previous
step's vector.  This replays that on a drifting bank: the file's bank, perturbed at
each step by Gaussian noise of ``--drift`` times its mean magnitude (what an optimiser
step does), and for each tolerance prints the median seconds per call (after two
warm-up steps) and the largest relative error of ``||W v||^2`` against the largest
eigenvalue found at ``tol=0`` (machine precision) on the same bank.

Needs torch (``adareg_train``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from adareg import params
from adareg_train.blocks import BankOperator, top_singular_vector

WEIGHTS = Path(__file__).resolve().parents[1] / "adareg" / "weights"


def squared_norm(kernel: torch.Tensor, v: torch.Tensor) -> float:
    """``||W v||^2``, in float64."""
    return float(torch.sum(BankOperator(kernel.double(), v.shape[-2:])(v.double()) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=WEIGHTS / "wcrr.npz")
    parser.add_argument("--tols", type=float, nargs="+", default=[0.0, 1e-8, 1e-6])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--drift", type=float, default=1e-3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bank = params.load(args.file).bank.kernel
    generator = torch.Generator().manual_seed(0)
    kernels = [torch.as_tensor(bank, dtype=torch.float32)]
    for _ in range(args.steps - 1):
        noise = torch.randn(kernels[-1].shape, generator=generator)
        kernels.append(kernels[-1] + args.drift * kernels[0].abs().mean() * noise)
    kernels = [k.to(args.device) for k in kernels]
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    exact = None
    print(f"{args.file.name}'s bank {tuple(bank.shape)} on {args.device}, {args.steps} steps of drift {args.drift}")
    for tol in sorted({0.0, *args.tols}):  # 0 first: the reference
        vector, times, norms = None, [], []
        for kernel in kernels:
            sync()
            start = time.perf_counter()
            vector = top_singular_vector(kernel, vector, tol=tol)
            sync()
            times.append(time.perf_counter() - start)
            norms.append(squared_norm(kernel, vector))
        exact = np.array(norms) if exact is None else exact
        error = np.max(np.abs(np.array(norms) - exact) / exact)
        print(f"tol {tol:7.0e}: {np.median(times[2:]) * 1e3:7.1f} ms per call, ||W||^2 {np.max(norms):.6f}, "
              f"largest relative error {error:.1e}")


if __name__ == "__main__":
    main()
