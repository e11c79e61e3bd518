"""How good is the training gradient of an adaptive model? JFB and phantom gradients against the true one.

    python benchmarks/gradients.py [--file sa-cnn] [--steps 1 5 20 100] [--patches 4] [--seed 0]
                                   [--data ../shared/data/bsd400] [--threads 2]

For a parameter file of ``sa-b`` or ``sa-cnn`` (a shipped name or a path), on ``--patches``
40 x 40 training patches at sigma = 25/255 in float64, with the reweighting fixed point
solved to a relative change of 1e-11:

1. the gradient of the mean squared error through ``K`` fixed-point map steps taken with
   a graph (``K = 1``: Jacobian-free backpropagation; ``K > 1``: the phantom gradient), for
   each ``K`` of ``--steps``, and its cosine with the gradient of the largest ``K``;
2. the slope of the loss *at the fixed point* along each normalised gradient, by a central
   finite difference of the fixed point itself (step 1e-3 along the unit direction): the
   rate of descent each direction gives (the true gradient's norm bounds every value);
3. the seconds of one training step (forward and backward, 16 patches, float32, as
   ``adareg_train`` trains) for each ``K``: medians of 6 batches, the ``K`` side by side.

Needs torch (``adareg_train``) and the training images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from adareg import params
from adareg.io import read_folder
from adareg_train.data import PatchSampler
from adareg_train.families import Adaptive, build


def model_of(file: str, dtype: torch.dtype) -> Adaptive:
    parameter_file = params.read(file)
    model = build(parameter_file.family, parameter_file.metadata["architecture"])
    if not isinstance(model, Adaptive):
        raise SystemExit(f"--file must be an sa-b or sa-cnn file, got a {parameter_file.family} file")
    model.load_arrays(parameter_file.arrays)
    return model.to(dtype)


def loss_at_fixed_point(model: Adaptive, clean: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor) -> float:
    with torch.no_grad():
        lam = model.lam(sigma).view(-1, 1, 1, 1)
        x, _ = model.solve(noisy, sigma, model.bank.operator(noisy.shape[-2:]), lam)
        return torch.mean((x - clean) ** 2).item()


def gradient(model: Adaptive, clean: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor,
             steps: int) -> torch.Tensor:
    model.map_steps = steps
    model.zero_grad()
    torch.mean((model(noisy, sigma) - clean) ** 2).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def slope(model: Adaptive, direction: torch.Tensor, batch: tuple[torch.Tensor, ...], h: float = 1e-3) -> float:
    """Central difference of the loss at the fixed point along the unit vector ``direction``."""
    parameters = list(model.parameters())
    start = [p.detach().clone() for p in parameters]

    def shifted(shift: float) -> float:
        offset = 0
        with torch.no_grad():
            for p, p0 in zip(parameters, start):
                p.copy_(p0 + shift * direction[offset: offset + p.numel()].view_as(p))
                offset += p.numel()
        return loss_at_fixed_point(model, *batch)

    value = (shifted(h) - shifted(-h)) / (2 * h)
    shifted(0.0)
    return value


def step_seconds(model: Adaptive, sampler: PatchSampler, steps: list[int]) -> dict[int, float]:
    generator = torch.Generator().manual_seed(1)
    batches = [[t.float() for t in sampler.batch(16, generator)] for _ in range(6)]
    times: dict[int, list[float]] = {k: [] for k in steps}
    for clean, noisy, sigma in batches:
        for k in steps:  # side by side on every batch
            model.map_steps = k
            start = time.perf_counter()
            model.zero_grad()
            torch.mean((model(noisy, sigma) - clean) ** 2).backward()
            times[k].append(time.perf_counter() - start)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="sa-cnn", help="an sa-b or sa-cnn parameter file (name or path)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 20, 100])
    parser.add_argument("--patches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="../shared/data/bsd400")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sampler = PatchSampler(list(read_folder(args.data).values()), 40)
    generator = torch.Generator().manual_seed(args.seed)
    clean, _, _ = sampler.batch(args.patches, generator)
    sigma = torch.full((args.patches,), 25 / 255, dtype=torch.float64)
    noisy = clean + sigma.view(-1, 1, 1, 1) * torch.randn(clean.shape, generator=generator, dtype=torch.float64)

    model = model_of(args.file, torch.float64)
    model.outer, model.inner, model.tol = 120, 20, 1e-11
    grads = {k: gradient(model, clean, noisy, sigma, k) for k in args.steps}
    reference = grads[max(args.steps)]
    seconds = step_seconds(model_of(args.file, torch.float32), sampler, args.steps)
    print(f"{args.file}: {args.patches} patches at sigma 25/255, float64; step seconds: 16 patches, float32, "
          f"{args.threads} threads")
    print(f"| K | cosine with K = {max(args.steps)} | slope along it (finite difference) | seconds per training step |")
    print("| --- | --- | --- | --- |")
    for k, g in grads.items():
        cosine = float(torch.dot(g, reference) / (g.norm() * reference.norm()))
        print(f"| {k} | {cosine:.3f} | {slope(model, g / g.norm(), (clean, noisy, sigma)):.3e} | {seconds[k]:.2f} |")


if __name__ == "__main__":
    main()
